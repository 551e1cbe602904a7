"""Sampling from a saved run, without training: ``python -m engine sample RUN -o grid.png``
(``genstudio sample`` runs it as a separate process, as it runs training)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from engine.checkpoint import CheckpointError, load_checkpoint
from engine.device import resolve_device
from engine.imaging import make_grid, save_png
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.rundir import RunDir, RunDirError


def sample_to_png(run_dir: str | Path, out: str | Path, n: int = 64, seed: int = 0, device: str = "auto") -> Path:
    rd = RunDir(run_dir)
    cfg = rd.read_config()
    if not rd.checkpoint_path.exists():
        raise CheckpointError(f"{rd.path} has no checkpoint yet: train it first, or wait for its first checkpoint")
    dev = resolve_device(device)
    ck = load_checkpoint(rd.checkpoint_path, map_location=dev)
    recipe = build_recipe(cfg["recipe"], ck["params"], RunContext(device=dev, log=lambda m: None, need_data=False))
    recipe.load_state_dict(ck["state"])
    try:
        images = recipe.sample_images(n, torch.Generator().manual_seed(seed))
    except NotImplementedError:
        raise RuntimeError(f"{cfg['recipe']} does not draw images; `genstudio sample` works for the image lessons") from None
    out = Path(out)
    save_png(make_grid(images, nrow=max(1, int(math.ceil(math.sqrt(len(images)))))), out)
    return out


def main(run_dir: str, out: str, n: int = 64, seed: int = 0, device: str = "auto") -> int:
    """The command: 0 and the written path on stdout, or 1 and one line on stderr."""
    try:
        path = sample_to_png(run_dir, out, n=n, seed=seed, device=device)
    except (CheckpointError, RunDirError, RuntimeError, ValueError, OSError) as e:
        print(f"genstudio sample: {e}", file=sys.stderr, flush=True)
        return 1
    print(path, flush=True)
    return 0
