"""The ``genstudio`` command. Exit codes: 0 success, 1 a run failed, 2 bad usage, 128 + N
when signal N (Ctrl-C, SIGTERM) stopped a foreground run after its checkpoint was saved.

Importing this module must not import torch: the studio starts fast because of it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from engine.registry import RECIPES
from engine.rundir import TERMINAL_STATES, RunDir, RunDirError, list_runs, read_history
from engine.runs import RunError, create_run, run_ref
from engine.schema import specs

GRAPHICS = ("auto", "sixel", "kitty", "halfblock", "ascii")
DEVICES = ("auto", "cpu", "cuda", "mps")
RUN_REF = "run name, unique prefix, path, or 'last'"
JOIN_WAIT_S = 10.0  # how long a machine joining a shared run waits for the config another is writing


class UsageError(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


def recipe_help(recipe: str) -> str:
    """One recipe's hyperparameters, aligned: name, default, range, help."""
    rows = [(s.name, str(s.default) if s.default != "" else '""', s.range_text(), s.help + (" [live]" if s.live else ""))
            for s in specs(RECIPES[recipe].config)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"hyperparameters of {recipe} (--set KEY=VALUE; [live] ones can change while it trains):"]
    lines += [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genstudio",
        description="GenStudio: learn generative AI by training every major model family yourself, live. "
        "With no command, opens the studio.",
    )
    p.add_argument("--graphics", choices=GRAPHICS, default="auto",
                   help="how images are drawn: sixel/kitty graphics, coloured half-blocks, or ascii (default: auto)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe headless, with a progress bar",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="`genstudio train RECIPE --help` lists that recipe's hyperparameters.\n"
                              "Ctrl-C or SIGTERM stop the run after saving a checkpoint; a lost terminal (SIGHUP) "
                              "leaves it training:\n`genstudio runs` finds it and `genstudio attach RUN` watches it.")
    t.add_argument("recipe", help=f"what to train: a recipe ({', '.join(sorted(RECIPES))}) or a lesson id "
                   "(see `genstudio lessons`)")
    t.add_argument("--steps", type=int, help="training steps (overrides the preset)")
    t.add_argument("--device", choices=DEVICES, default="auto", help="auto picks cuda, then mps, then cpu")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="set a hyperparameter (repeatable)")
    t.add_argument("--run-dir", help="where to write the run (default: a new folder under the runs root)")
    t.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train with N processes under torchrun (DDP; gloo on CPUs, NCCL on GPUs)")
    t.add_argument("--detach", action="store_true", help="start the run in the background and return at once")
    t.add_argument("--nnodes", type=int, default=1, metavar="N",
                   help="train on N machines together: run the same command on each, with the same --run-dir "
                        "(on storage they share) and --rdzv-endpoint")
    t.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="with --nnodes: where the machines meet (a free port on one of them, reachable by all)")
    p.train_parser = t  # `genstudio train RECIPE --help` prints it with the recipe's hyperparameters

    r = sub.add_parser("resume", help="continue a stopped or interrupted run from its last checkpoint, headless")
    r.add_argument("run", help=RUN_REF)
    r.add_argument("--detach", action="store_true", help="continue it in the background and return at once")

    ls = sub.add_parser("lessons", help="list the lessons and your progress")
    ls.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    rs = sub.add_parser("runs", help="list earlier runs, wherever they live")
    rs.add_argument("--json", action="store_true", help="print JSON (for scripts)")

    s = sub.add_parser("sample", help="draw samples from a run's last checkpoint: a PNG grid, or a MIDI or WAV piece")
    s.add_argument("run", help=RUN_REF)
    s.add_argument("-o", "--output", required=True, help="file to write (its folder must exist): .png for a grid of images, "
                   ".mid or .wav for a piece from a music lesson")
    s.add_argument("-n", type=int, default=64, help="how many samples (1-1024, default 64): images, or for music the "
                   "phrases (MuseGAN) or bars (music Transformer)")
    s.add_argument("--seed", type=int, default=0, help="random seed for the latent codes")
    s.add_argument("--device", choices=DEVICES, default="auto")

    ex = sub.add_parser("export", help="write a run's metric history as CSV (for a spreadsheet or a notebook)")
    ex.add_argument("run", help=RUN_REF)
    ex.add_argument("--csv", required=True, metavar="FILE", help="the CSV file to write, or - for standard output")

    st = sub.add_parser("stop", help="ask a running training to stop (it saves a checkpoint first)")
    st.add_argument("run", help=RUN_REF)

    a = sub.add_parser("attach", help="open the studio on a running or finished run")
    a.add_argument("run", help=RUN_REF)

    o = sub.add_parser("open", help="open the studio on a lesson")
    o.add_argument("lesson", help="lesson id (see `genstudio lessons`)")
    sub.add_parser("review", help="open the studio on Review: spaced-repetition cards from the lessons you opened")
    return p


def _print_rows(rows: list[tuple]) -> None:
    """Plain rows for a pipe: tab-separated, one item a line, nothing cut."""
    for row in rows:
        print("\t".join(str(cell) for cell in row))


def cmd_lessons(as_json: bool) -> int:
    from studio.lessons import SKIPPED, load_lessons
    from studio.progress import lesson_badge, load_progress

    progress = load_progress()
    lessons = load_lessons()
    for problem in SKIPPED.values():
        print(f"genstudio: left out a lesson file that cannot be read: {problem}", file=sys.stderr)
    if as_json:
        print(json.dumps([{"id": l.id, "family": l.family, "title": l.title, "recipe": l.recipe,
                           "progress": lesson_badge(l.id, progress)} for l in lessons], indent=2))
        return 0
    if not sys.stdout.isatty():
        _print_rows([(l.id, l.family, l.title, l.recipe, lesson_badge(l.id, progress)) for l in lessons])
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="GenStudio lessons", title_justify="left")
    table.add_column("id", no_wrap=True, min_width=max((len(l.id) for l in lessons), default=2))
    for col in ("family", "title", "train with", "progress"):
        table.add_column(col)
    for lesson in lessons:
        table.add_row(lesson.id, lesson.family, lesson.title, f"genstudio train {lesson.recipe}",
                      lesson_badge(lesson.id, progress))
    Console().print(table)
    return 0


def cmd_runs(as_json: bool) -> int:
    from engine.runs import list_summaries

    runs = list_summaries()
    if as_json:
        print(json.dumps([{"name": r.name, "path": str(r.path), "recipe": r.recipe, "lesson": r.lesson,
                           "state": r.state, "step": r.step, "total_steps": r.total_steps, "val_loss": r.val_loss,
                           "quality": r.quality, "created": r.created, "has_checkpoint": r.has_checkpoint,
                           "problem": r.problem} for r in runs], indent=2))
        return 0
    if not sys.stdout.isatty():
        _print_rows([(r.name, r.recipe, r.state, r.steps_text, "" if r.val_loss is None else f"{r.val_loss:.4g}",
                      r.created_text, r.path) for r in runs])
        return 0
    from rich.console import Console

    from studio.runs_table import runs_table

    Console().print(runs_table(runs))
    return 0


def cmd_sample(args) -> int:
    """Sampling loads a model, so it runs as an engine process (this one never imports torch)."""
    if not 1 <= args.n <= 1024:
        raise UsageError("-n must be between 1 and 1024")
    out = Path(args.output).expanduser().absolute()
    if out.suffix.lower() not in (".png", ".mid", ".wav"):
        raise UsageError(f"-o {args.output}: write a .png file (images), or .mid or .wav (the music lessons)")
    if out.is_dir():
        raise UsageError(f"-o {args.output} is a folder; give a file name, e.g. {Path(args.output) / 'samples.png'}")
    if not out.parent.is_dir():
        raise UsageError(f"-o {args.output}: the folder {out.parent} does not exist (create it first)")
    rd = _resolve(args.run)
    from rich.console import Console

    from engine.launch import run_engine_tool

    with Console(stderr=True).status(f"sampling {args.n} from {rd.name} …"):
        done = run_engine_tool(["sample", str(rd.path), "-o", str(out), "-n", str(args.n),
                                "--seed", str(args.seed), "--device", args.device])
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        message = lines[-1] if lines else f"the sampling process failed (exit {done.returncode})"
        print(message if message.startswith("genstudio") else f"genstudio sample: {message}", file=sys.stderr)
        return 1
    if out.suffix.lower() == ".png":
        print(f"wrote {args.n} samples from {rd.name} to {out}")
    else:
        print(f"wrote a piece of music from {rd.name} to {out}")
    return 0


def cmd_export(args) -> int:
    """One row per step that logged a metric: step, then every metric (empty where it was not
    measured at that step), in the order train, val, quality."""
    import csv

    rd = _resolve(args.run)
    if args.csv != "-":
        out = Path(args.csv).expanduser().absolute()
        if out.is_dir():
            raise UsageError(f"--csv {args.csv} is a folder; give a file name, e.g. {Path(args.csv) / 'metrics.csv'}")
        if not out.parent.is_dir():
            raise UsageError(f"--csv {args.csv}: the folder {out.parent} does not exist (create it first)")
    hist = read_history(rd)
    names = sorted(hist.metrics, key=lambda k: (("train", "val", "quality").index(k.split("/")[0])
                                                if k.split("/")[0] in ("train", "val", "quality") else 3, k))
    rows: dict[int, dict[str, float]] = {}
    for name in names:
        for step, value in hist.metrics[name]:
            rows.setdefault(step, {})[name] = value
    stream = sys.stdout if args.csv == "-" else open(out, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(stream)
        writer.writerow(["step", *names])
        for step in sorted(rows):
            writer.writerow([step, *(rows[step].get(n, "") for n in names)])
    finally:
        if stream is not sys.stdout:
            stream.close()
    if args.csv != "-":
        print(f"wrote {len(rows):,} rows of {len(names)} metrics from {rd.name} to {out}")
    return 0


def _resolve(ref: str) -> RunDir:
    from engine.rundir import resolve_run

    try:
        rd = resolve_run(ref)
        rd.read_config()  # a damaged run is reported here, in one line
    except RunDirError as e:
        raise UsageError(str(e)) from None
    return rd


def _recipe_and_lesson(name: str) -> tuple[str, str | None]:
    """A recipe name, or a lesson id standing for its recipe (the catalog shows lesson ids)."""
    if name in RECIPES:
        return name, None
    from studio.lessons import LessonError, get_lesson

    try:
        lesson = get_lesson(name)
    except LessonError:
        return name, None  # create_run says what is wrong, with a suggestion
    return lesson.recipe, lesson.id


def _join_or_create(args, recipe: str, lesson: str | None) -> RunDir:
    """Several machines, one run: each runs the same `genstudio train` with --nnodes; the
    first to arrive creates the run in the shared --run-dir, the others join it."""
    if not args.run_dir or not args.rdzv_endpoint:
        raise UsageError("--nnodes needs --run-dir (a folder every machine sees) and --rdzv-endpoint HOST:PORT")
    rd = RunDir(Path(args.run_dir).expanduser().absolute())
    if rd.config_path.exists():
        cfg = rd.read_config()
        if cfg["recipe"] != recipe or cfg.get("nproc") != args.nproc:
            raise UsageError(f"{rd.path} holds a {cfg['recipe']} run for --nproc {cfg.get('nproc')}; every machine "
                             f"must run the same command")
        return rd
    try:
        return create_run(recipe, args.sets, args.steps, args.device, args.run_dir, lesson=lesson, nproc=args.nproc)
    except RunError as e:
        # Another machine created the folder a moment ago and may still be writing its
        # config (a temporary file first, synced, then renamed): give it a few seconds.
        deadline = time.monotonic() + JOIN_WAIT_S
        while rd.path.is_dir() and not rd.config_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if rd.config_path.exists():
            return _join_or_create(args, recipe, lesson)  # the same checks as for a config found at once
        raise UsageError(str(e)) from None


def run_tui(args, lesson: str | None = None, attach: RunDir | None = None, review: bool = False) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the studio needs a terminal; for scripts use `genstudio train RECIPE` (see --help)")
    from studio.app import GenStudioApp

    app = GenStudioApp(graphics=args.graphics, lesson=lesson, attach=str(attach.path) if attach else None,
                       review=review)
    if app.graphics_mode in ("sixel", "kitty"):
        # textual-image queries the terminal when imported: do it before Textual owns it.
        from studio.graphics import load_textual_image_widget

        load_textual_image_widget(app.graphics_mode)
    app.run()
    still = [rd for rd in list_runs() if rd.engine_alive()]
    if still:
        print(f"still training in the background: {', '.join(rd.name for rd in still)}\n"
              f"watch with `genstudio attach {run_ref(still[0])}`, stop with `genstudio stop {run_ref(still[0])}`")
    return app.return_code or 0


def _train_help(argv: list[str]) -> int | None:
    """`genstudio train RECIPE --help`: the train options and that recipe's hyperparameters
    only (argparse would stop at --help before it knows the recipe)."""
    if not argv or argv[0] != "train" or not {"-h", "--help"} & set(argv):
        return None
    names = [a for a in argv[1:] if not a.startswith("-")]
    recipe = _recipe_and_lesson(names[0])[0] if names else None
    print(build_parser().train_parser.format_help())
    if recipe in RECIPES:
        print(recipe_help(recipe))
    elif names:
        print(f"genstudio: unknown recipe {names[0]!r}; known: {', '.join(sorted(RECIPES))}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    shown = _train_help(argv)
    if shown is not None:
        return shown
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            from studio.headless import start_detached, train

            recipe, lesson = _recipe_and_lesson(args.recipe)
            if args.nnodes > 1:
                rd = _join_or_create(args, recipe, lesson)
                launch = {"nnodes": args.nnodes, "rdzv_endpoint": args.rdzv_endpoint}
                return start_detached(rd, **launch) if args.detach else train(rd, **launch)
            try:
                rd = create_run(recipe, args.sets, args.steps, args.device, args.run_dir, lesson=lesson,
                                nproc=args.nproc)
            except RunError as e:
                raise UsageError(str(e)) from None
            return start_detached(rd) if args.detach else train(rd)
        if args.command == "resume":
            from studio.headless import start_detached, train

            rd = _resolve(args.run)
            if args.detach:
                return start_detached(rd)
            return train(rd, resume=True)
        if args.command == "lessons":
            return cmd_lessons(args.json)
        if args.command == "runs":
            return cmd_runs(args.json)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "stop":
            rd = _resolve(args.run)
            if not rd.engine_alive():
                print(f"{rd.name} is not training; nothing to stop")
                return 0
            rd.send("stop")
            state = read_history(rd).state
            if state in TERMINAL_STATES:  # training is over; its engine was answering the studio's views
                how = {"finished": "finished", "stopped": "was stopped", "failed": "failed"}[state]
                print(f"{rd.name} is not training (it {how}); asked its engine, still serving its views, to exit")
            else:
                print(f"asked {rd.name} to stop; it saves a checkpoint, then exits "
                      f"(`genstudio resume {run_ref(rd)}` continues it)")
            return 0
        if args.command == "attach":
            return run_tui(args, attach=_resolve(args.run))
        if args.command == "open":
            from studio.lessons import LessonError, get_lesson

            try:
                lesson = get_lesson(args.lesson)
            except LessonError as e:
                raise UsageError(str(e)) from None
            return run_tui(args, lesson=lesson.id)
        if args.command == "review":
            return run_tui(args, review=True)
        return run_tui(args)
    except UsageError as e:
        print(f"genstudio: {e}", file=sys.stderr)
        return 2
    except RunDirError as e:
        print(f"genstudio: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
