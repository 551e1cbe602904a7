"""How good the VQ-VAE lesson's default preset gets: the codebook's use, the reconstruction
error, and the digit classifier's scores of grids drawn from the prior and decoded, each
beside references measured in the same run.

1. A headless engine run of the default `vqvae` preset on the embedded digits (the studio's
   way: its own process, the runner's views and scores included), to the end of its steps
   (or --seconds of wall time from launch, whichever comes first). Printed: the steps, the
   wall time, the engine process's CPU time, the load average, and when the run's own
   scores (its fixed-seed prior samples) first reached recognisability >= --threshold
   with full coverage (step, and training seconds from its status events).
2. The checkpoint it left, loaded into a fresh recipe, measured on --heldout digits it
   never trained on (a seed of their own):
   - codes in use (share of the K codes that any held-out cell takes) and perplexity;
   - reconstruction error: squared error summed over a digit's pixels, and per pixel;
   - --n grids drawn from the prior (fixed seed, the preset's temperature), decoded and
     scored, and the references, scored the same way: the held-out digits themselves,
     their reconstructions (the best the decoder can give), grids of codes drawn
     uniformly at random, and grids whose codes are drawn independently, each position
     from how often each code appears there in the training grids (a prior that ignores
     the codes around it).

Bar (fixed before the preset was tuned): more than half of the codes in use, and prior
samples with recognisability >= 0.8 covering all ten digits, within about 3 minutes of
training on a 2-core CPU.

    python benchmarks/vqvae_quality.py [--seconds 1200] [--n 200] [--device cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import os
import time

from common import children_cpu_seconds, fresh_home, wait_for



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1200.0, help="wall-time cap from launch (a busy machine is slow)")
    ap.add_argument("--n", type=int, default=200, help="prior samples scored (coverage needs n/50 of each digit)")
    ap.add_argument("--heldout", type=int, default=2000, help="held-out digits for codes, recon and references")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.configs.vqvae import VQVAEConfig
    from engine.data.digits import load_digits
    from engine.device import resolve_device
    from engine.launch import start_engine
    from engine.metrics.digit_classifier import get_digit_classifier, score_digits
    from engine.models.vqvae import GRID, sample_codes
    from engine.recipes.base import RunContext
    from engine.recipes.vqvae import VQVAERecipe, usage
    from engine.rundir import read_history
    from engine.runs import create_run
    from engine.schema import validate

    t0 = time.monotonic()
    clf = get_digit_classifier("cpu", log=lambda m: print("  ", m))
    x, _ = load_digits(args.heldout, 777)  # a seed no run trains on
    held = x.unsqueeze(1).float() / 255  # (N, 1, 28, 28)
    print(f"digit classifier ready in {time.monotonic() - t0:.1f}s")

    rd = create_run("vqvae", args.sets, None, args.device, None)
    params = rd.read_config()["params"]
    cfg = validate(VQVAEConfig, params)
    if cfg.dataset != "digits":
        raise SystemExit("this benchmark scores digits: keep dataset=digits")
    print(f"run {rd.path}: " + ", ".join(f"{k}={v}" for k, v in params.items() if k != "data_path"))
    print(f"load average at launch: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    launch, cpu0 = time.monotonic(), children_cpu_seconds()
    proc = start_engine(rd.path)
    first_hit = None  # (step, training seconds, recognisability)

    def hit(h):
        rec, cov = h.metrics.get("quality/recognisability", []), h.metrics.get("quality/coverage", [])
        return next(((s, r) for (s, r), (_, c) in zip(rec, cov) if r >= args.threshold and c >= 1.0), None)

    try:
        def done():
            nonlocal first_hit
            h = read_history(rd)
            if h.state == "failed":
                raise RuntimeError(f"engine run failed: {h.errors}")
            if first_hit is None and (found := hit(h)):
                first_hit = (found[0], h.status.get("elapsed", 0.0), found[1])
            return h.state in ("finished", "stopped") or time.monotonic() - launch >= args.seconds
        wait_for(done, timeout=args.seconds + 300, interval=0.5)
    finally:
        rd.send("stop")
        proc.wait(timeout=300)
    wall, cpu = time.monotonic() - launch, children_cpu_seconds() - cpu0
    h = read_history(rd)
    print(f"{h.state}: {h.step:,} of {cfg.steps:,} steps ({cfg.ae_steps:,} autoencoder, then the prior) in {wall:.0f}s "
          f"wall from launch, {h.status.get('elapsed', 0):.0f}s training time; the engine used {cpu:.0f} CPU seconds; "
          f"load average now {os.getloadavg()[0]:.1f}")
    for name in ("val/recon", "val/codes_in_use", "val/loss_prior", "quality/recognisability", "quality/coverage"):
        series = h.metrics.get(name, [])
        every = series[:: max(1, len(series) // 12)]  # about a dozen points
        print(f"in-run {name} (step: value):", ", ".join(f"{s}: {v:.3f}" for s, v in every))
    if first_hit:
        print(f"in-run scores first reached recognisability >= {args.threshold} with full coverage at step "
              f"{first_hit[0]:,} ({first_hit[1]:.0f}s of training; recognisability {first_hit[2]:.3f})")
    else:
        print(f"in-run scores did not reach recognisability >= {args.threshold} with full coverage")

    torch.set_num_threads(1)  # as the engine trains (cpu_threads=1): a second thread mostly waits on a busy CPU
    dev = resolve_device(args.device)
    if h.step <= cfg.ae_steps:
        raise SystemExit("the run stopped before its prior trained: give it more --seconds")
    recipe = VQVAERecipe(RunContext(device=dev, need_data=False), cfg)
    recipe.load_state_dict(load_checkpoint(rd.checkpoint_path, map_location=dev)["state"])
    model, K = recipe.model.eval(), cfg.codes
    with torch.inference_mode():
        codes = torch.cat([model.encode(c.to(dev)) for c in held.split(500)])
        recon = torch.cat([model.decode(c) for c in codes.split(500)]).cpu()
    u = usage(codes, K)
    err = (recon - held).square()
    print(f"held-out ({len(held)} digits): {round(u['codes_in_use'] * K)} of {K} codes in use "
          f"({u['codes_in_use']:.2f}), perplexity {u['perplexity']:.1f}; reconstruction error "
          f"{err.sum().item() / len(held):.2f} per digit ({err.mean().item():.4f} per pixel)")

    def line(what, images):
        s = score_digits(clf, images.cpu())
        print(f"  {what:<44} recognisability {s['recognisability']:.3f}, coverage {s['coverage']:.1f}, "
              f"confident {s['confident']:.2f}")

    print(f"digit classifier's scores ({args.n} images each, references first):")
    line("real held-out digits", held[: args.n])
    line("their reconstructions", recon[: args.n])
    g = torch.Generator().manual_seed(1234)
    uniform = torch.randint(0, K, (args.n, GRID, GRID), generator=g)
    line("random codes, uniform", recipe.decode(uniform.to(dev)))
    train = recipe.codes.long().flatten(1).cpu()  # (N, 49): the grids the prior trained on
    freq = torch.stack([torch.bincount(train[:, i], minlength=K) for i in range(GRID * GRID)]).double() + 1e-3
    independent = torch.multinomial(freq / freq.sum(1, keepdim=True), args.n, replacement=True, generator=g).T
    line("codes drawn per position, each on its own", recipe.decode(independent.reshape(-1, GRID, GRID).to(dev)))
    t = time.perf_counter()
    drawn = sample_codes(recipe.prior.eval(), args.n, K, torch.Generator().manual_seed(1), cfg.temperature)
    seconds = time.perf_counter() - t
    line(f"the prior's samples (temperature {cfg.temperature:g})", recipe.decode(drawn))
    print(f"  ({args.n} grids drawn from the prior in {seconds:.1f}s)")
    for temp in (0.8, 1.2):
        drawn = sample_codes(recipe.prior.eval(), args.n, K, torch.Generator().manual_seed(1), temp)
        line(f"the prior's samples (temperature {temp:g})", recipe.decode(drawn))


if __name__ == "__main__":
    main()
