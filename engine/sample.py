"""Sampling from a saved run, without training (``genstudio sample RUN -o grid.png``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from engine.checkpoint import CheckpointError, load_checkpoint
from engine.device import resolve_device
from engine.imaging import make_grid, save_png
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.rundir import RunDir


def sample_to_png(run_dir: str | Path, out: str | Path, n: int = 64, seed: int = 0, device: str = "auto") -> Path:
    rd = RunDir(run_dir)
    cfg = rd.read_config()
    if not rd.checkpoint_path.exists():
        raise CheckpointError(f"{rd.path} has no checkpoint yet: train it first, or wait for its first checkpoint")
    dev = resolve_device(device)
    ck = load_checkpoint(rd.checkpoint_path, map_location=dev)
    recipe = build_recipe(cfg["recipe"], ck["params"], RunContext(device=dev, log=lambda m: None, need_data=False))
    recipe.load_state_dict(ck["state"])
    images = recipe.sample_images(n, torch.Generator().manual_seed(seed))
    out = Path(out)
    save_png(make_grid(images, nrow=max(1, int(math.ceil(math.sqrt(len(images)))))), out)
    return out
