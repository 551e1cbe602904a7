"""``python -m engine run RUN_DIR``: run one training run (the studio and CLI start it so)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description="GenStudio training engine")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train the run described by RUN_DIR/config.json")
    run.add_argument("run_dir")
    run.add_argument("--commands-from", type=int, default=0,
                     help="byte offset in commands.jsonl of the first command for this process")
    run.add_argument("--serve", type=float, default=0.0, metavar="SECONDS",
                     help="after training, keep answering view commands until stopped or idle this long")
    args = parser.parse_args(argv)
    from engine.runner import main as run_main

    return run_main(args.run_dir, args.commands_from, args.serve)


if __name__ == "__main__":
    sys.exit(main())
