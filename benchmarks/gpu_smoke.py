"""A smoke run of every registered recipe, each in its own engine process as the studio
starts it, on one device: does the recipe train, draw its views and save a checkpoint there,
and how fast. Engine-only (no Textual, no rich): it runs on a bare GPU machine.

    python benchmarks/gpu_smoke.py [--device cuda] [--seconds 12] [--recipe NAME ...]

Prints one row per recipe: state, steps trained, steps/s, samples/s (its unit), the last
training loss, and the error if it failed. Exit 1 when any recipe failed.
"""

from __future__ import annotations

import argparse
import time

from common import fresh_home, wait_for


def smoke(recipe: str, device: str, seconds: float) -> dict:
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run(recipe, [], 10_000_000, device, None)
    t0 = time.monotonic()
    proc = start_engine(rd.path)
    try:
        def done():
            h = read_history(rd)
            return h if h.state in ("failed", "finished", "stopped") or h.status.get("elapsed", 0.0) >= seconds else None
        wait_for(done, timeout=120 + 3 * seconds, interval=0.2)
    except TimeoutError:
        pass
    finally:
        rd.send("stop")
        try:
            proc.wait(timeout=120)
        except Exception:  # noqa: BLE001 - a hung engine is itself the finding
            proc.kill()
    h = read_history(rd)
    loss = next((h.metrics[k][-1][1] for k in sorted(h.metrics) if k.startswith("train/loss")), None)
    status = h.status
    return {"recipe": recipe, "state": h.state, "steps": h.step, "steps_per_s": status.get("steps_per_s", 0.0),
            "samples_per_s": status.get("samples_per_s", 0.0), "unit": status.get("unit", ""), "loss": loss,
            "views": len(h.samples), "wall": time.monotonic() - t0,
            "error": h.errors[-1]["message"][:80] if h.errors else ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=("auto", "cpu", "cuda", "mps"))
    ap.add_argument("--seconds", type=float, default=12.0, help="training seconds per recipe (after start-up)")
    ap.add_argument("--recipe", action="append", help="only these recipes (repeatable)")
    args = ap.parse_args()
    fresh_home()
    from engine.registry import RECIPES

    rows = [smoke(name, args.device, args.seconds) for name in (args.recipe or sorted(RECIPES))]
    print(f"{'recipe':<18} {'state':<9} {'steps':>6} {'steps/s':>9} {'samples/s':>14} {'loss':>9} {'views':>5} "
          f"{'wall s':>6}  error")
    for r in rows:
        loss = f"{r['loss']:.4g}" if r["loss"] is not None else "-"
        print(f"{r['recipe']:<18} {r['state']:<9} {r['steps']:>6} {r['steps_per_s']:>9.1f} "
              f"{r['samples_per_s']:>9,.0f} {r['unit'][:4]:<4} {loss:>9} {r['views']:>5} {r['wall']:>6.0f}  {r['error']}")
    bad = [r["recipe"] for r in rows if r["state"] == "failed" or not r["steps"]]
    print(f"RESULT: {len(rows) - len(bad)}/{len(rows)} recipes trained on {args.device}" + (f"; failed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
