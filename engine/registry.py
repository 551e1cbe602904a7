"""Every recipe GenStudio can train, by name (torch-free: the studio and the CLI read it).

A family registers each recipe with one line at the bottom of this file:

    register("vae", "engine.configs.vae:VAEConfig", "engine.recipes.vae")

- ``engine/configs/vae.py`` (torch-free) defines the config dataclass named after the colon
  (its fields declared with :func:`engine.schema.param`) and ``DASHBOARD``, the recipe's
  own tabs built from :mod:`engine.panes` (the studio adds Settings, Code and Quiz).
- ``engine/recipes/vae.py`` defines ``RECIPE``, the :class:`engine.recipes.base.Recipe`
  subclass the runner builds (it may import torch).

The config modules are imported here, when the registry is first read; the recipe modules
only when a run is built (:func:`engine.recipes.build_recipe`).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import NamedTuple

from engine.schema import ConfigError


class RecipeEntry(NamedTuple):
    config: type  # the config dataclass
    module: str  # the module that defines RECIPE

    @property
    def dashboard(self) -> tuple:
        """The recipe's tabs (engine.panes.Tab), declared beside its config."""
        return tuple(getattr(sys.modules[self.config.__module__], "DASHBOARD", ()))

    @property
    def distributed(self) -> bool:
        """True when the recipe trains on several processes (``--nproc N``)."""
        return bool(getattr(self.config, "distributed", False))


RECIPES: dict[str, RecipeEntry] = {}


def register(name: str, config: str, recipe_module: str) -> RecipeEntry:
    """Add a recipe: ``config`` is "module:ConfigClass"; that module also defines DASHBOARD."""
    module_name, _, class_name = config.partition(":")
    module = importlib.import_module(module_name)
    entry = RecipeEntry(getattr(module, class_name), recipe_module)
    ids = [pane.id for tab in entry.dashboard for pane in tab.panes]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{name}: pane ids must be unique in a dashboard, got {ids}")
    RECIPES[name] = entry
    return entry


def get_recipe(recipe: str) -> RecipeEntry:
    if recipe not in RECIPES:
        close = difflib.get_close_matches(recipe, list(RECIPES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown recipe {recipe!r}.{hint} Known recipes: {', '.join(sorted(RECIPES))}")
    return RECIPES[recipe]


def get_config_class(recipe: str) -> type:
    return get_recipe(recipe).config


def dashboard(recipe: str) -> tuple:
    """The recipe's own dashboard tabs (the front end adds its own: settings, code, quiz)."""
    return get_recipe(recipe).dashboard


register("vae", "engine.configs.vae:VAEConfig", "engine.recipes.vae")
register("gan2d", "engine.configs.gan2d:GAN2DConfig", "engine.recipes.gan2d")
register("dcgan", "engine.configs.dcgan:DCGANConfig", "engine.recipes.dcgan")
register("cwgan", "engine.configs.cwgan:CWGANConfig", "engine.recipes.cwgan")
register("cyclegan", "engine.configs.cyclegan:CycleGANConfig", "engine.recipes.cyclegan")
register("gpt", "engine.configs.gpt:GPTConfig", "engine.recipes.gpt")
register("translator", "engine.configs.translator:TranslatorConfig", "engine.recipes.translator")
register("diffusion", "engine.configs.diffusion:DiffusionConfig", "engine.recipes.diffusion")
register("text2image", "engine.configs.text2image:TextToImageConfig", "engine.recipes.text2image")
register("musegan", "engine.configs.musegan:MuseGANConfig", "engine.recipes.musegan")
register("lstm", "engine.configs.lstm:LSTMConfig", "engine.recipes.lstm")
register("music_transformer", "engine.configs.music_transformer:MusicTransformerConfig", "engine.recipes.music_transformer")
register("pixelcnn", "engine.configs.pixelcnn:PixelCNNConfig", "engine.recipes.pixelcnn")
register("ebm", "engine.configs.ebm:EBMConfig", "engine.recipes.ebm")
register("realnvp", "engine.configs.realnvp:RealNVPConfig", "engine.recipes.realnvp")
register("start", "engine.configs.start:StartConfig", "engine.recipes.start")
register("mlm", "engine.configs.mlm:MLMConfig", "engine.recipes.mlm")
register("vqvae", "engine.configs.vqvae:VQVAEConfig", "engine.recipes.vqvae")
register("latent_diffusion", "engine.configs.latent_diffusion:LatentDiffusionConfig", "engine.recipes.latent_diffusion")
register("stylegan", "engine.configs.stylegan:StyleGANConfig", "engine.recipes.stylegan")
register("world_model", "engine.configs.world_model:WorldModelConfig", "engine.recipes.world_model")
