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
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread, restoring the setting after.

    Drawing is hundreds of small element-wise ops per batch. Split across threads, each op
    ends at a barrier that costs more than it saves, and on a busy machine a barrier waits
    for a descheduled thread: 20,000 faces took 4 s on one thread and 135 s on two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
