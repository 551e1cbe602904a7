"""How musical the two music lessons' default presets get in a fixed time, against the
held-out chorales measured in the same run.

1. The chorales are read (or taken from the cache) before any clock starts; the held-out
   pieces' figures are the reference (engine/metrics/music.py: share of sounding notes in
   the piece's scale, share of steps with four voices sounding, empty bars, notes in the
   voices' ranges, beats that fit one chord, tonal distance between voices).
2. MuseGAN: a headless engine run of the default `musegan` preset (the studio's way: its
   own process, views and scores included), stopped --seconds after launch; its
   checkpoint, loaded into a fresh recipe, draws --n phrases from fresh inputs; their
   figures are printed beside those of the held-out chorales' phrases of the same length.
3. Music Transformer: the same for the default `music_transformer` preset; then the
   held-out negative log-likelihood per token (every held-out window, not the 64 the
   curve uses), and for every held-out chorale a continuation of its first --prompt-bars
   bars by --new-bars bars at each of --temperatures (1 by default); their figures beside
   those of the bars Bach wrote there.

Wall-clock figures depend on the machine and on what else runs on it: the load average
(uptime) is printed at the start and the end, with the steps each run reached, so a
figure can be re-measured on an idle machine. With --cpu the budget is the engine
process's CPU time instead: both recipes train on one thread, so on a shared machine this
stands in for the wall time of an idle one (the views' share included).

    python benchmarks/music_quality.py [--seconds 180] [--cpu] [--only musegan|music_transformer] [--set key=value]
"""

from __future__ import annotations

import argparse
import os
import time

from common import fresh_home, process_cpu_seconds, wait_for


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())



def train(recipe: str, sets: list[str], seconds: float, cpu: bool):
    """A headless run of ``recipe`` with the preset's own steps (the learning-rate schedule
    depends on them), stopped ``seconds`` after launch (of its CPU time with ``cpu``) if it
    has not finished by then: (run dir, steps)."""
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run

    rd = create_run(recipe, sets, None, "cpu", None)
    print(f"   {recipe}: run {rd.path}")
    launch = time.monotonic()
    proc = start_engine(rd.path)
    used = {"cpu": 0.0, "wall": 0.0}
    try:
        def done():
            used["cpu"], used["wall"] = process_cpu_seconds(proc.pid), time.monotonic() - launch
            h = read_history(rd)
            if h.state in ("failed", "stopped"):
                raise RuntimeError(f"engine run ended early ({h.state}): {h.errors}")
            if h.state == "finished":
                return True
            return used["cpu" if cpu else "wall"] >= seconds
        wait_for(done, timeout=(20 if cpu else 1) * seconds + 300, interval=0.5)
    finally:
        rd.send("stop")
        proc.wait(timeout=300)
    h = read_history(rd)
    print(f"   {recipe}: {h.step:,} steps ({h.state}) in {used['wall']:.0f} s from launch, "
          f"{used['cpu']:.0f} s of the engine's CPU time")
    return rd, h.step


def restore(rd):
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.recipes import build_recipe
    from engine.recipes.base import RunContext

    ck = load_checkpoint(rd.checkpoint_path)
    recipe = build_recipe(rd.read_config()["recipe"], ck["params"], RunContext(device=torch.device("cpu")))
    recipe.load_state_dict(ck["state"])
    return recipe


def table(rows: dict[str, dict[str, float]]) -> None:
    from engine.metrics.music import NAMES

    print("    " + "".join(f"{n:>15}" for n in NAMES))
    for label, figures in rows.items():
        print(f"    {label:<28}"[:32] + "".join(f"{figures[n]:>15.3f}" for n in NAMES))


def musegan(args, music) -> None:
    import torch

    from engine.metrics.music import music_quality
    from engine.models.musegan import draw_inputs
    from engine.recipes.musegan import classes_to_grid, phrase_classes

    rd, steps = train("musegan", args.sets, args.seconds, args.cpu)
    recipe = restore(rd)
    bars = recipe.cfg.bars
    held = list(classes_to_grid(torch.from_numpy(phrase_classes(music, music.held_out, bars))))
    made = list(recipe.generate(draw_inputs(args.n, recipe.args, torch.Generator().manual_seed(1))))
    print(f"MuseGAN, {budget(args)}: {steps:,} steps ({load()})")
    table({f"held-out phrases ({len(held)})": music_quality(held), f"generated ({len(made)})": music_quality(made)})


def transformer(args, music) -> None:
    import torch

    from engine.data.music import notes_to_grid, tokens_to_notes
    from engine.metrics.music import music_quality

    rd, steps = train("music_transformer", args.sets, args.seconds, args.cpu)
    recipe = restore(rd)
    recipe.val_starts = torch.arange(0, len(recipe.val_ids) - recipe.cfg.context - 1, recipe.cfg.context // 2)
    nll = recipe.evaluate()["val/loss"]
    print(f"music Transformer, {budget(args)}: {steps:,} steps ({load()})")
    print(f"    held-out NLL per token: {nll:.3f} nats over {len(recipe.val_starts)} windows "
          f"(uniform over the vocabulary: {torch.log(torch.tensor(262.0)):.3f})")
    def bars_of(tokens):
        """The first new_bars bars of a continuation as a grid (None if it is shorter)."""
        notes, steps_ = tokens_to_notes(tokens)
        grid = notes_to_grid(notes, steps_)[:, :args.new_bars * 16]
        return grid if grid.shape[1] == args.new_bars * 16 else None

    prompts = [recipe.prompt(piece, args.prompt_bars) for piece in range(1, len(recipe.held) + 1)]
    real = [g for g in (bars_of(rest) for _, _, rest in prompts) if g is not None]
    rows = {f"Bach's next bars ({len(real)})": music_quality(real)}
    for temperature in args.temperatures:
        g = torch.Generator().manual_seed(1)
        made = [bars_of(recipe.continue_tokens(prompt, args.new_bars, temperature, 0, g)) for _, prompt, _ in prompts]
        made = [m for m in made if m is not None]
        rows[f"continued at T={temperature:g} ({len(made)})"] = music_quality(made)
    table(rows)


def budget(args) -> str:
    what = "of the engine's CPU time" if args.cpu else "from launch"
    return f"{' '.join(args.sets) or 'default preset'}, {args.seconds:.0f} s {what}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0, help="training budget, wall seconds from launch")
    ap.add_argument("--cpu", action="store_true",
                    help="count the engine's CPU seconds, not wall seconds: both recipes train on one thread, so "
                         "this stands in for an idle machine when others share the cores")
    ap.add_argument("--only", choices=("musegan", "music_transformer"))
    ap.add_argument("--n", type=int, default=256, help="MuseGAN phrases generated")
    ap.add_argument("--prompt-bars", type=int, default=4)
    ap.add_argument("--new-bars", type=int, default=4)
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0], help="continue at each of these")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="preset overrides, key=value")
    args = ap.parse_args()
    fresh_home()
    import torch

    torch.set_num_threads(1)  # as the recipes train; a second thread only waits on a busy machine
    from engine.data.music import load_chorales

    print(f"start: {load()}")
    t0 = time.monotonic()
    music = load_chorales(log=lambda m: print("  ", m))
    print(f"{music.describe()} (ready in {time.monotonic() - t0:.1f} s)")
    if args.only in (None, "musegan"):
        musegan(args, music)
    if args.only in (None, "music_transformer"):
        transformer(args, music)
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
