"""How close the RealNVP lesson's default preset gets to the true density, and how fast.

1. A headless engine run of the default `realnvp` preset (eight Gaussians, the studio's
   way: its own process, the runner's views and evaluations included). Its curves hold the
   held-out NLL (val/nll) and the true density's NLL on the same 2,000 held-out points
   (val/true_nll, the reference: the lowest NLL any model can expect there). Printed: when
   the gap first fell to --bar nats or less (seconds from launch, step), the gap at --seconds,
   and the gap when the run's own schedule ends (or at --max-seconds).
2. A headless run on the embedded digits for --digit-seconds: held-out bits per pixel
   (val/bits_per_dim) at the start and the end. References: 8 bits (a uniform density on
   each pixel's 256 levels) and the untrained flow's own figure.

The bar (set by the lesson's issue): within 0.1 nats of the true NLL within 60 s on a
2-core CPU. The machine's load average is printed: other programs on the cores make every
wall-clock figure pessimistic; the step counts do not depend on it.

    python benchmarks/realnvp_quality.py [--seconds 60] [--digit-seconds 180] [--device cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import os
import time

from common import fresh_home, wait_for


def run(recipe: str, sets: list[str], device: str, seconds: float, metric, stop_when=None):
    """Launch a headless run; poll its history every 0.5 s until ``seconds`` from launch (or
    it finishes, or ``stop_when(history)``); return (history, launch time, [(seconds from
    launch, step, metric(history))] as seen while polling)."""
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run(recipe, sets, None, device, None)
    launch = time.monotonic()
    proc = start_engine(rd.path)
    seen = []
    try:
        def done():
            h = read_history(rd)
            if h.state == "failed":
                raise RuntimeError(f"engine run failed: {h.errors}")
            value = metric(h)
            if value is not None and (not seen or seen[-1][1] != value[0]):
                seen.append((time.monotonic() - launch, *value))
            return (h.state in ("finished", "stopped") or time.monotonic() - launch >= seconds
                    or (stop_when is not None and stop_when(h)))
        wait_for(done, timeout=seconds + 300, interval=0.5)
    finally:
        rd.send("stop")
        proc.wait(timeout=120)
    return read_history(rd), rd, seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="the bar's budget, wall seconds from launch")
    ap.add_argument("--bar", type=float, default=0.1, help="nats above the true NLL that count as reached")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="stop the 2-D run here if it is still going")
    ap.add_argument("--digit-seconds", type=float, default=180.0, help="0 skips the digits")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} cores at the start")

    def gap(h):
        nll, true = h.metrics.get("val/nll", []), h.metrics.get("val/true_nll", [])
        if not nll or not true:
            return None
        return nll[-1][0], nll[-1][1], true[-1][1]

    h, rd, seen = run("realnvp", args.sets, args.device, args.max_seconds, gap)
    params = rd.read_config()["params"]
    print(f"run {rd.path}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if not seen:
        raise SystemExit("no held-out NLL was reported (is the shape 'gaussians'?)")
    first = next(((t, s, n - r) for t, s, n, r in seen if n - r <= args.bar), None)
    at_budget = [p for p in seen if p[0] <= args.seconds]
    for t, s, n, r in seen[:: max(1, len(seen) // 12)]:
        print(f"  {t:6.1f}s  step {s:6,}  held-out NLL {n:.4f}  true {r:.4f}  gap {n - r:+.4f}")
    if first:
        print(f"gap first <= {args.bar} nats {first[0]:.1f}s from launch, at step {first[1]:,} (gap {first[2]:+.4f})")
    else:
        print(f"the gap never fell to {args.bar} nats")
    if at_budget:
        t, s, n, r = at_budget[-1]
        print(f"at {args.seconds:.0f}s (last evaluation {t:.1f}s, step {s:,}): held-out NLL {n:.4f} against the "
              f"true density's {r:.4f} on the same points: gap {n - r:+.4f} nats "
              f"({'within' if n - r <= args.bar else 'NOT within'} {args.bar})")
    t, s, n, r = seen[-1]
    print(f"at the end ({h.state}, step {h.step:,}, {t:.0f}s): held-out NLL {n:.4f}, true {r:.4f}, gap {n - r:+.4f}; "
          f"{h.status.get('steps_per_s', 0):.0f} steps/s at the end")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} after the 2-D run")

    if args.digit_seconds > 0:
        def bpd(h):
            v = h.metrics.get("val/bits_per_dim", [])
            return (v[-1][0], v[-1][1]) if v else None

        h, rd, seen = run("realnvp", ["dataset=digits", *args.sets], args.device, args.digit_seconds, bpd)
        if not seen:
            raise SystemExit("no bits per pixel were reported")
        (_, s0, b0), (t1, s1, b1) = seen[0], seen[-1]
        print(f"digits: held-out {b1:.3f} bits/pixel at step {s1:,} ({t1:.0f}s from launch); references: "
              f"the untrained flow {b0:.3f} (step {s0}), a uniform density 8.000")
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} at the end")


if __name__ == "__main__":
    main()
