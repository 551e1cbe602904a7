"""Time from launching `genstudio` to its first frame on screen, against the reference cost
it avoids: `import torch` alone (the studio never imports torch).

Runs the real command in a pseudo-terminal of 120x40 and stops the clock when the catalog's
title appears in the output.

    python benchmarks/first_frame.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import termios
import time

from common import ROOT, fresh_home

MARKER = b"learn generative AI"


def first_frame() -> float:
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "studio.cli", "--graphics", "halfblock"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    start = time.monotonic()
    seen = b""
    try:
        while time.monotonic() - start < 30:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                seen += chunk
                if MARKER in seen:
                    return time.monotonic() - start
                # Answer terminal queries so the app is not kept waiting.
                if b"\x1b[6n" in chunk or b"\x1b[c" in chunk:
                    os.write(fd, b"\x1b[1;1R")
        raise RuntimeError("no first frame within 30 s")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def import_torch() -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    fresh_home()
    first_frame()  # warm the file cache
    frames = [first_frame() for _ in range(args.repeats)]
    torch_times = [import_torch() for _ in range(args.repeats)]
    ff, tt = statistics.median(frames), statistics.median(torch_times)
    print(f"first frame of genstudio: median {ff * 1000:.0f} ms over {args.repeats} launches "
          f"(min {min(frames) * 1000:.0f}, max {max(frames) * 1000:.0f})")
    print(f"reference, a Python process that only imports torch: median {tt * 1000:.0f} ms")
    print(f"RESULT: first frame in {ff:.2f} s (target < 1 s); {ff / tt:.2f}x the time of `import torch` alone")


if __name__ == "__main__":
    main()
