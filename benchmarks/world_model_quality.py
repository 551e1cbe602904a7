"""How well the world-model lesson's controller, trained only in its model's dream, plays
the real game: its mean return beside a random policy's, measured in the same run.

1. A headless engine run of the default `world_model` preset (the studio's way: its own
   process, views and scores included), to the end of its steps (or --seconds of wall
   time from launch). Printed: the steps, the wall time, the engine process's CPU time,
   the load average, and when the run's own score (quality/return_ratio: the controller's
   mean return on the recipe's 100 fixed test episodes over a random policy's on the same
   episodes) first reached --bar, with the engine's CPU seconds at that moment (read from
   /proc while it runs).
2. The checkpoint it left, loaded into a fresh recipe, played on --episodes new episodes
   (a seed no run uses) by: the dream-trained controller; a policy that picks a move
   uniformly at random every step; one that never moves; one that always moves right
   (it ends up against the wall). Mean return, its standard error, and the ratio to the
   random policy. The controller's return in its own dream, at the preset's temperature
   and at 1.0, is printed beside it.

Bar (fixed before the preset was tuned): the controller's mean real return at least 1.5x
the random policy's, within about 3 minutes of one CPU thread on a 2-core machine.

    python benchmarks/world_model_quality.py [--seconds 900] [--episodes 1000] [--set key=value]
"""

from __future__ import annotations

import argparse
import os
import time

from common import fresh_home, process_cpu_seconds, wait_for



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=900.0, help="wall-time cap from launch (a busy machine is slow)")
    ap.add_argument("--episodes", type=int, default=1000, help="fresh real episodes for the final comparison")
    ap.add_argument("--bar", type=float, default=1.5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home(keep_cache=False)
    import numpy as np
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.configs.world_model import WorldModelConfig
    from engine.data.dodge import Dodge, random_actions
    from engine.device import resolve_device
    from engine.launch import start_engine
    from engine.models.world_model import dream
    from engine.recipes.base import RunContext
    from engine.recipes.world_model import WorldModelRecipe
    from engine.rundir import read_history
    from engine.runs import create_run
    from engine.schema import validate

    rd = create_run("world_model", args.sets, None, args.device, None)
    params = rd.read_config()["params"]
    cfg = validate(WorldModelConfig, params)
    print(f"run {rd.path}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    print(f"load average at launch: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    launch = time.monotonic()
    proc = start_engine(rd.path)
    first_hit = None  # (step, generation, CPU seconds, training seconds, ratio)
    cpu_now = 0.0
    try:
        def done():
            nonlocal first_hit, cpu_now
            cpu = process_cpu_seconds(proc.pid)
            cpu_now = cpu if cpu == cpu else cpu_now  # (NaN once the process has ended: keep the last reading)
            h = read_history(rd)
            if h.state == "failed":
                raise RuntimeError(f"engine run failed: {h.errors}")
            if first_hit is None:
                hits = [(s, v) for s, v in h.metrics.get("quality/return_ratio", []) if v >= args.bar]
                if hits:
                    s, v = hits[0]
                    first_hit = (s, s - cfg.vae_steps - cfg.rnn_steps, cpu_now, h.status.get("elapsed", 0.0), v)
            return h.state in ("finished", "stopped") or time.monotonic() - launch >= args.seconds
        wait_for(done, timeout=args.seconds + 300, interval=0.25)
    finally:
        rd.send("stop")
        proc.wait(timeout=300)
    wall = time.monotonic() - launch
    h = read_history(rd)
    print(f"{h.state}: {h.step:,} of {cfg.steps:,} steps ({cfg.vae_steps:,} for V, {cfg.rnn_steps:,} for M, then "
          f"{cfg.steps - cfg.vae_steps - cfg.rnn_steps} generations of C) in {wall:.0f}s wall from launch, "
          f"{h.status.get('elapsed', 0):.0f}s training time; the engine used {cpu_now:.0f} CPU seconds (last reading "
          f"before it ended); load average now {os.getloadavg()[0]:.1f}")
    for name in ("val/recon", "train/loss_m", "quality/dream_return", "quality/real_return", "quality/return_ratio"):
        series = h.metrics.get(name, [])
        every = series[:: max(1, len(series) // 10)]  # about ten points
        print(f"in-run {name} (step: value):", ", ".join(f"{s}: {v:.2f}" for s, v in every))
    if first_hit:
        s, gen, cpu, elapsed, v = first_hit
        print(f"in-run return ratio first reached {args.bar} at step {s:,} (generation {gen}), ratio {v:.2f}: "
              f"{cpu:.0f} CPU seconds of the engine process (within 0.25 s of the event), {elapsed:.0f}s of training")
    else:
        print(f"in-run return ratio did not reach {args.bar}")

    torch.set_num_threads(1)  # as the engine trains (cpu_threads=1)
    dev = resolve_device(args.device)
    if h.step <= cfg.vae_steps + cfg.rnn_steps:
        raise SystemExit("the run stopped before the controller evolved: give it more --seconds")
    recipe = WorldModelRecipe(RunContext(device=dev, need_data=False), cfg)
    recipe.load_state_dict(load_checkpoint(rd.checkpoint_path, map_location=dev)["state"])
    seed, n = 31_337, args.episodes  # episodes no run trains or tests on

    def fixed(action: int):
        def policy(env: Dodge, rng) -> np.ndarray:
            return np.full(env.n, action)
        return policy

    def run_policy(policy) -> np.ndarray:
        env, rng = Dodge(n, seed, cfg.max_steps), np.random.default_rng(seed + 1)
        while not env.done.all():
            env.step(policy(env, rng))
        return env.steps_alive.astype(np.float64)

    t = time.perf_counter()
    controller = recipe.play(recipe.es.mean, episodes=n, seed=seed)
    seconds = time.perf_counter() - t
    results = {"the dream-trained controller": controller,
               "random moves (uniform, every step)": run_policy(lambda env, rng: random_actions(env.n, rng)),
               "never moves": run_policy(fixed(1)),
               "always moves right": run_policy(fixed(2))}
    base = results["random moves (uniform, every step)"].mean()
    print(f"real game, {n} new episodes (seed {seed}), return = steps survived (at most {cfg.max_steps}):")
    for what, r in results.items():
        print(f"  {what:<38} mean {r.mean():6.2f} +- {r.std(ddof=1) / np.sqrt(n):.2f}, {r.mean() / base:.2f}x random")
    print(f"  (the controller played {n} episodes through V and M in {seconds:.1f}s)")
    g = torch.Generator().manual_seed(5)
    with torch.inference_mode():
        for temp in (cfg.temperature, 1.0):
            theta = recipe.es.mean.expand(n, -1)
            starts = recipe.vae.encoder(torch.as_tensor(Dodge(n, seed + 2).frames()).float().div(255).unsqueeze(1))[0]
            ret = dream(recipe.rnn.eval(), theta, starts, cfg.max_steps, temp, g)["return"]
            print(f"  the controller in M's dream at temperature {temp:g}: mean {ret.mean().item():.2f}")
    ratio = controller.mean() / base
    print(f"verdict: {ratio:.2f}x the random policy's return: {'reaches' if ratio >= args.bar else 'misses'} the bar "
          f"of {args.bar}x")


if __name__ == "__main__":
    main()
