"""How good the PixelCNN lesson's default preset gets in a fixed time: held-out bits per
dimension against two references, the digit classifier's scores of its drawings, and what
the windowed drawing saves.

1. A headless engine run of the default `pixelcnn` preset on the embedded digits (the
   studio's way: its own process, the runner's views and scores included), stopped after
   --seconds of wall time from launch. The first time the run's own scores (its fixed-seed
   samples) reached recognisability >= --threshold with full coverage is printed too.
2. The checkpoint it left, loaded into a fresh recipe:
   - bits per dimension on --heldout digits it never trained on (a seed of their own),
     against a model that ignores the other pixels (each position's own histogram of
     levels, counted on the training digits) and the uniform log2(levels);
   - --n images drawn from a fixed seed, scored (real quantised digits are the reference);
   - one image drawn with PixelCNN.logits_at (the window each pixel can see) against the
     whole network run for every pixel (timed on its first rows, the rest extrapolated).

Bar (fixed before the preset was tuned): recognisability >= 0.8 and coverage 1.0 within
3 minutes of training on a 2-core CPU.

    python benchmarks/pixelcnn_quality.py [--seconds 180] [--n 100] [--device cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import math
import time

from common import fresh_home, wait_for


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0, help="training budget, wall seconds from launch")
    ap.add_argument("--n", type=int, default=100, help="images drawn and scored (coverage needs n/50 of each class)")
    ap.add_argument("--heldout", type=int, default=2000, help="held-out digits for bits per dimension")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.configs.pixelcnn import PixelCNNConfig
    from engine.data.digits import load_digits
    from engine.device import one_thread, resolve_device
    from engine.launch import start_engine
    from engine.metrics.digit_classifier import get_digit_classifier, score_digits
    from engine.recipes.base import RunContext
    from engine.recipes.pixelcnn import PixelCNNRecipe, quantise
    from engine.rundir import read_history
    from engine.runs import create_run
    from engine.schema import validate

    rd = create_run("pixelcnn", args.sets, 10_000_000, args.device, None)
    params = rd.read_config()["params"]
    cfg = validate(PixelCNNConfig, params)
    if cfg.dataset != "digits":
        raise SystemExit("this benchmark scores digits: keep dataset=digits")
    L = cfg.levels

    t0 = time.monotonic()
    clf = get_digit_classifier("cpu", log=lambda m: print("  ", m))
    x, _ = load_digits(args.heldout, 777)  # a seed no run trains on
    held = quantise(x, L).unsqueeze(1)  # (N, 1, 28, 28) level indices
    ref = score_digits(clf, held.float() / (L - 1))
    print(f"digit classifier ready in {time.monotonic() - t0:.1f}s; real held-out digits at {L} levels score "
          f"recognisability {ref['recognisability']:.3f}, coverage {ref['coverage']:.2f}")

    print(f"run {rd.path}: " + ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("data_path", "steps")))
    launch = time.monotonic()
    proc = start_engine(rd.path)
    first_hit = None  # (seconds from launch, step, recognisability), seen while polling

    def hit(h):
        rec, cov = h.metrics.get("quality/recognisability", []), h.metrics.get("quality/coverage", [])
        return next(((s, r) for (s, r), (_, c) in zip(rec, cov) if r >= args.threshold and c >= 1.0), None)

    try:
        def done():
            nonlocal first_hit
            h = read_history(rd)
            if h.state in ("failed", "finished", "stopped"):
                raise RuntimeError(f"engine run ended early ({h.state}): {h.errors}")
            if first_hit is None and (found := hit(h)):
                first_hit = (time.monotonic() - launch, *found)
            return time.monotonic() - launch >= args.seconds
        wait_for(done, timeout=args.seconds + 300, interval=0.5)
    finally:
        rd.send("stop")
        proc.wait(timeout=300)
    wall = time.monotonic() - launch
    h = read_history(rd)
    print(f"trained {h.step:,} steps in {wall:.0f}s wall from launch "
          f"({h.status.get('elapsed', 0):.0f}s training time, {h.status.get('steps_per_s', 0):.1f} steps/s at the end)")
    for name in ("val/bpd", "quality/recognisability", "quality/coverage"):
        series = h.metrics.get(name, [])
        print(f"in-run {name} (step: value):", ", ".join(f"{s}: {v:.3f}" for s, v in series))
    if first_hit:
        print(f"in-run scores first reached recognisability >= {args.threshold} with full coverage "
              f"{first_hit[0]:.0f}s from launch, at step {first_hit[1]:,} (recognisability {first_hit[2]:.3f})")
    else:
        print(f"in-run scores did not reach recognisability >= {args.threshold} with full coverage")

    dev = resolve_device(args.device)
    recipe = PixelCNNRecipe(RunContext(device=dev, need_data=False), cfg)
    recipe.load_state_dict(load_checkpoint(rd.checkpoint_path, map_location=dev)["state"])
    model = recipe.model.eval()

    # Bits per dimension, and the references.
    with torch.inference_mode():
        nll = sum(model.nll(c.to(dev)).item() * len(c) for c in held.split(100)) / len(held)
    train, _ = load_digits(cfg.train_size + 256, cfg.seed)
    counts = torch.stack([(quantise(train[256:], L) == k).sum(0) for k in range(L)]).float() + 1  # (L, 28, 28)
    p = counts / counts.sum(0)  # each position's histogram of levels (add-one smoothed)
    per_position = -p.log2().gather(0, held[:, 0].long()).mean().item()  # (N, 28, 28) -> mean
    print(f"held-out bits/dim over {len(held)} digits: PixelCNN {nll / math.log(2):.4f}; a model that ignores the "
          f"other pixels (each position's histogram) {per_position:.4f}; uniform over {L} levels {math.log2(L):.4f}")

    # Drawings, scored.
    g = torch.Generator().manual_seed(1234)
    t = time.perf_counter()
    images = recipe.sample_images(args.n, g)
    seconds = time.perf_counter() - t
    s = score_digits(clf, images.cpu())
    print(f"{args.n} drawings (temperature {cfg.temperature:g}): recognisability {s['recognisability']:.3f}, "
          f"coverage {s['coverage']:.1f}, confident {s['confident']:.2f}; drawn in {seconds:.1f}s")

    # What the window saves: one image, every pixel, both ways (the full pass on its first rows).
    rows = 3
    one = torch.zeros(1, 1, 28, 28, dtype=torch.long, device=dev)
    with torch.inference_mode(), one_thread(dev):
        t = time.perf_counter()
        for i in range(28 * 28):
            model.logits_at(one, *divmod(i, 28))
        windowed = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(28 * rows):
            model(one)[..., i // 28, i % 28]
        full = (time.perf_counter() - t) * 28 / rows
    print(f"one 28x28 image, one thread: {windowed:.2f}s with each pixel's window, ~{full:.1f}s running the whole "
          f"network per pixel ({full / windowed:.0f}x)")
    print(f"wall time from launch: {time.monotonic() - launch:.0f}s")


if __name__ == "__main__":
    main()
