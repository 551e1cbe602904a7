"""How good the energy-based model lesson's presets get in a fixed time, against references
measured in the same run.

1. Points (the default preset, the ring): a headless engine run (the studio's way: its own
   process, the runner's views and scores included), left to finish its steps (or stopped
   after --toy-seconds of wall time from launch). Its own score is the sliced Wasserstein distance from 1,000 chains run
   from fixed noise to real points. The bar is the lesson's (its front matter), the GAN
   lesson's for the ring: 0.1, between the floor (two real samples) and a Gaussian blob
   fitted to the shape, both printed with their geometric mean (the bar for other shapes).
2. Digits (dataset=digits): the same, left to finish the digits preset's steps (or stopped
   after --seconds). The bar (the issue's): recognisability >= --threshold and coverage >=
   --coverage (8 of the 10 digits, each at least twice among the 64 chains the run scores)
   within 3 minutes on a 2-core CPU: the bar is judged at the run's end, and the engine's
   CPU seconds are printed beside the wall clock (the recipe trains on one thread, so they
   are one core's time). Early on the chains can all fall into one valley, recognisable
   but all the same digit: coverage is what tells.
   References: real held-out digits, and the uniform noise the chains start from. The
   checkpoint the run left is loaded into a fresh recipe and --n new chains from noise are
   scored too, after each of --sample-steps Langevin steps (the views use sample_steps).

Wall-clock figures depend on what else the machine runs: the load average is printed at
the start and at the end, and step counts with every figure.

    python benchmarks/ebm_quality.py [--seconds S] [--toy-seconds S] [--n 256] [--sample-steps 20,100,300]
                                     [--skip-toy] [--skip-digits] [--set key=value]
"""

from __future__ import annotations

import argparse
import os
import time

from common import children_cpu_seconds, fresh_home, timed_run


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def headless(sets: list[str], seconds: float | None, metric: str, hit, device: str):
    """Run the ebm preset with ``sets`` for ``seconds`` from launch (None: to its end) and
    print its in-run ``metric``; return (run, history, the first hit of ``hit``, see
    common.timed_run, wall seconds, the engine's CPU seconds)."""
    from engine.rundir import read_history

    cpu0 = children_cpu_seconds()
    rd, wall, first = timed_run("ebm", sets, seconds, device, hit)
    cpu = children_cpu_seconds() - cpu0
    h = read_history(rd)
    values = h.metrics.get(metric, [])
    print(f"trained {h.step:,} steps in {wall:.0f}s wall from launch, the engine using {cpu:.0f} CPU seconds "
          f"({h.status.get('elapsed', 0):.0f}s training time, {h.status.get('steps_per_s', 0):.1f} steps/s at the end); "
          f"{load()}")
    print(f"in-run {metric} (step: value):",
          ", ".join(f"{s}: {v:.3f}" for s, v in values[:: max(1, len(values) // 12)] + values[-1:]))
    return rd, h, first, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=None, help="digits: stop after this many wall seconds "
                    "(default: the preset's steps)")
    ap.add_argument("--toy-seconds", type=float, default=None, help="points: the same")
    ap.add_argument("--threshold", type=float, default=0.7, help="digits: the recognisability bar")
    ap.add_argument("--coverage", type=float, default=0.8, help="digits: coverage printed beside the bar "
                    "(recognisable samples that are all one digit are not a success)")
    ap.add_argument("--n", type=int, default=256, help="digits: fresh chains scored from the final checkpoint")
    ap.add_argument("--sample-steps", default="20,100,300", help="digits: Langevin steps those chains run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-toy", action="store_true")
    ap.add_argument("--skip-digits", action="store_true")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    print(load(), flush=True)
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.configs.ebm import EBMConfig
    from engine.data.digits import load_digits
    from engine.device import resolve_device
    from engine.metrics.digit_classifier import get_digit_classifier, score_digits
    from engine.metrics.distance2d import reference_scale
    from engine.recipes.base import RunContext
    from engine.recipes.ebm import EBMRecipe
    from engine.schema import validate
    from studio.lessons import get_lesson

    if not args.skip_toy:
        shape = validate(EBMConfig, {k: v for k, v in (s.split("=", 1) for s in args.sets)
                                     if k == "toy_shape"}).toy_shape
        ref = reference_scale(shape)
        middle = (ref["sw_floor"] * ref["sw_blob"]) ** 0.5
        # The lesson's bar, as its front matter (and the GAN lesson's) states it for the ring.
        bar = get_lesson("ebm-langevin").bar.at_most if shape == "ring" else middle
        print(f"\n== points ({shape}) ==\nreferences: two real samples {ref['sw_floor']:.3f}, a fitted Gaussian blob "
              f"{ref['sw_blob']:.3f}, their geometric mean {middle:.3f}; the bar {bar:.3f}", flush=True)
        def below(h):
            return next(((s, v) for s, v in h.metrics.get("quality/sliced_wasserstein", []) if v < bar), None)

        _, h, first, _, _ = headless(args.sets, args.toy_seconds, "quality/sliced_wasserstein", below, args.device)
        sw = [v for _, v in h.metrics.get("quality/sliced_wasserstein", [])]
        if first:
            after = [v for s, v in h.metrics["quality/sliced_wasserstein"] if s >= first[1]]
            print(f"in-run distance first below {bar:.3f} {first[0]:.0f}s from launch, at step {first[1]:,} "
                  f"({first[2]:.3f}); from then on {sum(v < bar for v in after)} of {len(after)} scores were below, "
                  f"range {min(after):.3f}-{max(after):.3f}")
        else:
            print(f"in-run distance never went below {bar:.3f} (best {min(sw):.3f})" if sw else "no scores")

    if not args.skip_digits:
        t0 = time.monotonic()
        clf = get_digit_classifier("cpu", log=lambda m: print("  ", m))
        x, _ = load_digits(2000, 777)
        real = score_digits(clf, x.unsqueeze(1).float() / 255)
        noise = score_digits(clf, torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
        print(f"\n== digits ==\ndigit classifier ready in {time.monotonic() - t0:.1f}s; references: real held-out "
              f"digits score recognisability {real['recognisability']:.3f} (coverage {real['coverage']:.1f}), "
              f"the uniform noise the chains start from {noise['recognisability']:.3f}", flush=True)
        def scores(h):  # [(step, recognisability, coverage)]
            return [(s, r, c) for (s, r), (_, c) in zip(h.metrics.get("quality/recognisability", []),
                                                         h.metrics.get("quality/coverage", []))]

        def good(h):
            return next(((s, r) for s, r, _ in scores(h) if r >= args.threshold), None)

        rd, h, first, wall, cpu = headless(["dataset=digits", *args.sets], args.seconds, "quality/recognisability",
                                           good, args.device)
        print("in-run coverage (step: value):", ", ".join(f"{s}: {c:.1f}" for s, _, c in scores(h)))
        if first:
            print(f"in-run recognisability first >= {args.threshold} {first[0]:.0f}s from launch, at step {first[1]:,} "
                  f"({first[2]:.3f})")
        else:
            print(f"in-run recognisability did not reach {args.threshold} within {args.seconds:.0f}s")
        varied = next(((s, r, c) for s, r, c in scores(h) if r >= args.threshold and c >= args.coverage), None)
        print(f"in-run recognisability >= {args.threshold} with coverage >= {args.coverage}: "
              + (f"first at step {varied[0]:,} ({varied[1]:.3f}, coverage {varied[2]:.1f})" if varied else "not reached"))
        if scores(h):
            s, r, c = scores(h)[-1]
            met = r >= args.threshold and c >= args.coverage
            print(f"BAR at the run's end (step {s:,}, {wall:.0f}s wall, {cpu:.0f} CPU s): recognisability {r:.3f} "
                  f"(bar {args.threshold}), coverage {c:.1f} (bar {args.coverage}): {'MET' if met else 'MISSED'}")
        dev = resolve_device(args.device)
        cfg = validate(EBMConfig, rd.read_config()["params"])
        recipe = EBMRecipe(RunContext(device=dev, need_data=False), cfg)
        recipe.load_state_dict(load_checkpoint(rd.checkpoint_path, map_location=dev)["state"])
        torch.set_num_threads(recipe.cpu_threads or torch.get_num_threads())
        for k in (int(v) for v in args.sample_steps.split(",")):
            recipe.cfg.sample_steps = k
            t = time.perf_counter()
            images = recipe.sample_images(args.n, torch.Generator().manual_seed(1234))
            s = score_digits(get_digit_classifier(dev), images)
            print(f"{args.n} new chains from noise ({k} Langevin steps, {time.perf_counter() - t:.1f}s): "
                  f"recognisability {s['recognisability']:.3f}, coverage {s['coverage']:.1f}, "
                  f"confident {s['confident']:.2f}")
        buffer = score_digits(get_digit_classifier(dev), recipe.to_unit(recipe.buffer.items[:args.n]))
        print(f"{args.n} images from the replay buffer: recognisability {buffer['recognisability']:.3f}, "
              f"coverage {buffer['coverage']:.1f}")
    print("\n" + load())


if __name__ == "__main__":
    main()
