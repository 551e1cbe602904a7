"""Small helpers shared by the engine's cached datasets and classifiers."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two processes don't both train (POSIX only;
    elsewhere the atomic rename still keeps the cache file whole)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextmanager
def isolated_rng(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Seed torch for a side job (training a cached classifier) and restore the caller's
    RNG state afterwards, so a training run that asks for it midway keeps its own stream.
    Yields a CPU generator for batch order and augmentation."""
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else None,
                               device_type=None if device.type == "cpu" else device.type):
        torch.manual_seed(seed)  # initial weights
        yield torch.Generator().manual_seed(seed)


def one_cycle_adamw(model: torch.nn.Module, lr: float, steps: int):
    """AdamW with a one-cycle schedule: a short warm-up to ``lr``, then annealing to ~0."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
