"""Helpers shared by the benchmark scripts (run from the repository root)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fresh_home(keep_cache: bool = True) -> Path:
    """A temporary GENSTUDIO_HOME; its cache links to the user's so the embedded digits and
    the digit classifier are not rebuilt for every benchmark (say so when it matters)."""
    home = Path(tempfile.mkdtemp(prefix="genstudio-bench-"))
    if keep_cache:
        from engine.rundir import cache_dir

        real = cache_dir()
        real.mkdir(parents=True, exist_ok=True)
        (home / "cache").symlink_to(real, target_is_directory=True)
    os.environ["GENSTUDIO_HOME"] = str(home)
    return home


def wait_for(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("benchmark timed out")
