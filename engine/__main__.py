"""The engine's own commands, each run as a separate process by the CLI and the studio:

    python -m engine run RUN_DIR        train (or continue, or serve) one run
    python -m engine sample RUN_DIR -o grid.png [-n 64] [--seed 0] [--device auto]

A command that fails prints one line on stderr and exits 1."""

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
    sample = sub.add_parser("sample", help="draw samples from RUN_DIR's last checkpoint into a PNG grid")
    sample.add_argument("run_dir")
    sample.add_argument("-o", "--output", required=True)
    sample.add_argument("-n", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.command == "sample":
        from engine.sample import main as sample_main

        return sample_main(args.run_dir, args.output, n=args.n, seed=args.seed, device=args.device)
    from engine.runner import main as run_main

    return run_main(args.run_dir, args.commands_from, args.serve)


if __name__ == "__main__":
    sys.exit(main())
