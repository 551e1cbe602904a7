"""Held-out translation quality against wall time, with the translator lesson's default
preset, headless, on this machine's CPU.

Target (fixed before the preset was tuned): exact match >= 0.80 on the 100 fixed held-out
pairs the engine scores during training (greedy decoding: the whole French sentence must
be right, every accent and hyphen). The clock starts when the engine process is launched,
so it includes starting Python, importing torch and generating the corpus. Other programs
on the machine slow the figures down: the load average is printed before and after.

After training, the final checkpoint is also scored on all 500 held-out pairs.

    python benchmarks/translator_quality.py [--threshold 0.8] [--every 10] [--limit 600] [--set key=value]
"""

from __future__ import annotations

import argparse
import os
import time

from common import fresh_home, wait_for


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", type=float, default=0.80)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between lines of the table")
    ap.add_argument("--limit", type=float, default=600.0, help="give up after this many seconds")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    fresh_home()

    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run("translator", args.sets, None, "cpu", None)
    params = rd.read_config()["params"]
    print(f"run {rd.path}: default preset{' with ' + ', '.join(args.sets) if args.sets else ''} "
          f"({params['steps']} steps); {os.cpu_count()} CPUs, load average {load()} before")
    launch = time.time()
    proc = start_engine(rd.path)
    try:
        wait_for(lambda: read_history(rd).state in ("finished", "failed", "stopped") or proc.poll() is not None,
                 timeout=args.limit, interval=0.5)
    except TimeoutError:
        print(f"stopped after {args.limit:.0f}s")
        rd.send("stop")
    proc.wait(timeout=120)
    print(f"load average {load()} after")
    events = rd.events()
    if read_history(rd).state != "finished":
        print("RESULT: the run did not finish:", [e.payload for e in events if e.type == "error"])
        return

    # (seconds from launch, step, exact match, BLEU) for every evaluation.
    scores = [(e.time - launch, e.step, e.payload["quality/exact_match"], e.payload["quality/bleu"])
              for e in events if e.type == "metric" and "quality/exact_match" in e.payload]
    print(f"{'seconds':>8} {'step':>6} {'exact':>6} {'BLEU':>6}")
    mark = 0.0
    for i, (t, step, exact, bleu) in enumerate(scores):
        if t >= mark or i == len(scores) - 1:
            print(f"{t:8.1f} {step:6d} {exact:6.3f} {bleu:6.3f}")
            mark = t + args.every
    hit = next((s for s in scores if s[2] >= args.threshold), None)
    if hit:
        print(f"RESULT: exact match >= {args.threshold} first at {hit[0]:.1f}s from launch (step {hit[1]}, "
              f"exact {hit[2]:.3f}, BLEU {hit[3]:.3f}); final {scores[-1][2]:.3f} at {scores[-1][0]:.1f}s")
    else:
        print(f"RESULT: exact match never reached {args.threshold} (best {max(s[2] for s in scores):.3f})")

    import torch

    from engine.checkpoint import load_checkpoint
    from engine.recipes import build_recipe
    from engine.recipes.base import RunContext

    torch.set_num_threads(1)
    recipe = build_recipe("translator", params, RunContext(device=torch.device("cpu")))
    recipe.load_state_dict(load_checkpoint(rd.checkpoint_path)["state"])
    full = recipe.score(recipe.heldout)
    print(f"final checkpoint on all {len(recipe.heldout)} held-out pairs: exact match "
          f"{full['quality/exact_match']:.3f}, BLEU {full['quality/bleu']:.3f}")


if __name__ == "__main__":
    main()
