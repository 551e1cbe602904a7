"""The LSTM and the GPT on the same corpus and the same clock: validation bits per
character after the same training time, side by side.

Each model trains headless in its own engine process, as the studio starts it, one after
the other (side by side they would share the cores): the LSTM lesson's default preset and
the GPT lesson's default tiny preset (character tokens on Python's documentation), each
for --seconds of training time (the engine's own clock: start-up and corpus loading are
not counted, its periodic views are). So that each learning-rate schedule ends when the
time does, a 10-second probe measures each recipe's steps per second first, and the run's
step count is that rate times the budget (a run that is slower than its probe is stopped
at the budget, one that is faster finishes early: both are printed).

On a busy machine wall seconds buy little and unevenly: --clock cpu counts instead the
CPU time each engine's process uses from its first step, on one thread, which is what
its wall time would be on an idle machine (Linux: read from /proc).

Threads: the LSTM recipe always trains on one CPU thread (its steps are chains of small
matrix products, which a second thread does not speed up). The GPT recipe uses every core
when left alone; on a busy machine that is many times slower (each operation waits for
a descheduled thread), so both engines run on one thread by default (OMP_NUM_THREADS=1);
--threads 0 leaves the GPT its own choice, which is fairer on an idle machine.

The checkpoints are then scored two ways on the same held-out text (the corpus's last
tenth, never trained on):

- windows: the 64 fixed windows of 64 characters both lessons' curves use, each read
  from nothing (the GPT has no earlier text; the LSTM starts from zero memory);
- all text: every held-out character, with as much of the text before it as the model
  can use: the LSTM reads 8 long strips straight through, carrying its state; the GPT
  sees a sliding window of its 64-character context (each character scored with 32 to
  64 characters before it).

The GPT is the reference; the figure the lesson states is the LSTM's against it.

    python benchmarks/lstm_vs_gpt.py [--seconds 90] [--clock wall|cpu] [--threads 1]
                                     [--lstm-set key=value] [--gpt-set key=value]
"""

from __future__ import annotations

import argparse
import math
import os
import time

from common import fresh_home, process_cpu_seconds, wait_for

PROBE_SECONDS = 10.0
STRIPS = 8  # the LSTM reads the held-out text as this many strips side by side
CHUNK = 512  # tokens per forward pass while it reads them


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())



def run_for(recipe: str, sets: list[str], steps: int, seconds: float, clock: str):
    """An engine run of ``steps`` steps, stopped once it has trained ``seconds`` on
    ``clock``: "wall", the engine's own training time; "cpu", the CPU time its process has
    used since its first step (on one thread, what the wall time would be on an idle
    machine). Returns the run directory and (steps, seconds) trained."""
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run(recipe, sets, steps, "cpu", None)
    proc = start_engine(rd.path)
    start = None  # (step, CPU seconds) when training was first seen under way
    trained = (0, 0.0)
    try:
        def done():
            nonlocal start, trained
            h = read_history(rd)
            if h.state in ("failed", "stopped"):
                raise RuntimeError(f"{recipe} run ended early ({h.state}): {h.errors}")
            if clock == "wall":
                trained = (h.step, h.status.get("elapsed", 0.0))
            elif h.step >= 1 and proc.poll() is None:
                start = start or (h.step, process_cpu_seconds(proc.pid))
                trained = (h.step - start[0], process_cpu_seconds(proc.pid) - start[1])
            return h.state == "finished" or trained[1] >= seconds
        wait_for(done, timeout=seconds * 40 + 300, interval=0.25)
    finally:
        rd.send("stop")
        proc.wait(timeout=300)
    return rd, trained


def train(recipe: str, sets: list[str], seconds: float, clock: str):
    """Probe the rate, then train for ``seconds`` on ``clock``: the run directory and the
    seconds it trained."""
    from engine.rundir import read_history

    _, (n, t) = run_for(recipe, sets, 10_000_000, PROBE_SECONDS, clock)
    steps = max(1, round(n / t * seconds))
    print(f"{recipe}: probe {n / t:.2f} steps a {clock} second, so {steps} steps for {seconds:.0f} s; "
          f"load average {load()} before")
    rd, (n, t) = run_for(recipe, sets, steps, seconds, clock)
    print(f"{recipe}: {read_history(rd).device}, {n} steps in {t:.1f} {clock} seconds; load average {load()} after")
    return rd, t


def restore(rd):
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.recipes import build_recipe
    from engine.recipes.base import RunContext

    ck = load_checkpoint(rd.checkpoint_path)
    recipe = build_recipe(rd.read_config()["recipe"], ck["params"], RunContext(device=torch.device("cpu")))
    recipe.load_state_dict(ck["state"])
    recipe.model.eval()
    return recipe, ck


def lstm_all_text(recipe) -> float:
    """Nats per token over the held-out text, read in STRIPS strips with the state carried."""
    import torch

    ids = recipe.val_ids
    n = (len(ids) - 1) // STRIPS
    rows = torch.arange(STRIPS)[:, None] * n + torch.arange(n + 1)  # (STRIPS, n + 1)
    text = ids[rows]
    total, state = 0.0, None
    with torch.no_grad():
        for t in range(0, n, CHUNK):
            x, y = text[:, t:t + CHUNK], text[:, t + 1:t + CHUNK + 1]
            _, loss, state = recipe.model(x[:, :y.shape[1]], state, y)
            total += loss.item() * y.numel()
    return total / (STRIPS * n)


def gpt_all_text(recipe) -> float:
    """Nats per token over the held-out text: windows of the full context, half
    overlapping; each window scores its second half (the first window all of it)."""
    import torch
    import torch.nn.functional as F

    ids, T = recipe.val_ids, recipe.cfg.context
    half = T // 2
    starts = torch.arange(0, len(ids) - T - 1, half)
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in starts.split(64):
            idx = batch[:, None] + torch.arange(T + 1)
            chunk = ids[idx]
            logits, _, _ = recipe.model(chunk[:, :-1])
            nll = F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten(), reduction="none").view(len(batch), T)
            keep = torch.ones_like(nll, dtype=torch.bool)
            keep[:, :half] = batch[:, None] == 0  # only the very first window scores its first half
            total += nll[keep].sum().item()
            count += int(keep.sum())
    return total / count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=90.0, help="training time per model (engine seconds)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: the engines' training time; cpu: their CPU time, one thread each (a busy machine)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of each engine (0: the recipe's choice)")
    ap.add_argument("--lstm-set", dest="lstm_sets", action="append", default=[])
    ap.add_argument("--gpt-set", dest="gpt_sets", action="append", default=[])
    args = ap.parse_args()
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu counts one thread's time: use --threads 1")
    fresh_home()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the engines inherit it
    import torch

    torch.set_num_threads(1)  # scoring only; each engine sets its own threads
    print(f"{os.cpu_count()} CPUs; {args.seconds:.0f} {args.clock} seconds of training each, one after the other, "
          f"{args.threads or 'default'} thread(s) each")
    rows = []
    for name, recipe_name, sets, all_text in (("LSTM", "lstm", args.lstm_sets, lstm_all_text),
                                              ("GPT (reference)", "gpt", args.gpt_sets, gpt_all_text)):
        t0 = time.monotonic()
        rd, seconds = train(recipe_name, sets, args.seconds, args.clock)
        recipe, ck = restore(rd)
        to_bits = math.log(2) * recipe.chars_per_token["val"]
        windows = recipe.evaluate()["val/bpc"]
        everything = all_text(recipe) / to_bits
        params = sum(p.numel() for p in recipe.model.parameters())
        rows.append((name, params, ck["step"], seconds, ck["step"] * recipe.batch_size, windows, everything))
        print(f"{name}: done in {time.monotonic() - t0:.0f} s of wall time")

    print()
    print(f"{'model':<16} {'params':>7} {'steps':>6} {args.clock + ' s':>8} {'tokens':>9} "
          f"{'val bpc, windows':>17} {'val bpc, all text':>18}")
    for name, params, steps, elapsed, tokens, windows, everything in rows:
        print(f"{name:<16} {params / 1e6:6.2f}M {steps:6d} {elapsed:8.1f} {tokens:9,d} {windows:17.3f} {everything:18.3f}")
    (_, *_, lw, la), (_, *_, gw, ga) = rows
    print(f"RESULT: after {args.seconds:.0f} s each, LSTM {lw:.3f} vs GPT {gw:.3f} bits per character on the "
          f"64 windows ({lw - gw:+.3f}), {la:.3f} vs {ga:.3f} on all the held-out text ({la - ga:+.3f}); "
          f"load average {load()}")


if __name__ == "__main__":
    main()
