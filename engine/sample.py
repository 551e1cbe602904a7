"""Sampling from a saved run, without training: ``python -m engine sample RUN -o grid.png``,
or ``-o piece.mid`` / ``piece.wav`` for the music lessons (``genstudio sample`` runs it as a
separate process, as it runs training).

A recipe that draws images provides ``sample_images``; one that makes pieces of music
provides ``sample_file(path, n, generator)``, which writes the file itself."""

from __future__ import annotations

import errno
import math
import sys
from pathlib import Path

import torch

from engine.audio import PIECE_SUFFIXES
from engine.checkpoint import CheckpointError, load_checkpoint, restore
from engine.device import resolve_device
from engine.imaging import make_grid, save_png
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.rundir import RunDir, RunDirError


OUTPUT_SUFFIXES = (".png", *PIECE_SUFFIXES)


def sample_to_file(run_dir: str | Path, out: str | Path, n: int = 64, seed: int = 0, device: str = "auto") -> Path:
    """Load the run's last checkpoint and write ``n`` new samples to ``out``: a grid of
    images (.png) or a piece of music (.mid, .wav)."""
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"{out.name}: write a .png (images) or a .mid or .wav file (music)")
    rd = RunDir(run_dir)
    cfg = rd.read_config()
    if not rd.checkpoint_path.exists():
        raise CheckpointError(f"{rd.path} has no checkpoint yet: train it first, or wait for its first checkpoint")
    dev = resolve_device(device)
    ck = load_checkpoint(rd.checkpoint_path, map_location=dev)
    recipe = build_recipe(cfg["recipe"], ck["params"], RunContext(device=dev, log=lambda m: None, need_data=False))
    restore(recipe, ck["state"])
    generator = torch.Generator().manual_seed(seed)
    makes_pieces = hasattr(recipe, "sample_file")
    if out.suffix.lower() in PIECE_SUFFIXES and not makes_pieces:
        raise RuntimeError(f"{cfg['recipe']} makes no music; write its samples to a .png file")
    try:
        if out.suffix.lower() in PIECE_SUFFIXES:
            return recipe.sample_file(out, n, generator)
        try:
            images = recipe.sample_images(n, generator)
        except NotImplementedError:
            hint = "; write a .mid or .wav file" if makes_pieces else ""
            raise RuntimeError(f"{cfg['recipe']} does not draw images{hint}") from None
        save_png(make_grid(images, nrow=max(1, int(math.ceil(math.sqrt(len(images)))))), out)
    except OSError as e:
        why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
        raise RuntimeError(f"could not write {out}: {why}") from None
    return out


def main(run_dir: str, out: str, n: int = 64, seed: int = 0, device: str = "auto") -> int:
    """The command: 0 and the written path on stdout, or 1 and one line on stderr."""
    try:
        path = sample_to_file(run_dir, out, n=n, seed=seed, device=device)
    except (CheckpointError, RunDirError, RuntimeError, ValueError, OSError) as e:
        print(f"genstudio sample: {e}", file=sys.stderr, flush=True)
        return 1
    print(path, flush=True)
    return 0
