"""What watching costs training: VAE steps/s headless vs with the studio attached.

Same config, same seed, one script: runs alternate (headless, studio, headless, studio) so
drift in machine load hits both sides. Steps/s is the engine's own figure: steps divided
by its training time. With the studio attached, the studio really runs: `genstudio attach`
in a tmux window of 200x60 (the largest layout we support, so the most drawing), or
Textual's headless driver when tmux is missing. Target: ratio >= 0.97.

    python benchmarks/ui_overhead.py [--steps 800] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time

from common import ROOT, fresh_home


def steps_per_s(rd) -> float:
    from engine.rundir import read_history

    h = read_history(rd)
    return h.step / h.status["elapsed"]


def run_headless(sets, steps):
    from engine.launch import start_engine
    from engine.runs import create_run

    rd = create_run("vae", sets, steps, "cpu", None)
    start_engine(rd.path).wait()
    return steps_per_s(rd)


def run_with_studio(sets, steps):
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run("vae", sets, steps, "cpu", None)
    proc = start_engine(rd.path)
    if shutil.which("tmux"):
        session = f"gsbench{time.monotonic_ns()}"
        cmd = f"{sys.executable} -m studio.cli --graphics halfblock attach {rd.path}"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60",
                        "-e", "COLORTERM=truecolor", "-c", str(ROOT), cmd], check=True)
        try:
            proc.wait()
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        how = "tmux 200x60"
    else:
        from studio.app import GenStudioApp

        async def watch():
            app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
            async with app.run_test(size=(200, 60)) as pilot:
                while proc.poll() is None:
                    await pilot.pause(0.2)

        asyncio.run(watch())
        how = "textual headless driver 200x60"
    assert read_history(rd).state == "finished"
    return steps_per_s(rd), how


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    fresh_home()
    sets: list[str] = []
    print(f"VAE default preset, {args.steps} steps per run, CPU")
    run_headless(sets, 20)  # warm the digit cache and the classifier
    alone, watched = [], []
    for i in range(args.repeats):
        a = run_headless(sets, args.steps)
        w, how = run_with_studio(sets, args.steps)
        alone.append(a)
        watched.append(w)
        print(f"  round {i + 1}: headless {a:.1f} steps/s, with studio ({how}) {w:.1f} steps/s")
    ratio = statistics.mean(watched) / statistics.mean(alone)
    print(f"RESULT: steps/s with the studio attached / headless = {ratio:.3f} (target >= 0.97)")


if __name__ == "__main__":
    main()
