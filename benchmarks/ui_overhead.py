"""What watching costs training: VAE steps/s headless vs with the studio attached.

Same config, same seed, one script: runs alternate (headless, studio, headless, studio) so
drift in machine load hits both sides. Steps/s is the engine's own figure: steps divided
by its training time. With the studio attached, the studio really runs: `genstudio attach`
in a tmux window of 200x60 (the largest layout we support, so the most drawing), or
Textual's headless driver when tmux is missing. Target: ratio >= 0.97.

With tmux the script also reads the studio's share of a core once it is up, and runs
headless training beside a plain busy loop taking the same share: the reference says how
much of the cost is any program sharing the engine's cores rather than the studio itself.

    python benchmarks/ui_overhead.py [--steps 800] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time

from common import ROOT, fresh_home, process_cpu_seconds


def steps_per_s(rd) -> float:
    from engine.rundir import read_history

    h = read_history(rd)
    return h.step / h.status["elapsed"]


SETTLE_S = 15.0  # the studio has started and drawn its first screens by then


def steady_steps_per_s(rd) -> float:
    """Steps/s from SETTLE_S seconds after training began to the end, from the metrics
    events' times: what watching costs once the studio is up and drawing (its start-up is
    left out; the whole-run RESULT keeps it in)."""
    started = next((e.time for e in rd.events() if e.type == "state" and e.payload.get("state") == "running"), None)
    points = [(e.time, e.step) for e in rd.events() if e.type == "metric"]
    if started is None:
        return float("nan")
    late = [(t, s) for t, s in points if t >= started + SETTLE_S]
    if len(late) < 2 or late[-1][0] <= late[0][0]:
        return float("nan")
    return (late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0])



def busy(share: float, stop) -> None:
    """Takes ``share`` of one core in 5 ms bursts, as a drawing program would."""
    burst = 0.005
    while not stop.is_set():
        t = time.perf_counter()
        while time.perf_counter() - t < burst:
            pass
        time.sleep(burst / share - burst)


def run_with_load(sets, steps, share):
    """Headless training beside a plain busy loop that takes the studio's share of a core."""
    stop = multiprocessing.Event()
    load = multiprocessing.Process(target=busy, args=(share, stop), daemon=True)
    load.start()
    try:
        return run_headless(sets, steps)
    finally:
        stop.set()
        load.join()


def run_headless(sets, steps):
    from engine.launch import start_engine
    from engine.runs import create_run

    rd = create_run("vae", sets, steps, "cpu", None)
    start_engine(rd.path).wait()
    return steps_per_s(rd), steady_steps_per_s(rd)


def run_with_studio(sets, steps):
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run("vae", sets, steps, "cpu", None)
    proc = start_engine(rd.path)
    share = None  # of one core, taken by the studio once it is up (tmux only)
    if shutil.which("tmux"):
        session = f"gsbench{time.monotonic_ns()}"
        cmd = f"{sys.executable} -m studio.cli --graphics halfblock attach {rd.path}"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60",
                        "-e", "COLORTERM=truecolor", "-c", str(ROOT), cmd], check=True)
        pane = subprocess.run(["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
                              capture_output=True, text=True).stdout.strip()
        try:
            try:
                proc.wait(timeout=SETTLE_S)
            except subprocess.TimeoutExpired:
                t0, c0 = time.monotonic(), process_cpu_seconds(int(pane)) if pane.isdigit() else None
                proc.wait()
                c1 = process_cpu_seconds(int(pane)) if pane.isdigit() else None
                if c0 is not None and c1 is not None and c1 - c0 == c1 - c0:  # (NaN: not read)
                    share = (c1 - c0) / (time.monotonic() - t0)
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
    return steps_per_s(rd), steady_steps_per_s(rd), share, how


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    fresh_home()
    sets: list[str] = []
    print(f"VAE default preset, {args.steps} steps per run, CPU")
    run_headless(sets, 20)  # warm the digit cache and the classifier
    alone, watched, alone_late, watched_late, shares, loaded = [], [], [], [], [], []
    for i in range(args.repeats):
        a, a_late = run_headless(sets, args.steps)
        w, w_late, share, how = run_with_studio(sets, args.steps)
        alone.append(a)
        watched.append(w)
        alone_late.append(a_late)
        watched_late.append(w_late)
        line = (f"  round {i + 1}: headless {a:.1f} steps/s, with studio ({how}) {w:.1f} steps/s; "
                f"after {SETTLE_S:.0f} s: {a_late:.1f} and {w_late:.1f}")
        if share is not None:
            shares.append(share)
            b, _ = run_with_load(sets, args.steps, share)
            loaded.append(b)
            line += f"; the studio took {share:.3f} of a core; headless beside a busy loop taking as much: {b:.1f}"
        print(line)
    late = statistics.mean(watched_late) / statistics.mean(alone_late)
    print(f"  after the studio's start-up (from {SETTLE_S:.0f} s on): {late:.3f}")
    if loaded:
        print(f"  reference: a plain busy loop taking {statistics.mean(shares):.3f} of a core (the studio's share) "
              f"costs headless training {statistics.mean(loaded) / statistics.mean(alone):.3f} "
              f"(on {os.cpu_count()} CPUs, the engine using torch's default threads)")
    ratio = statistics.mean(watched) / statistics.mean(alone)
    print(f"RESULT: steps/s with the studio attached / headless = {ratio:.3f} (target >= 0.97)")


if __name__ == "__main__":
    main()
