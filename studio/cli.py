"""The ``genstudio`` command. Exit codes: 0 success, 1 a run failed, 2 bad usage.

Importing this module must not import torch: the studio starts fast because of it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.registry import RECIPES
from engine.rundir import RunDir, RunDirError, list_runs
from engine.runs import RunError, create_run
from engine.schema import specs

GRAPHICS = ("auto", "sixel", "kitty", "halfblock", "ascii")
DEVICES = ("auto", "cpu", "cuda", "mps")


class UsageError(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


def _recipe_help() -> str:
    lines = []
    for name, (cls, _) in sorted(RECIPES.items()):
        lines.append(f"hyperparameters of {name} (--set key=value):")
        for s in specs(cls):
            live = " [live]" if s.live else ""
            lines.append(f"  {s.name:<11} {str(s.default):<8} {s.range_text():<22} {s.help}{live}")
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
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_recipe_help())
    t.add_argument("recipe", help=f"what to train: {', '.join(sorted(RECIPES))}")
    t.add_argument("--steps", type=int, help="training steps (overrides the preset)")
    t.add_argument("--device", choices=DEVICES, default="auto", help="auto picks cuda, then mps, then cpu")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="set a hyperparameter (repeatable); see the list below")
    t.add_argument("--run-dir", help="where to write the run (default: a new folder under the runs root)")
    t.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train with N processes under torchrun (DDP; gloo on CPUs, NCCL on GPUs); gpt only")

    r = sub.add_parser("resume", help="continue a stopped or interrupted run from its last checkpoint, headless")
    r.add_argument("run", help="run name, unique prefix, path, or 'last'")

    sub.add_parser("lessons", help="list the lessons and your progress")
    sub.add_parser("runs", help="list earlier runs")

    s = sub.add_parser("sample", help="draw samples from a run's last checkpoint into a PNG grid")
    s.add_argument("run", help="run name, unique prefix, path, or 'last'")
    s.add_argument("-o", "--output", required=True, help="PNG file to write")
    s.add_argument("-n", type=int, default=64, help="how many samples (1-1024, default 64)")
    s.add_argument("--seed", type=int, default=0, help="random seed for the latent codes")
    s.add_argument("--device", choices=DEVICES, default="auto")

    st = sub.add_parser("stop", help="ask a running training to stop (it saves a checkpoint first)")
    st.add_argument("run", help="run name, unique prefix, path, or 'last'")

    a = sub.add_parser("attach", help="open the studio on a running or finished run")
    a.add_argument("run", help="run name, unique prefix, path, or 'last'")

    o = sub.add_parser("open", help="open the studio on a lesson")
    o.add_argument("lesson", help="lesson id (see `genstudio lessons`)")
    return p


def cmd_lessons() -> int:
    from rich.console import Console
    from rich.table import Table

    from studio.lessons import load_lessons
    from studio.progress import lesson_badge, load_progress

    progress = load_progress()
    table = Table(title="GenStudio lessons", title_justify="left")
    for col in ("id", "family", "title", "train with", "progress"):
        table.add_column(col)
    for lesson in load_lessons():
        table.add_row(lesson.id, lesson.family, lesson.title, f"genstudio train {lesson.recipe}",
                      lesson_badge(lesson.id, progress))
    Console().print(table)
    return 0


def cmd_runs() -> int:
    from rich.console import Console

    from studio.runs_table import runs_table

    Console().print(runs_table())
    return 0


def cmd_sample(args) -> int:
    """Sampling loads a model, so it runs as an engine process (this one never imports torch)."""
    if not 1 <= args.n <= 1024:
        raise UsageError("-n must be between 1 and 1024")
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise UsageError(f"-o {out}: the output must be a .png file")
    rd = _resolve(args.run)
    from rich.console import Console

    from engine.launch import run_engine_tool

    with Console(stderr=True).status(f"sampling {args.n} from {rd.name} …"):
        done = run_engine_tool(["sample", str(rd.path), "-o", str(out.absolute()), "-n", str(args.n),
                                "--seed", str(args.seed), "--device", args.device])
    if done.returncode != 0:
        message = done.stderr.strip() or f"the sampling process failed (exit {done.returncode})"
        print(message if message.startswith("genstudio") else f"genstudio sample: {message}", file=sys.stderr)
        return 1
    print(f"wrote {args.n} samples from {rd.name} to {out}")
    return 0


def _resolve(ref: str) -> RunDir:
    from engine.rundir import resolve_run

    try:
        return resolve_run(ref)
    except RunDirError as e:
        raise UsageError(str(e)) from None


def run_tui(args, lesson: str | None = None, attach: RunDir | None = None) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the studio needs a terminal; for scripts use `genstudio train RECIPE` (see --help)")
    from studio.app import GenStudioApp

    app = GenStudioApp(graphics=args.graphics, lesson=lesson, attach=str(attach.path) if attach else None)
    if app.graphics_mode in ("sixel", "kitty"):
        # textual-image queries the terminal when imported: do it before Textual owns it.
        from studio.graphics import load_textual_image_widget

        load_textual_image_widget(app.graphics_mode)
    app.run()
    still = [rd.name for rd in list_runs() if rd.engine_alive()]
    if still:
        print(f"still training in the background: {', '.join(still)}\n"
              f"watch with `genstudio attach {still[0]}`, stop with `genstudio stop {still[0]}`")
    return app.return_code or 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            from studio.headless import train

            try:
                rd = create_run(args.recipe, args.sets, args.steps, args.device, args.run_dir, nproc=args.nproc)
            except RunError as e:
                raise UsageError(str(e)) from None
            return train(rd)
        if args.command == "resume":
            from studio.headless import train

            rd = _resolve(args.run)
            return train(rd, resume=True)
        if args.command == "lessons":
            return cmd_lessons()
        if args.command == "runs":
            return cmd_runs()
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "stop":
            rd = _resolve(args.run)
            if not rd.engine_alive():
                print(f"{rd.name} is not training; nothing to stop")
                return 0
            rd.send("stop")
            print(f"asked {rd.name} to stop; it saves a checkpoint, then exits (`genstudio resume {rd.name}` continues it)")
            return 0
        if args.command == "attach":
            rd = _resolve(args.run)
            try:
                rd.read_config()
            except RunDirError as e:
                raise UsageError(str(e)) from None
            return run_tui(args, attach=rd)
        if args.command == "open":
            from studio.lessons import LessonError, get_lesson

            try:
                lesson = get_lesson(args.lesson)
            except LessonError as e:
                raise UsageError(str(e)) from None
            return run_tui(args, lesson=lesson.id)
        return run_tui(args)
    except UsageError as e:
        print(f"genstudio: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
