"""How good the diffusion lesson's default preset gets in a fixed time, and what each
sampler costs: recognisability and class coverage (the digit classifier, as the lesson's
curves use it) of samples drawn by DDPM (all T steps) and by DDIM at 10, 25 and 50 steps.

1. A headless engine run of the default `diffusion` preset on the embedded digits (the
   studio's way: its own process, the runner's views and scores included), stopped after
   --seconds of wall time from launch. The first time the run's own scores (DDIM at
   sampler_steps, 64 fixed-seed samples) reached recognisability >= --threshold with full
   coverage is printed too.
2. The checkpoint it left, loaded into a fresh recipe; the same --n fixed noise images are
   sampled by each sampler with the EMA weights, timed, and scored.

Threshold for "good" (fixed before the preset was tuned): recognisability >= 0.85 and
coverage 1.0. Real held-out digits score about 0.99 (printed as the reference).

    python benchmarks/diffusion_quality.py [--seconds 180] [--n 64] [--device cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import time

from common import fresh_home, timed_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0, help="training budget, wall seconds from launch")
    ap.add_argument("--n", type=int, default=64, help="images per sampler (coverage needs n/50 of each class)")
    ap.add_argument("--threshold", type=float, default=0.85)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-ddpm", action="store_true", help="DDPM takes T network calls: skip it")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.schema import validate
    from engine.configs.diffusion import DiffusionConfig
    from engine.data.digits import load_digits
    from engine.device import resolve_device
    from engine.metrics.digit_classifier import get_digit_classifier, score_digits
    from engine.recipes.base import RunContext
    from engine.recipes.diffusion import DiffusionRecipe
    from engine.rundir import read_history

    t0 = time.monotonic()
    clf = get_digit_classifier("cpu", log=lambda m: print("  ", m))
    x, _ = load_digits(2000, 777)
    ref = score_digits(clf, x.unsqueeze(1).float() / 255)
    print(f"digit classifier ready in {time.monotonic() - t0:.1f}s; real held-out digits score "
          f"recognisability {ref['recognisability']:.3f}, coverage {ref['coverage']:.2f}")

    def hit(h):
        rec, cov = h.metrics.get("quality/recognisability", []), h.metrics.get("quality/coverage", [])
        return next(((s, r) for (s, r), (_, c) in zip(rec, cov) if r >= args.threshold and c >= 1.0), None)

    rd, wall, first_hit = timed_run("diffusion", args.sets, args.seconds, args.device, hit)
    launch = time.monotonic() - wall
    params = rd.read_config()["params"]
    h = read_history(rd)
    rec = h.metrics.get("quality/recognisability", [])
    print(f"trained {h.step:,} steps in {wall:.0f}s wall from launch "
          f"({h.status.get('elapsed', 0):.0f}s training time, {h.status.get('steps_per_s', 0):.1f} steps/s at the end)")
    print("in-run recognisability (step: value):",
          ", ".join(f"{s}: {v:.2f}" for s, v in rec[:: max(1, len(rec) // 12)]))
    if first_hit:
        print(f"in-run scores first reached recognisability >= {args.threshold} with full coverage "
              f"{first_hit[0]:.0f}s from launch, at step {first_hit[1]:,} (recognisability {first_hit[2]:.3f})")
    else:
        print(f"in-run scores did not reach recognisability >= {args.threshold} with full coverage")

    dev = resolve_device(args.device)
    cfg = validate(DiffusionConfig, params)
    recipe = DiffusionRecipe(RunContext(device=dev, need_data=False), cfg)
    recipe.load_state_dict(load_checkpoint(rd.checkpoint_path, map_location=dev)["state"])
    if dev.type == "cpu" and recipe.cpu_threads:
        torch.set_num_threads(recipe.cpu_threads)  # as the engine samples
    x_T = torch.randn(args.n, *recipe.shape, generator=torch.Generator().manual_seed(1234)).to(dev)
    clf_dev = get_digit_classifier(dev)
    samplers = [(f"DDIM {k:>3} steps", lambda k=k: recipe.ddim(x_T, k)) for k in (10, 25, 50)]
    if not args.skip_ddpm:
        samplers.append((f"DDPM {cfg.timesteps} steps",
                         lambda: recipe.ddpm(x_T, torch.Generator().manual_seed(99))))
    for name, run in samplers:
        images, seconds = recipe._timed(run)
        s = score_digits(clf_dev, recipe.to_unit(images))
        print(f"{name}: recognisability {s['recognisability']:.3f}, coverage {s['coverage']:.1f}, "
              f"confident {s['confident']:.2f}; {args.n} images in {seconds:.2f}s", flush=True)
    print(f"wall time from launch: {time.monotonic() - launch:.0f}s")


if __name__ == "__main__":
    main()
