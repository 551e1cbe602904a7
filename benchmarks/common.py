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


def engine_rate(recipe: str, device: str, sets: list[str], seconds: float, warmup: float = 3.0) -> tuple[float, int]:
    """(samples/s, batch) of a headless engine run of ``recipe``, started as the studio
    starts it, read from its status events: steps over training seconds after ``warmup``
    seconds (first views, allocator), times the batch."""
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run(recipe, sets, 10_000_000, device, None)
    proc = start_engine(rd.path)
    try:
        def enough():
            h = read_history(rd)
            if h.state in ("failed", "finished", "stopped"):
                raise RuntimeError(f"engine run ended early ({h.state}): {h.errors}")
            return h.status.get("elapsed", 0.0) >= warmup + seconds
        wait_for(enough, timeout=120 + 3 * seconds, interval=0.2)
    finally:
        rd.send("stop")
        proc.wait(timeout=120)
    status = [(e.step, e.payload["elapsed"]) for e in rd.events() if e.type == "status"]
    (s0, t0) = next(p for p in status if p[1] >= warmup)
    (s1, t1) = status[-1]
    batch = int(rd.read_config()["params"]["batch_size"])
    return (s1 - s0) * batch / (t1 - t0), batch


def steps_per_second(step, device, seconds: float, warmup: float = 3.0, chunk: int = 5) -> float:
    """Calls of ``step()`` per second: after a warm-up of min(warmup, seconds / 2), timed
    for ``seconds`` in chunks, synchronising CUDA before each reading."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t = time.perf_counter()
    while time.perf_counter() - t < min(warmup, seconds / 2):
        step()
    sync()
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        for _ in range(chunk):
            step()
        n += chunk
        sync()
    return n / (time.perf_counter() - t)


def timed_run(recipe: str, sets: list[str], seconds: float | None, device: str, hit=None, env: dict | None = None):
    """A headless engine run of ``recipe`` with ``sets`` (started as the studio starts it),
    stopped ``seconds`` of wall time after launch (None: left to finish its steps). ``hit(history)``
    is polled and returns (step, value) once the run's own scores pass the benchmark's bar,
    else None. ``env`` adds to the engine's environment (OMP_NUM_THREADS=1: one core).

    Returns (run directory, wall seconds from launch, the first hit as (seconds from launch,
    step, value), or None)."""
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run(recipe, sets, 10_000_000 if seconds is not None else None, device, None)
    params = rd.read_config()["params"]
    hidden = ("data_path", "steps") if seconds is not None else ("data_path",)
    print(f"run {rd.path}: " + ", ".join(f"{k}={v}" for k, v in params.items() if k not in hidden), flush=True)
    launch = time.monotonic()
    proc = start_engine(rd.path, env=env)
    first_hit = None  # (seconds from launch, step, value), seen while polling
    try:
        def done():
            nonlocal first_hit
            h = read_history(rd)
            if first_hit is None and hit is not None and (found := hit(h)):
                first_hit = (time.monotonic() - launch, *found)
            if seconds is None and h.state == "finished":
                return True
            if h.state in ("failed", "finished", "stopped"):
                raise RuntimeError(f"engine run ended early ({h.state}): {h.errors}")
            return seconds is not None and time.monotonic() - launch >= seconds
        wait_for(done, timeout=(seconds or 3600) + 120, interval=0.5)
    finally:
        rd.send("stop")
        proc.wait(timeout=120)
    return rd, time.monotonic() - launch, first_hit


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a running process has used so far (Linux /proc), or NaN
    when it cannot be read (the process has ended, no /proc)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, TypeError):
        return float("nan")


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children (an engine process,
    once waited for): the difference across a run is what the run cost, whatever the load."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
