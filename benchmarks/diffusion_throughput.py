"""Images per second of the diffusion training step through the real engine, against a
plain PyTorch loop of the same U-Net, batch and optimiser: what the runner, its metrics, its
EMA copy and its views cost. Also the time of one DDIM sample of the 64-image grid.

engine:    a headless run of the default preset (`diffusion` on the embedded digits) in a
           temporary GENSTUDIO_HOME, started as the studio starts it (its own process). Its
           rate is read from the run's status events after a warm-up: steps done over
           training seconds, times the batch. Training seconds include the views (a DDIM
           sample of 64 images, the timeline, the scores) that the runner makes every few
           seconds, as a learner's run does.
reference: the loop below, in this process: the same UNet, AdamW, random t, closed-form
           noising and MSE on the noise, nothing else (no EMA, no gradient clipping, no
           views). Same thread count on the CPU as the recipe asks for (cpu_threads); on
           CUDA both use bf16 autocast, data on the device and channels_last, fused AdamW.
sampling:  the recipe's DDIM sampler (EMA weights, sampler_steps of the preset) on the
           64 fixed-noise images the grid shows, timed (synchronised on CUDA).

CPU always; CUDA too when torch.cuda.is_available(). The runs never overlap.

    python benchmarks/diffusion_throughput.py [--seconds 10] [--set batch_size=128]
"""

from __future__ import annotations

import argparse

from common import engine_rate, fresh_home, steps_per_second

WARMUP = 3.0  # seconds of training before the engine's rate is read (first views, allocator)


def reference_rate(device_name: str, params: dict, seconds: float) -> float:
    """images/s of a plain loop: the noise-prediction step written out, nothing else."""
    import torch
    import torch.nn.functional as F

    from engine.data.digits import load_digits
    from engine.device import autocast, configure
    from engine.models.unet import UNet, UNetArgs

    dev = torch.device(device_name)
    configure(dev)
    torch.manual_seed(0)
    model = UNet(UNetArgs(channels=1, base=params["base"])).to(dev)
    x, _ = load_digits(params["train_size"], params["seed"])
    data = x.unsqueeze(1).to(dev).float() / 127.5 - 1.0  # (N, 1, 28, 28) in [-1, 1]
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        data = data.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=params["lr"], fused=dev.type == "cuda")
    T, B = params["timesteps"], params["batch_size"]
    # The linear schedule's alpha_bar, written out (the cosine one costs the same to use).
    betas = torch.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, device=dev).clamp(max=0.999)
    alpha_bar = torch.cat([torch.ones(1, device=dev), torch.cumprod(1 - betas, 0)])

    def step():
        x0 = data[torch.randint(0, len(data), (B,), device=dev)]
        t = torch.randint(1, T + 1, (B,), device=dev)
        noise = torch.randn_like(x0)
        ab = alpha_bar[t].view(-1, 1, 1, 1)
        with autocast(dev):
            pred = model(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t)
        # The recipe's target: v = sqrt(ab) eps - sqrt(1 - ab) x0, or eps itself.
        target = ab.sqrt() * noise - (1 - ab).sqrt() * x0 if params["prediction"] == "v" else noise
        loss = F.mse_loss(pred.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return steps_per_second(step, dev, seconds, WARMUP, chunk=5) * B


def ddim_grid_seconds(device_name: str, cfg) -> float:
    """Seconds for one DDIM sample of the 64-image grid (fresh weights: the cost is the same)."""
    import torch

    from engine.device import configure
    from engine.recipes.base import RunContext
    from engine.recipes.diffusion import DiffusionRecipe

    dev = torch.device(device_name)
    configure(dev)
    recipe = DiffusionRecipe(RunContext(device=dev, need_data=False), cfg)
    recipe.ddim(recipe.fixed_xT[:8], 2)  # warm-up (cuDNN autotuning, allocator)
    best = float("inf")
    for _ in range(2):
        _, seconds = recipe._timed(lambda: recipe.ddim(recipe.fixed_xT, cfg.sampler_steps))
        best = min(best, seconds)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run (after warm-up)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    import torch

    from engine.schema import parse_assignments, validate
    from engine.configs.diffusion import DiffusionConfig
    from engine.metrics.digit_classifier import get_digit_classifier
    from engine.recipes.base import RunContext
    from engine.recipes.diffusion import DiffusionRecipe

    get_digit_classifier("cpu")  # cached once per machine; not part of either figure
    cfg = validate(DiffusionConfig, parse_assignments(args.sets))
    params = vars(cfg)
    # The engine's process uses the recipe's CPU thread count; the reference does the same.
    cpu_threads = DiffusionRecipe(RunContext(torch.device("cpu"), need_data=False), cfg).cpu_threads
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        rate_engine, batch = engine_rate("diffusion", device, args.sets, args.seconds)
        threads = torch.get_num_threads()
        if device == "cpu" and cpu_threads:
            torch.set_num_threads(cpu_threads)
        rate_ref = reference_rate(device, params, args.seconds)
        grid = ddim_grid_seconds(device, cfg)
        torch.set_num_threads(threads)
        label = (f"cuda ({torch.cuda.get_device_name()}, bf16)" if device == "cuda"
                 else f"cpu ({cpu_threads or threads} thread(s))")
        print(f"{label}, batch {batch}: engine {rate_engine:,.0f} images/s, plain loop {rate_ref:,.0f} images/s, "
              f"engine / plain = {rate_engine / rate_ref:.2f}; DDIM {cfg.sampler_steps} steps for the 64-image "
              f"grid: {grid:.2f}s", flush=True)


if __name__ == "__main__":
    main()
