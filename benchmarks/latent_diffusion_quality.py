"""Latent diffusion against pixel-space diffusion: the CPU time each takes to reach the same
recognisability bar, what one training step and one sampled batch cost in each space, and
the quality each ends at, all measured in the same run.

1. Two headless engine runs, started as the studio starts them, each on one core
   (OMP_NUM_THREADS=1, and both recipes train on one thread): the diffusion lesson's preset
   (pixel space; its steps cut to --pixel-steps, which does not change its training, its
   learning rate being constant) and the latent diffusion lesson's preset (its autoencoder
   phase, then the U-Net), each left to finish its steps. Printed for each: when the run's
   own scores (64 fixed-seed DDIM samples) first reached recognisability >= --threshold
   with all ten digits: the step, the engine's CPU seconds at that moment (read from
   /proc while it runs; Linux) and the seconds from launch; and the whole run's CPU
   seconds. The ratio of the CPU seconds to the bar is the speed-up.
2. --n new samples from each run's final weights, scored by the digit classifier, beside
   references scored the same way: real held-out digits, the autoencoder's reconstructions
   of them (the best the latent model can reach), and unit noise put through the scaler's
   inverse and decoded (what the decoder makes of latents the U-Net did not draw).
3. In this process, on one thread, from the same weights: the cost of one training step
   (and per image: the two presets use different batches), and of drawing one batch of
   64 samples with DDIM (--sampler-steps; the latent batch's time includes decoding),
   with their ratios. (Timing the steps trains the models on, so it comes last.)

Bar (fixed before the preset was tuned): the latent preset reaches the diffusion lesson's
own bar (recognisability >= 0.85 with all ten digits) within about 3 minutes on a 2-core
CPU, autoencoder included, in less CPU time than pixel-space diffusion.

    python benchmarks/latent_diffusion_quality.py [--pixel-steps 3000] [--n 200] [--set key=value]
                                                  [--reuse PIXEL_RUN LATENT_RUN]
"""

from __future__ import annotations

import argparse
import os
import time

from common import children_cpu_seconds, fresh_home, process_cpu_seconds, steps_per_second, timed_run

ONE_CORE = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"



def headless(recipe: str, sets: list[str], threshold: float):
    """Run ``recipe`` with ``sets`` to its end on one core; return (run, history, first hit
    as (step, recognisability, engine CPU seconds, seconds from launch), total CPU seconds)."""
    from engine.rundir import list_runs, read_history

    first = None
    launch = time.monotonic()

    def hit(h):
        nonlocal first
        rec, cov = h.metrics.get("quality/recognisability", []), h.metrics.get("quality/coverage", [])
        found = next(((s, r) for (s, r), (_, c) in zip(rec, cov) if r >= threshold and c >= 1.0), None)
        if found and first is None:
            runs = list_runs()  # this benchmark's own home: the newest run is the one training
            first = (*found, process_cpu_seconds(runs[0].engine_pid() if runs else None), time.monotonic() - launch)
        return found

    cpu0 = children_cpu_seconds()
    rd, wall, _ = timed_run(recipe, sets, None, "cpu", hit, env=ONE_CORE)
    cpu = children_cpu_seconds() - cpu0
    h = read_history(rd)
    rec = h.metrics.get("quality/recognisability", [])
    print(f"  {h.state}: {h.step:,} steps in {wall:.0f}s wall from launch, {h.status.get('elapsed', 0):.0f}s training "
          f"time; the engine used {cpu:.0f} CPU seconds; {load()}")
    print("  in-run recognisability (step: value):",
          ", ".join(f"{s}: {v:.3f}" for s, v in rec[:: max(1, len(rec) // 12)] + rec[-1:]))
    if first:
        cpu_at = "?" if first[2] != first[2] else f"{first[2]:.0f}"  # NaN: not read
        print(f"  first reached recognisability >= {threshold} with all ten digits at step {first[0]:,} "
              f"({first[1]:.3f}): {cpu_at} CPU seconds, {first[3]:.0f}s from launch", flush=True)
    else:
        print(f"  never reached recognisability >= {threshold} with all ten digits", flush=True)
    return rd, h, first, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pixel-steps", type=int, default=3000, help="steps of the pixel-space run (its preset: 5,000)")
    ap.add_argument("--threshold", type=float, default=0.85, help="the recognisability bar (the diffusion lesson's)")
    ap.add_argument("--n", type=int, default=200, help="fresh samples scored from each run's final weights")
    ap.add_argument("--sampler-steps", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=5.0, help="time each training-step measurement")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="latent preset overrides, key=value")
    ap.add_argument("--reuse", nargs=2, metavar=("PIXEL_RUN", "LATENT_RUN"),
                    help="skip part 1: measure parts 2 and 3 on these two finished runs (their folders)")
    args = ap.parse_args()
    fresh_home()
    print(load(), flush=True)
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.configs.diffusion import DiffusionConfig
    from engine.configs.latent_diffusion import LatentDiffusionConfig
    from engine.data.digits import load_digits
    from engine.metrics.digit_classifier import get_digit_classifier, score_digits
    from engine.recipes.base import RunContext
    from engine.recipes.diffusion import DiffusionRecipe
    from engine.recipes.latent_diffusion import LatentDiffusionRecipe
    from engine.schema import validate

    t0 = time.monotonic()
    clf = get_digit_classifier("cpu", log=lambda m: print("  ", m))  # fitted here once, so the runs only load it
    x, _ = load_digits(2000, 777)  # a seed no run trains on
    held = x.unsqueeze(1).float() / 255
    print(f"digit classifier ready in {time.monotonic() - t0:.1f}s", flush=True)

    if args.reuse:
        from engine.rundir import RunDir, read_history

        pixel_rd, latent_rd = (RunDir(p) for p in args.reuse)
        latent_h, pixel_cpu, latent_cpu = read_history(latent_rd), None, None
        print(f"reusing {pixel_rd.path} and {latent_rd.path} (part 1 skipped)")
    else:
        print(f"\n== pixel space: the diffusion lesson's preset, {args.pixel_steps:,} steps ==")
        pixel_rd, _, pixel_hit, pixel_cpu = headless("diffusion", [f"steps={args.pixel_steps}"], args.threshold)
        print("\n== latent space: the latent diffusion lesson's preset ==")
        latent_rd, latent_h, latent_hit, latent_cpu = headless("latent_diffusion", args.sets, args.threshold)
        if pixel_hit and latent_hit and pixel_hit[2] and latent_hit[2]:
            print(f"\nCPU seconds to the bar: pixel {pixel_hit[2]:.0f} (step {pixel_hit[0]:,}), latent "
                  f"{latent_hit[2]:.0f} (step {latent_hit[0]:,}, autoencoder included): "
                  f"{pixel_hit[2] / latent_hit[2]:.1f}x less CPU in latent space")

    torch.set_num_threads(1)  # as both engines train
    dev = torch.device("cpu")
    ctx = RunContext(device=dev)
    pcfg = validate(DiffusionConfig, pixel_rd.read_config()["params"])
    pixel = DiffusionRecipe(ctx, pcfg)
    pixel.load_state_dict(load_checkpoint(pixel_rd.checkpoint_path)["state"])
    lcfg = validate(LatentDiffusionConfig, latent_rd.read_config()["params"])
    latent = LatentDiffusionRecipe(ctx, lcfg)
    latent.load_state_dict(load_checkpoint(latent_rd.checkpoint_path)["state"])
    if latent.phase != "diffusion":
        raise SystemExit("the latent run stopped before its U-Net trained")

    g = torch.Generator().manual_seed(99)
    print(f"\n== quality: {args.n} fresh samples from each run's final weights, and references ==")

    def line(what, images):
        s = score_digits(clf, images.cpu())
        print(f"  {what:<56} recognisability {s['recognisability']:.3f}, coverage {s['coverage']:.1f}")

    line("real held-out digits", held[:args.n])
    with torch.inference_mode():
        recon = latent.ae.decode(latent.ae.encode(held[:args.n])).float().clamp(0, 1)
    line("their autoencoder reconstructions (the latent ceiling)", recon)
    line("unit noise as latents, decoded (no U-Net)", latent.decode(torch.randn(args.n, *latent.latent_shape,
                                                                                 generator=g)))
    line(f"pixel diffusion, step {pixel_rd.read_config()['params']['steps']:,}",
         pixel.sample_images(args.n, torch.Generator().manual_seed(5)))
    line(f"latent diffusion, step {latent_h.step:,}", latent.sample_images(args.n, torch.Generator().manual_seed(5)))
    print(f"\n== cost on one thread ({load()}) ==")
    p_step = 1 / steps_per_second(pixel.train_step, dev, args.seconds)
    l_step = 1 / steps_per_second(latent.train_step, dev, args.seconds)
    print(f"one training step: pixel {1000 * p_step:.1f} ms (batch {pcfg.batch_size}, "
          f"{1000 * p_step / pcfg.batch_size:.2f} ms per image), latent {1000 * l_step:.1f} ms (batch "
          f"{lcfg.batch_size}, {1000 * l_step / lcfg.batch_size:.2f} ms per image): "
          f"{(p_step / pcfg.batch_size) / (l_step / lcfg.batch_size):.1f}x cheaper per image in latent space")

    def timed(fn, repeat=3):
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        return out, best

    x_T = torch.randn(64, *pixel.shape, generator=g)
    z_T = torch.randn(64, *latent.latent_shape, generator=g)
    _, p_sample = timed(lambda: pixel.to_unit(pixel.ddim(x_T, args.sampler_steps)))
    _, l_sample = timed(lambda: latent.decode(latent.ddim(z_T, args.sampler_steps)))
    _, l_decode = timed(lambda: latent.decode(z_T))
    print(f"64 samples, DDIM {args.sampler_steps} steps: pixel {p_sample:.2f} s, latent {l_sample:.2f} s (of which "
          f"decoding {1000 * l_decode:.0f} ms): {p_sample / l_sample:.1f}x faster in latent space")

    if not args.reuse:
        print(f"\ntotal engine CPU: pixel {pixel_cpu:.0f} s, latent {latent_cpu:.0f} s; {load()}")


if __name__ == "__main__":
    main()
