"""How long each lesson's default preset trains on a CPU: the figures behind the catalog's
"~N min on a CPU" (the ``minutes`` field in each lesson's front matter).

For every lesson (or those named), its recipe is built with the default preset in this
process, as the engine builds it, and timed in CPU seconds (this process's user + system
time), which other programs on the machine hardly change, unlike the wall clock:

- setup: building the recipe (data, model, optimiser; cached data as a second lesson on
  the same data finds it);
- one training step, over at least --seconds of CPU time after two warm-up steps;
- one refresh of the views (samples and scores), which the runner spreads so that they
  take at most 8% of the time (engine/runner.py SAMPLE_BUDGET).

With --threads 1 (the default) torch runs on one thread, so a step's CPU time is what one
core takes: a 2-core CPU with nothing else running trains at least that fast. The
estimate is setup + default steps x step / (1 - the views' share), in minutes, rounded
up. The wall-clock rate is printed beside it, with the load average, as the reference
for how busy the machine was (a busy machine shares its cores: the wall clock runs
slower than the CPU time by about the load over the cores).

    python benchmarks/lesson_minutes.py [--seconds 3] [--threads 1] [LESSON_ID ...]
"""

from __future__ import annotations

import argparse
import math
import os
import time

from common import fresh_home

VIEW_SHARE = 0.08  # engine/runner.py SAMPLE_BUDGET: the views' largest share of the time


def clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def measure(lesson, seconds: float) -> dict:
    import torch

    from engine.recipes import build_recipe
    from engine.recipes.base import RunContext
    from engine.registry import get_config_class
    from engine.schema import specs

    defaults = {s.name: s.default for s in specs(get_config_class(lesson.recipe))}
    c0, w0 = clocks()
    recipe = build_recipe(lesson.recipe, defaults, RunContext(torch.device("cpu")))
    c1, w1 = clocks()
    for _ in range(2):  # warm-up: allocator, first batches
        recipe.train_step()
    n, c2, w2 = 0, *clocks()
    while n < 3 or time.process_time() - c2 < seconds:
        recipe.train_step()
        n += 1
    c3, w3 = clocks()
    with torch.random.fork_rng():
        recipe.samples()
        recipe.evaluate()
    c4, _ = clocks()
    step, views = (c3 - c2) / n, c4 - c3
    share = min(VIEW_SHARE, views / max(recipe.view_interval, 1e-9))
    total = (c1 - c0) + defaults["steps"] * step / (1 - share)
    return {"lesson": lesson.id, "steps": defaults["steps"], "setup": c1 - c0, "step": step,
            "wall_rate": n / (w3 - w2), "views": views, "share": share, "minutes": math.ceil(total / 60),
            "stated": lesson.minutes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("lessons", nargs="*", help="lesson ids (default: every lesson)")
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU seconds of training timed per lesson")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    fresh_home()
    import torch

    torch.set_num_threads(args.threads)
    from studio.lessons import load_lessons

    lessons = [l for l in load_lessons() if not args.lessons or l.id in args.lessons]
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; torch threads: "
          f"{torch.get_num_threads()}", flush=True)
    print(f"{'lesson':<20} {'steps':>6} {'setup s':>8} {'s/step':>8} {'views s':>8} {'share':>6} "
          f"{'wall steps/s':>12} {'min':>4} {'stated':>6}", flush=True)
    for lesson in lessons:
        torch.manual_seed(0)
        try:
            r = measure(lesson, args.seconds)
        except Exception as e:  # one recipe failing should not hide the others' figures
            print(f"{lesson.id:<20} failed: {type(e).__name__}: {e}", flush=True)
            continue
        print(f"{r['lesson']:<20} {r['steps']:>6} {r['setup']:>8.1f} {r['step']:>8.4f} {r['views']:>8.2f} "
              f"{r['share']:>6.3f} {r['wall_rate']:>12.2f} {r['minutes']:>4} "
              f"{r['stated'] if r['stated'] is not None else '-':>6}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
