"""Recipes by name. Each recipe module defines RECIPE, the class to build."""

from __future__ import annotations

import importlib

from engine.configs import RECIPES, get_config_class, validate


def build_recipe(name: str, params: dict, ctx):
    """Validate ``params`` against the recipe's schema and build the recipe."""
    cfg = validate(get_config_class(name), params)
    module = importlib.import_module(RECIPES[name][1])
    return module.RECIPE(ctx, cfg)
