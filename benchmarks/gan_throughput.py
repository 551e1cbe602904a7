"""Images per second of the DCGAN training step through the real engine, against a plain
PyTorch loop of the same model, batch and optimiser: what the runner, its metrics and its
views cost.

engine:    a headless run of the default preset (`dcgan` on the embedded digits) in a
           temporary GENSTUDIO_HOME, started as the studio starts it (its own process). Its
           rate is read from the run's status events after a warm-up: steps done over
           training seconds, times the batch. Training seconds include the views and the
           quality scores the runner computes every few seconds, as a learner's run does.
reference: the loop below, in this process: the same Generator and Discriminator, Adam
           with beta1 = 0.5 for both, the same two steps, nothing else. Same thread count
           on the CPU as the recipe asks for (cpu_threads); on CUDA both use bf16 autocast,
           data on the device and channels_last.

CPU always; CUDA too when torch.cuda.is_available(). The two never run at the same time.

    python benchmarks/gan_throughput.py [--seconds 10] [--set batch_size=128]
"""

from __future__ import annotations

import argparse

from common import engine_rate, fresh_home, steps_per_second

WARMUP = 3.0  # seconds of training before the engine's rate is read (first views, allocator)


def reference_rate(device_name: str, params: dict, seconds: float) -> float:
    """images/s of a plain loop: the DCGAN step written out, no runner, metrics or views."""
    import torch
    import torch.nn.functional as F

    from engine.data.digits import load_digits
    from engine.device import autocast, configure
    from engine.models.dcgan import DCGANArgs, Discriminator, Generator

    dev = torch.device(device_name)
    configure(dev)
    torch.manual_seed(0)
    a = DCGANArgs(noise_dim=params["noise_dim"], width=params["width"], channels=1, image_size=28)
    G, D = Generator(a).to(dev), Discriminator(a).to(dev)
    x, _ = load_digits(params["train_size"], params["seed"])
    data = x.unsqueeze(1).to(dev).float() / 127.5 - 1.0  # (N, 1, 28, 28) in [-1, 1]
    if dev.type == "cuda":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        data = data.contiguous(memory_format=torch.channels_last)
    fused = dev.type == "cuda"
    opt_g = torch.optim.Adam(G.parameters(), lr=params["lr_g"], betas=(0.5, 0.999), fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=params["lr_d"], betas=(0.5, 0.999), fused=fused)
    B, nz = params["batch_size"], params["noise_dim"]

    def step():
        real = data[torch.randint(0, len(data), (B,), device=dev)]
        z = torch.randn(B, nz, device=dev)
        with autocast(dev):
            fake = G(z)
            lr_, lf = D(real).float(), D(fake.detach()).float()
        loss_d = (F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_))
                  + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with autocast(dev):
            lg = D(fake).float()
        loss_g = F.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    return steps_per_second(step, dev, seconds, WARMUP, chunk=10) * B


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run (after warm-up)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    import torch

    from engine.schema import parse_assignments, validate
    from engine.configs.dcgan import DCGANConfig
    from engine.metrics.digit_classifier import get_digit_classifier
    from engine.recipes.base import RunContext
    from engine.recipes.dcgan import DCGANRecipe

    get_digit_classifier("cpu")  # cached once per machine; not part of either figure
    cfg = validate(DCGANConfig, parse_assignments(args.sets))
    params = vars(cfg)
    # The engine's process uses the recipe's CPU thread count; the reference does the same.
    cpu_threads = DCGANRecipe(RunContext(torch.device("cpu"), need_data=False), cfg).cpu_threads
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        rate_engine, batch = engine_rate("dcgan", device, args.sets, args.seconds)
        threads = torch.get_num_threads()
        if device == "cpu" and cpu_threads:
            torch.set_num_threads(cpu_threads)
        rate_ref = reference_rate(device, params, args.seconds)
        torch.set_num_threads(threads)
        label = (f"cuda ({torch.cuda.get_device_name()}, bf16)" if device == "cuda"
                 else f"cpu ({cpu_threads or threads} thread(s))")
        print(f"{label}, batch {batch}: engine {rate_engine:,.0f} images/s, plain loop {rate_ref:,.0f} images/s, "
              f"engine / plain = {rate_engine / rate_ref:.2f}", flush=True)


if __name__ == "__main__":
    main()
