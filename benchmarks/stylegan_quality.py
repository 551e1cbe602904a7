"""How good the StyleGAN lesson's default preset gets, beside references measured in the same
run: the Fréchet distance between the face classifier's features of generated faces and of
training faces, against the same distance for real held-out faces and for an untrained
generator; and which source each attribute follows in style-mixed faces, against an
unrelated face's agreement (chance).

1. A headless engine run of the default `stylegan` preset on the embedded faces (the
   studio's way: its own process, the runner's views and scores included), to the end of
   its steps (or --seconds of wall time from launch). Printed: steps, wall time, the engine
   process's CPU seconds, the load average, the in-run scores, and when the lesson's bar
   (feature_distance <= --threshold) was first reached (step, training seconds, and the
   engine's CPU seconds so far, read from /proc while it runs).
2. The checkpoint it left, loaded into a fresh recipe (averaged weights), on --n faces from
   a seed no view uses:
   - feature_distance (engine.recipes.stylegan.frechet_distance of the classifier's pooled
     features, against --n faces drawn with the training set's seed) for: real held-out faces (the reference: the
     distance of the real thing, from sampling alone), the trained generator, and an
     untrained one; also confident (share of faces the classifier reads with >= 90% on
     all four attributes), which shows why it is not the score: an untrained generator's
     colour blobs get confident readings too;
   - style mixing at each crossover (4x4, 8x8, 16x16): per attribute, over the pairs whose
     sources the classifier reads differently, the share of mixes that side with the
     coarse source and with the fine one; and, as chance, the share of unrelated generated
     faces that happen to side with each.

Bar: feature_distance at most 1.2 within about 3 minutes of one CPU thread, and in 8x8
mixes the hat (a large shape at the top of the head) siding with the coarse source well
above chance. (A first bar, the classifier's confidence and attribute mix, was dropped
when this benchmark showed an untrained generator scoring nearly as well on it.)

    python benchmarks/stylegan_quality.py [--seconds 900] [--n 256] [--device cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import os
import time

from common import children_cpu_seconds, fresh_home, process_cpu_seconds, wait_for



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=900.0, help="wall-time cap from launch (a busy machine is slow)")
    ap.add_argument("--n", type=int, default=256, help="faces per line (the run scores 256)")
    ap.add_argument("--threshold", type=float, default=1.2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.configs.stylegan import COARSE, StyleGANConfig
    from engine.data.faces import FACE_ATTRIBUTES, make_faces
    from engine.device import resolve_device
    from engine.launch import start_engine
    from engine.metrics.face_classifier import attribute_probs, get_face_classifier
    from engine.models.stylegan import N_LAYERS, make_noise
    from engine.recipes.base import RunContext
    from engine.recipes.stylegan import (StyleGANRecipe, classifier_features, coarse_layers, frechet_distance,
                                         mixing_agreement)
    from engine.rundir import read_history
    from engine.runs import create_run
    from engine.schema import validate

    torch.set_num_threads(1)  # as the engine trains (cpu_threads=1)
    t0 = time.monotonic()
    clf = get_face_classifier("cpu", log=lambda m: print("  ", m))
    print(f"face classifier ready in {time.monotonic() - t0:.1f}s")

    rd = create_run("stylegan", args.sets, None, args.device, None)
    params = rd.read_config()["params"]
    cfg = validate(StyleGANConfig, params)
    print(f"run {rd.path}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    print(f"load average at launch: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    launch, cpu0 = time.monotonic(), children_cpu_seconds()
    proc = start_engine(rd.path)
    first_hit = None  # (step, training seconds, value, engine CPU seconds)

    def bar(h):
        series = h.metrics.get("quality/feature_distance", [])
        return next(((s, v) for s, v in series if v <= args.threshold), None)

    try:
        def done():
            nonlocal first_hit
            h = read_history(rd)
            if h.state == "failed":
                raise RuntimeError(f"engine run failed: {h.errors}")
            if first_hit is None and (found := bar(h)):
                first_hit = (found[0], h.status.get("elapsed", 0.0), found[1], process_cpu_seconds(proc.pid))
            return h.state in ("finished", "stopped") or time.monotonic() - launch >= args.seconds
        wait_for(done, timeout=args.seconds + 300, interval=0.5)
    finally:
        rd.send("stop")
        proc.wait(timeout=300)
    wall, cpu = time.monotonic() - launch, children_cpu_seconds() - cpu0
    h = read_history(rd)
    print(f"{h.state}: {h.step:,} of {cfg.steps:,} steps in {wall:.0f}s wall from launch, "
          f"{h.status.get('elapsed', 0):.0f}s training time; the engine used {cpu:.0f} CPU seconds; "
          f"load average now {os.getloadavg()[0]:.1f}")
    for name in ("train/wasserstein", "quality/feature_distance", "quality/hat_coarse"):
        series = h.metrics.get(name, [])
        every = series[:: max(1, len(series) // 12)]  # about a dozen points
        print(f"in-run {name} (step: value):", ", ".join(f"{s}: {v:.3f}" for s, v in every))
    if first_hit:
        print(f"in-run scores first reached the bar (feature_distance <= {args.threshold}) at step {first_hit[0]:,} "
              f"({first_hit[1]:.0f}s of training, about {first_hit[3]:.0f} engine CPU seconds; {first_hit[2]:.3f})")
    else:
        print(f"in-run scores did not reach the bar (feature_distance <= {args.threshold})")

    dev = resolve_device(args.device)
    recipe = StyleGANRecipe(RunContext(device=dev, need_data=False), cfg)
    fresh = StyleGANRecipe(RunContext(device=dev, need_data=False), cfg)  # untrained: a floor
    recipe.load_state_dict(load_checkpoint(rd.checkpoint_path, map_location=dev)["state"])
    real, _ = make_faces(args.n, 777, 32)  # held-out faces: a seed no run trains on
    train_like, _ = make_faces(args.n, cfg.seed, 32)  # faces drawn as the training set is (its seed)
    ref = classifier_features(clf, train_like.float().div(255))

    def line(what, faces):
        faces = faces.float().div(255) if faces.dtype == torch.uint8 else faces
        probs = attribute_probs(clf, faces)
        sure = torch.stack([p.max(1).values >= 0.9 for p in probs.values()]).all(0).float().mean().item()
        fd = frechet_distance(ref, classifier_features(clf, faces))
        print(f"  {what:<40} feature_distance {fd:7.3f}   (confident {sure:.3f})")

    def draw(r, n, seed):
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, cfg.z_dim, generator=g).to(dev)
        ws = r.styles(z)[:, None, :].expand(-1, N_LAYERS, -1)
        return r.render(ws, make_noise(n, dev, g)), z, g

    print(f"against {args.n} training faces, {args.n} faces each (references first):")
    line("real held-out faces", real)
    faces, _, _ = draw(recipe, args.n, 4242)
    line("trained generator (averaged weights)", faces)
    line("untrained generator", draw(fresh, args.n, 4242)[0])

    g = torch.Generator().manual_seed(99)
    za, zb, zc = (torch.randn(args.n, cfg.z_dim, generator=g).to(dev) for _ in range(3))
    noise = make_noise(args.n, dev, g)
    pred = lambda x: {k: p.argmax(1) for k, p in attribute_probs(clf, x).items()}  # noqa: E731
    pa, pb, pc = (pred(recipe.mixed(z, z, N_LAYERS, noise)) for z in (za, zb, zc))
    chance = mixing_agreement(pa, pb, pc)
    print(f"style mixing, {args.n} pairs: share of mixes siding with the coarse / fine source, over pairs whose "
          f"sources differ (pairs); chance = an unrelated face's share")
    for coarse in COARSE:
        agree = mixing_agreement(pa, pb, pred(recipe.mixed(za, zb, coarse_layers(coarse), noise)))
        cells = [f"{name} {agree[name][0]:.2f}/{agree[name][1]:.2f} (n={agree[name][2]}, chance "
                 f"{chance[name][0]:.2f}/{chance[name][1]:.2f})" for name in FACE_ATTRIBUTES]
        print(f"  coarse up to {coarse:<6}", " · ".join(cells))


if __name__ == "__main__":
    main()
