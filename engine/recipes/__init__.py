"""Recipes by name. Each recipe module defines RECIPE, the class to build."""

from __future__ import annotations

import importlib

from engine.registry import get_recipe
from engine.schema import validate


def build_recipe(name: str, params: dict, ctx):
    """Validate ``params`` against the recipe's schema and build the recipe."""
    entry = get_recipe(name)
    cfg = validate(entry.config, params)
    return importlib.import_module(entry.module).RECIPE(ctx, cfg)
