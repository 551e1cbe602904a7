"""Hyperparameter schemas for every recipe, importable without torch.

A recipe's config is a dataclass whose fields are declared with :func:`param`: each has a
type, a default, a range (or a set of choices) and a one-line help text. The studio builds
its form from this, the CLI its ``--set key=value`` parsing, and the engine validates the
resolved config with the same code, so the three can never disagree.

This package must stay free of torch: the UI process imports it.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "ParamSpec", "param", "specs", "validate", "parse_value", "RECIPES", "get_config_class"]


class ConfigError(ValueError):
    """A hyperparameter the user gave is unknown, of the wrong type, or out of range."""


@dataclass(frozen=True)
class ParamSpec:
    """Everything the UI and CLI need to know about one hyperparameter."""

    name: str
    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None  # strings, or numbers for an int parameter
    live: bool = False  # True: can change while training runs (applied between steps)
    log: bool = False  # True: the natural scale is logarithmic (learning rates)

    def range_text(self) -> str:
        if self.choices:
            return " | ".join(str(c) for c in self.choices)
        if self.type is str:
            return "text"
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "inf" if self.high is None else _fmt(self.high)
        return f"{lo} .. {hi}"


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    return f"{x:g}"


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple | None = None,
    live: bool = False,
    log: bool = False,
) -> Any:
    """Declare a hyperparameter field (use inside a recipe's config dataclass)."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "live": live, "log": log}
    return field(default=default, metadata={"genstudio": meta})


def specs(config_cls: type) -> list[ParamSpec]:
    """The ordered list of parameter specs of a config dataclass."""
    out = []
    hints = {f.name: f.type for f in dataclasses.fields(config_cls)}
    for f in dataclasses.fields(config_cls):
        meta = f.metadata.get("genstudio")
        if meta is None:
            continue
        typ = hints[f.name]
        if isinstance(typ, str):  # from __future__ annotations
            typ = {"int": int, "float": float, "str": str, "bool": bool}[typ]
        out.append(ParamSpec(name=f.name, type=typ, default=f.default, **meta))
    return out


def parse_value(spec: ParamSpec, raw: Any) -> Any:
    """Convert ``raw`` (a string from a form or the command line, or a JSON value) to the
    spec's type and check its range. Raises :class:`ConfigError` with a message a learner
    can act on."""
    name = spec.name
    try:
        if spec.type is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).strip().lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError
        elif spec.type is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            value = int(str(raw).strip().replace("_", "")) if not isinstance(raw, (int, float)) else int(raw)
        elif spec.type is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"{name} must be a finite number, got {raw!r}")
        else:
            value = str(raw)
    except ConfigError:
        raise
    except (TypeError, ValueError):
        kind = {int: "a whole number", float: "a number", bool: "true or false"}.get(spec.type, "text")
        raise ConfigError(f"{name} must be {kind}, got {raw!r} (allowed: {spec.range_text()})") from None
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{name} must be one of {spec.range_text().replace(' | ', ', ')}; got {raw!r}")
    if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
        raise ConfigError(f"{name} = {raw} is out of range; allowed: {spec.range_text()} ({spec.help})")
    return value


def validate(config_cls: type, values: dict[str, Any]) -> Any:
    """Build a config from a dict of (possibly string) values; unknown keys are refused with
    a suggestion, every value is type- and range-checked."""
    by_name = {s.name: s for s in specs(config_cls)}
    kwargs = {}
    for key, raw in values.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown hyperparameter {key!r}{hint} (known: {', '.join(by_name)})")
        kwargs[key] = parse_value(by_name[key], raw)
    return config_cls(**kwargs)


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Turn ``["lr=0.001", "beta=2"]`` into a dict, refusing anything without ``=``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


# -- the dashboard a recipe asks for (plain descriptions; the studio draws them) --


@dataclass(frozen=True)
class Curves:
    """The live loss and quality curves."""

    id: str = "curves"


@dataclass(frozen=True)
class ImagePane:
    """The newest image artifact called ``artifact``. ``tile`` = (pitch, padding) when it is a
    grid of samples (small screens then show fewer, readable tiles); ``group`` keeps that
    many columns of tiles together (input | output pairs)."""

    artifact: str
    id: str
    placeholder: str = "no samples yet: press s to start training"
    tile: tuple[int, int] | None = None
    group: int = 1
    height: int | None = None  # rows, when the pane should not share space evenly
    side: bool = False  # a narrower companion pane, hidden on narrow screens (a bigger tab shows it)
    min_scale: float = 0.45  # smallest scale a tile is drawn at on text screens before fewer are shown


@dataclass(frozen=True)
class PointsPane:
    """The newest points artifact ({"x", "y", "label", "projection"}) as a coloured scatter."""

    artifact: str
    id: str


@dataclass(frozen=True)
class Controls:
    """A row of pickers for some of the recipe's live choice parameters: changing one sets
    it on the running engine and refreshes the views at once (the attribute picker)."""

    params: tuple[str, ...]
    id: str
    help: str = ""


@dataclass(frozen=True)
class AttentionPane:
    """The attention maps inside the newest data artifact ``artifact`` (its "attention" entry),
    as a heatmap with the tokens on its axes; the learner picks the layer and the head (or the
    mean over heads)."""

    artifact: str
    id: str
    title: str = "attention"
    placeholder: str = "no attention maps yet: press s to start training"


@dataclass(frozen=True)
class TranslatePane:
    """A box where the learner types an English sentence; the engine translates it (artifact
    ``artifact``) and the held-out examples (artifact ``examples``) show beside it."""

    artifact: str
    id: str
    examples: str = "examples"


@dataclass(frozen=True)
class SamplerPane:
    """The sampling panel: the learner types a prompt and sets the sampling parameters
    (``params``: live parameters of the recipe); the engine's continuation (artifact
    ``artifact``) appears token by token, with the top candidates for the next token."""

    artifact: str
    id: str
    params: tuple[str, ...] = ("temperature", "top_k", "top_p", "max_new_tokens")


@dataclass(frozen=True)
class TextPane:
    """The newest text artifact (a data dict with "text", and optionally "prompt")."""

    artifact: str
    id: str
    placeholder: str = "no text yet: press s to start training"
    height: int | None = None  # rows, when the pane should not share space evenly


@dataclass(frozen=True)
class PlotPane:
    """Line plots of a data artifact {"title": str, "x": [..], "xlabel": str, "series": {name: [..]}}."""

    artifact: str
    id: str
    placeholder: str = "no data yet: press s to start training"


@dataclass(frozen=True)
class TimelinePane:
    """A denoising timeline the learner scrubs (←/→) and plays (space): the image artifact
    ``artifact`` is a horizontal strip of equal frames; the data artifact ``meta`` says
    {"frames": K, "t": [t of each frame], "label": str}."""

    artifact: str
    meta: str
    id: str


@dataclass(frozen=True)
class PromptImagePane:
    """A prompt box with a guidance scale: the engine draws images for the prompt (image
    artifact ``artifact``; its caption carries the prompt accuracy)."""

    artifact: str
    id: str


@dataclass(frozen=True)
class ActionPane:
    """A button that sends the engine the request ``action`` (with the current values of
    ``params`` as its arguments) and shows the image it answers with (artifact ``artifact``):
    work too slow for the periodic views, such as a full DDPM sampling chain."""

    action: str
    artifact: str
    id: str
    label: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tab:
    title: str
    id: str
    panes: tuple
    vertical: bool = False  # stack the panes instead of placing them side by side


def dashboard(recipe: str) -> tuple[Tab, ...]:
    """The recipe's own dashboard tabs (Settings, Code and Quiz are added by the studio)."""
    import importlib

    return importlib.import_module(RECIPES[recipe][0].__module__).DASHBOARD


def _registry() -> dict[str, tuple[type, str]]:
    from engine.configs.cyclegan import CycleGANConfig
    from engine.configs.cwgan import CWGANConfig
    from engine.configs.dcgan import DCGANConfig
    from engine.configs.diffusion import DiffusionConfig
    from engine.configs.gan2d import GAN2DConfig
    from engine.configs.gpt import GPTConfig
    from engine.configs.text2image import TextToImageConfig
    from engine.configs.translator import TranslatorConfig
    from engine.configs.vae import VAEConfig

    # name -> (config class, module that defines the torch recipe)
    return {"vae": (VAEConfig, "engine.recipes.vae"), "gan2d": (GAN2DConfig, "engine.recipes.gan2d"),
            "cwgan": (CWGANConfig, "engine.recipes.cwgan"),
            "cyclegan": (CycleGANConfig, "engine.recipes.cyclegan"),
            "dcgan": (DCGANConfig, "engine.recipes.dcgan"),
            "diffusion": (DiffusionConfig, "engine.recipes.diffusion"),
            "gpt": (GPTConfig, "engine.recipes.gpt"),
            "text2image": (TextToImageConfig, "engine.recipes.text2image"),
            "translator": (TranslatorConfig, "engine.recipes.translator")}


RECIPES = _registry()


def get_config_class(recipe: str) -> type:
    if recipe not in RECIPES:
        close = difflib.get_close_matches(recipe, list(RECIPES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown recipe {recipe!r}.{hint} Known recipes: {', '.join(sorted(RECIPES))}")
    return RECIPES[recipe][0]
