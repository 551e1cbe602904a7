"""How well the masked language model lesson's default preset fills in held-out blanks, against
references measured in the same run.

A headless engine run of the default `mlm` preset (the studio's way: its own process, the
runner's views and evaluations included), stopped --seconds of wall time after launch (or
when its own schedule ends). Its curves hold, on the same held-out blanks (every chosen word
of fixed windows of the last tenth of the corpus, replaced by [MASK]):

- val/accuracy: the share of blanks whose top guess is the hidden word (the lesson's bar);
- val/unigram: the reference, always guessing the most frequent word of the training text;
- val/left_only: the same model with the words to each blank's right cut away (what a
  left-to-right reader such as the GPT could use).

Printed: the three at --seconds and at the end, with step counts, and when the accuracy
first reached --bar. The load average is printed: other programs on the cores make every
wall-clock figure pessimistic; the step counts do not depend on it.

    python benchmarks/mlm_quality.py [--seconds 180] [--bar 0.15] [--device cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import os

from common import fresh_home
from realnvp_quality import run  # a headless run polled until a time, with what it saw

NAMES = ("val/accuracy", "val/unigram", "val/left_only")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0, help="the bar's budget, wall seconds from launch")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop the run here if it is still going")
    ap.add_argument("--bar", type=float, default=0.15, help="held-out masked-word accuracy that counts as reached")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    print(load(), "at the start", flush=True)

    def scores(h):
        if not all(h.metrics.get(n) for n in NAMES):
            return None
        return (h.metrics["val/accuracy"][-1][0], *(h.metrics[n][-1][1] for n in NAMES))

    h, rd, seen = run("mlm", args.sets, args.device, args.max_seconds, scores)
    params = rd.read_config()["params"]
    print(f"run {rd.path}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if not seen:
        raise SystemExit("no held-out scores were reported")
    for t, s, acc, uni, left in seen[:: max(1, len(seen) // 12)]:
        print(f"  {t:6.1f}s  step {s:6,}  accuracy {acc:.3f}  unigram {uni:.3f}  left only {left:.3f}")
    first = next(((t, s, acc) for t, s, acc, _, _ in seen if acc >= args.bar), None)
    if first:
        print(f"accuracy first >= {args.bar} {first[0]:.1f}s from launch, at step {first[1]:,}")
    else:
        print(f"the accuracy never reached {args.bar}")
    at_budget = [p for p in seen if p[0] <= args.seconds]
    if at_budget:
        t, s, acc, uni, left = at_budget[-1]
        print(f"at {args.seconds:.0f}s (last evaluation {t:.1f}s, step {s:,}): held-out masked-word accuracy "
              f"{acc:.3f} against the unigram guess's {uni:.3f} on the same blanks ({acc / max(uni, 1e-9):.1f}x; "
              f"{'reached' if acc >= args.bar else 'NOT reached'} the bar {args.bar}); left only {left:.3f}")
    t, s, acc, uni, left = seen[-1]
    print(f"at the end ({h.state}, step {h.step:,}, {t:.0f}s): accuracy {acc:.3f}, unigram {uni:.3f}, "
          f"left only {left:.3f}; {h.status.get('steps_per_s', 0):.1f} steps/s at the end")
    print(load(), "at the end")


if __name__ == "__main__":
    main()
