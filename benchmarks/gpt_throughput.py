"""GPT training speed and time to a validation loss, through the real engine, against a plain
PyTorch loop of the same model in the same run.

engine:    a headless `gpt` run (the preset plus any --set), started as the studio starts it
           (its own process) in a temporary GENSTUDIO_HOME. Tokens/s come from its status
           events after a warm-up (steps over training seconds, times batch x context);
           training seconds include its evaluations and views. "Launch to target" is wall
           time from starting the process to the first validation loss event at or below
           --target (its resolution is the engine's evaluation interval, printed too).
reference: the loop below in this process: the same GPT, batch, AdamW (fused on CUDA),
           bf16 autocast on CUDA, the whole corpus on the device; nothing else.
MFU:       model FLOPs per token (6 x parameters + 12 x layers x context x width, forward
           and backward, attention included) x tokens/s over the device's peak dense bf16
           FLOPs (H100/H200: 989 TFLOPs; --peak-tflops for others).

    python benchmarks/gpt_throughput.py --device cuda --set model=10m --set batch_size=64 \\
        --target 1.47 [--corpus big.txt] [--seconds 10]
    python benchmarks/gpt_throughput.py --device cpu --seconds 5      # the CPU preset
"""

from __future__ import annotations

import argparse
import time

from common import fresh_home, steps_per_second, wait_for

WARMUP = 3.0  # seconds of training before rates are read (allocator, autotuning, compile)
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16


def flops_per_token(p: dict, n_params: int) -> float:
    return 6 * n_params + 12 * p["layers"] * p["context"] * p["width"]


def engine_run(device: str, sets: list[str], seconds: float, target: float | None, max_seconds: float):
    """(tokens/s, seconds from launch to target or None, eval interval, params, run dir)."""
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run("gpt", sets, 10_000_000, device, None)
    launched = time.time()
    proc = start_engine(rd.path)
    reached = None

    def done():
        nonlocal reached
        h = read_history(rd)
        if h.state in ("failed", "finished", "stopped"):
            raise RuntimeError(f"engine run ended early ({h.state}): {h.errors}")
        if target is not None and reached is None:
            hit = [e for e in rd.events() if e.type == "metric" and e.payload.get("val/loss", 1e9) <= target]
            reached = hit[0].time - launched if hit else None
        timed = h.status.get("elapsed", 0.0) >= WARMUP + seconds
        return timed and (target is None or reached is not None or time.time() - launched > max_seconds)

    try:
        wait_for(done, timeout=max_seconds + 120, interval=0.2)
    finally:
        rd.send("stop")
        proc.wait(timeout=120)
    status = [(e.step, e.payload["elapsed"]) for e in rd.events() if e.type == "status"]
    (s0, t0), (s1, t1) = next(p for p in status if p[1] >= WARMUP), status[-1]
    params = rd.read_config()["params"]
    evals = [e.time for e in rd.events() if e.type == "metric" and "val/loss" in e.payload]
    interval = (evals[-1] - evals[1]) / (len(evals) - 2) if len(evals) > 2 else float("nan")
    return (s1 - s0) * params["batch_size"] * params["context"] / (t1 - t0), reached, interval, params, rd


def reference_rate(device_name: str, p: dict, seconds: float) -> tuple[float, int]:
    """(tokens/s, parameters) of a plain loop: batch, forward, backward, AdamW step."""
    import torch

    from engine.data.text import CharTokenizer, python_docs, read_text_file
    from engine.device import autocast, configure
    from engine.models.gpt import GPT, GPTArgs

    dev = torch.device(device_name)
    configure(dev)
    torch.manual_seed(0)
    text = python_docs() if p["corpus"] == "python-docs" else read_text_file(p["corpus_path"])
    tok = CharTokenizer.fit(text)
    data = torch.tensor(tok.encode(text), dtype=torch.long, device=dev)
    model = GPT(GPTArgs(len(tok.vocab), p["context"], p["width"], p["layers"], p["heads"], p["dropout"])).to(dev)
    step_model = torch.compile(model) if p["compile"] else model
    opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], betas=(0.9, 0.95), weight_decay=p["weight_decay"],
                            fused=dev.type == "cuda")
    B, T = p["batch_size"], p["context"]
    offsets = torch.arange(T + 1, device=dev)

    def step():
        chunk = data[torch.randint(0, len(data) - T - 1, (B,), device=dev)[:, None] + offsets]
        with autocast(dev):
            _, loss, _ = step_model(chunk[:, :-1], chunk[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return steps_per_second(step, dev, seconds, WARMUP, chunk=5) * B * T, sum(q.numel() for q in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per rate (after warm-up)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    ap.add_argument("--corpus", help="a text file to train on instead of the Python docs")
    ap.add_argument("--target", type=float, help="validation loss (nats per token) to time from launch")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="give up waiting for the target after this")
    ap.add_argument("--peak-tflops", type=float, help="the device's peak dense bf16 TFLOPs, for MFU")
    args = ap.parse_args()
    fresh_home()
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    sets = args.sets + (["corpus=file", f"corpus_path={args.corpus}"] if args.corpus else [])
    rate_e, reached, interval, params, rd = engine_run(device, sets, args.seconds, args.target, args.max_seconds)
    if params["tokenizer"] != "char":
        raise SystemExit("the reference loop is character-level; benchmark with tokenizer=char")
    rate_r, n_params = reference_rate(device, params, args.seconds)
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    fpt = flops_per_token(params, n_params)
    mfu = (lambda r: f"{r * fpt / (peak * 1e12):.1%}") if peak else (lambda r: "n/a (give --peak-tflops)")
    print(f"{name}: model {n_params / 1e6:.2f}M parameters, batch {params['batch_size']} x {params['context']} tokens")
    print(f"engine     {rate_e:>12,.0f} tokens/s   MFU {mfu(rate_e)}")
    print(f"plain loop {rate_r:>12,.0f} tokens/s   MFU {mfu(rate_r)}")
    print(f"engine / plain = {rate_e / rate_r:.2f}")
    if args.target is not None:
        got = f"{reached:.1f} s" if reached is not None else f"not reached in {args.max_seconds:.0f} s"
        print(f"launch to val/loss <= {args.target}: {got} (evaluations every {interval:.1f} s; run {rd.name})")


if __name__ == "__main__":
    main()
