"""How good the PixelCNN lesson's default preset gets, and at what cost: the digit
classifier's scores of its drawings against real digits, held-out bits per dimension
against two references, the receptive field's blind spot, and what the windowed drawing
saves.

1. A headless engine run of the default `pixelcnn` preset on the embedded digits (the
   studio's way: its own process, the runner's views and scores included), left to finish
   its steps (or stopped after --seconds of wall time). Printed: wall seconds from launch,
   the engine's CPU seconds (with --threads 1 that is one core's time: an idle 2-core CPU
   trains at least that fast), the load average, and the run's own scores (its 64
   fixed-seed drawings) at every refresh.
2. The checkpoint it left, loaded into a fresh recipe:
   - --n images drawn from a fixed seed at the preset's temperature, scored against the bar
     (real quantised digits are the reference; 300 drawings judge coverage on at least 6 of
     each digit, steadier than the run's 64), then at each of --temperatures;
   - bits per dimension on --heldout digits it never trained on (a seed of their own),
     against a model that ignores the other pixels (each position's own histogram of
     levels, counted on the training digits) and the uniform log2(levels);
   - the blind spot of the centre pixel after the first layer and after every block;
   - one image drawn with PixelCNN.logits_at (the window each pixel can see) against the
     whole network run for every pixel (timed on its first rows, the rest extrapolated).

Bar (the issue's, fixed before the preset was tuned): recognisability >= 0.8 with all ten
digits (coverage 1.0) within 3 minutes of training on a 2-core CPU.

    python benchmarks/pixelcnn_quality.py [--threads 1] [--seconds S] [--n 300] [--temperatures 0.7,0.5]
                                          [--device cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import math
import os
import time

from common import children_cpu_seconds, fresh_home, timed_run


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def first_ink(recipe, n: int, seed: int) -> str:
    """How a digit starts: over n drawings at the recipe's temperature, the mean probability
    of black at the pixels before the first ink, the probability the first inked pixel was
    drawn at (median), and the mean probability of the level drawn at the inked pixels after."""
    import torch

    before, first, after = [], [], []
    started = torch.zeros(n, dtype=torch.bool)
    for i, x, probs in recipe.draw(n, torch.Generator().manual_seed(seed)):
        row, col = divmod(i, recipe.size)
        level = x[:, 0, row, col].cpu()  # (n,) the level drawn, grey images
        p = probs[:, 0]  # (n, levels)
        drawn = p.gather(1, level[:, None])[:, 0]
        ink = level > 0
        before += p[~started, 0].tolist()
        first += drawn[ink & ~started].tolist()
        after += drawn[ink & started].tolist()
        started |= ink
    mean = lambda v: sum(v) / max(1, len(v))  # noqa: E731
    median = sorted(first)[len(first) // 2] if first else float("nan")
    return (f"black's probability before the first ink {mean(before):.3f} (mean); the first inked pixel drawn at "
            f"{median:.3f} (median of {len(first)}); inked pixels after it drawn at {mean(after):.2f} (mean)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=None, help="stop after this many wall seconds (default: "
                    "the preset's own steps)")
    ap.add_argument("--threads", type=int, default=0, help="engine CPU threads (0: torch's default, every core)")
    ap.add_argument("--n", type=int, default=300, help="images drawn and scored per temperature (coverage needs "
                    "n/50 of each class)")
    ap.add_argument("--temperatures", default="0.7,0.5", help="comma-separated sampling temperatures to score besides "
                    "the preset's")
    ap.add_argument("--heldout", type=int, default=2000, help="held-out digits for bits per dimension")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    print(load(), flush=True)
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.configs.pixelcnn import PixelCNNConfig
    from engine.data.digits import load_digits
    from engine.device import one_thread, resolve_device
    from engine.metrics.digit_classifier import get_digit_classifier, score_digits
    from engine.recipes.base import RunContext
    from engine.recipes.pixelcnn import PixelCNNRecipe, quantise
    from engine.rundir import read_history
    from engine.schema import validate

    t0 = time.monotonic()
    clf = get_digit_classifier("cpu", log=lambda m: print("  ", m))
    x, _ = load_digits(args.heldout, 777)  # a seed no run trains on
    ready = time.monotonic() - t0

    def scores(h):  # [(step, recognisability, coverage)] of the run's own drawings
        return [(s, r, c) for (s, r), (_, c) in zip(h.metrics.get("quality/recognisability", []),
                                                     h.metrics.get("quality/coverage", []))]

    def hit(h):
        return next(((s, r) for s, r, c in scores(h) if r >= args.threshold and c >= 1.0), None)

    env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else None
    cpu0 = children_cpu_seconds()
    rd, wall, first_hit = timed_run("pixelcnn", args.sets, args.seconds, args.device, hit, env)
    cpu = children_cpu_seconds() - cpu0
    cfg = validate(PixelCNNConfig, rd.read_config()["params"])
    if cfg.dataset != "digits":
        raise SystemExit("this benchmark scores digits: keep dataset=digits")
    L = cfg.levels
    held = quantise(x, L).unsqueeze(1)  # (N, 1, 28, 28) level indices
    ref = score_digits(clf, held.float() / (L - 1))
    print(f"digit classifier ready in {ready:.1f}s; real held-out digits at {L} levels score "
          f"recognisability {ref['recognisability']:.3f}, coverage {ref['coverage']:.2f}")

    h = read_history(rd)
    threads = args.threads or "torch's default"
    print(f"trained {h.step:,} steps in {wall:.0f}s wall from launch, the engine using {cpu:.0f} CPU seconds "
          f"(threads: {threads}; {h.status.get('elapsed', 0):.0f}s of training time); {load()}")
    for name in ("val/bpd", "quality/recognisability", "quality/coverage"):
        series = h.metrics.get(name, [])
        print(f"in-run {name} (step: value):", ", ".join(f"{s}: {v:.3f}" for s, v in series))
    if first_hit:
        print(f"in-run scores first reached recognisability >= {args.threshold} with full coverage "
              f"{first_hit[0]:.0f}s from launch, at step {first_hit[1]:,} (recognisability {first_hit[2]:.3f})")
    else:
        print(f"in-run scores did not reach recognisability >= {args.threshold} with full coverage")
    if scores(h):
        s, r, c = scores(h)[-1]
        print(f"in-run scores at the run's end (step {s:,}, 64 drawings): recognisability {r:.3f}, coverage {c:.1f}")

    dev = resolve_device(args.device)
    recipe = PixelCNNRecipe(RunContext(device=dev, need_data=False), cfg)
    recipe.load_state_dict(load_checkpoint(rd.checkpoint_path, map_location=dev)["state"])
    model = recipe.model.eval()
    torch.set_num_threads(args.threads or torch.get_num_threads())

    # Drawings, scored at each temperature; the first is the preset's, and judges the bar.
    for k, t in enumerate(float(v) for v in f"{cfg.temperature},{args.temperatures}".split(",") if v.strip()):
        if k and t == cfg.temperature:
            continue
        recipe.temperature = t
        start = time.perf_counter()
        images = recipe.sample_images(args.n, torch.Generator().manual_seed(1234))
        seconds = time.perf_counter() - start
        s = score_digits(clf, images.cpu())
        ink = (images > 0).flatten(1).any(1).float().mean().item()
        print(f"{args.n} drawings at temperature {t:g}: recognisability {s['recognisability']:.3f}, "
              f"coverage {s['coverage']:.1f}, confident {s['confident']:.2f}, with any ink {ink:.2f}; "
              f"drawn in {seconds:.1f}s")
        print("   how the digits start:", first_ink(recipe, min(args.n, 100), 1234))
        if k == 0:
            met = s["recognisability"] >= args.threshold and s["coverage"] >= 1.0
            print(f"BAR after {h.step:,} steps ({wall:.0f}s wall, {cpu:.0f} CPU s): recognisability "
                  f"{s['recognisability']:.3f} (bar {args.threshold}), coverage {s['coverage']:.1f} (bar 1.0) over "
                  f"{args.n} drawings at the preset's temperature: {'MET' if met else 'MISSED'}")

    # Bits per dimension, and the references.
    with torch.inference_mode():
        nll = sum(model.nll(c.to(dev)).item() * len(c) for c in held.split(100)) / len(held)
    train, _ = load_digits(cfg.train_size + 256, cfg.seed)
    counts = torch.stack([(quantise(train[256:], L) == k).sum(0) for k in range(L)]).float() + 1  # (L, 28, 28)
    p = counts / counts.sum(0)  # each position's histogram of levels (add-one smoothed)
    per_position = -p.log2().gather(0, held[:, 0].long()).mean().item()  # (N, 28, 28) -> mean
    print(f"held-out bits/dim over {len(held)} digits: PixelCNN {nll / math.log(2):.4f}; a model that ignores the "
          f"other pixels (each position's histogram) {per_position:.4f}; uniform over {L} levels {math.log2(L):.4f}")

    # The blind spot: earlier pixels within reach that the centre pixel cannot see.
    recipe.x_val = held[:4].to(dev)
    fields, _ = recipe.field()
    blind = [int((recipe.reach_window(i) & (f == 0)).sum()) for i, f in enumerate(fields)]
    seen = int((fields[-1] > 0).sum())
    print(f"centre pixel: reach {model.reach()} rows up and columns to each side; blind spot after the first layer "
          f"and after each block: {blind}; {seen} earlier pixels seen at the output")

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
    r = model.reach()
    print(f"one 28x28 image, one thread: {windowed:.2f}s with each pixel's window (at most {r + 1} rows of "
          f"{2 * r + 1} pixels), ~{full:.1f}s running the whole network per pixel ({full / windowed:.1f}x)")
    print(load())


if __name__ == "__main__":
    main()
