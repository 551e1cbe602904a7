"""Starting an engine process for a run directory (torch-free: the studio imports it).

The engine runs as its own OS process in its own session, so quitting the UI, a dropped
SSH connection (SIGHUP to the terminal's process group) or Ctrl-C in the terminal does
not stop training; only a ``stop`` command or a signal sent to it does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from engine.rundir import RunDir, RunDirError, pid_alive


LAUNCHED: list[subprocess.Popen] = []  # every engine this process started (the tests clean up with it)


def engine_env(extra: dict | None = None) -> dict:
    """The environment of an engine process: ours, with the engine importable when
    GenStudio runs from a source checkout."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def run_engine_tool(args: list[str]) -> subprocess.CompletedProcess:
    """Run a one-off engine command (``python -m engine sample ...``) to its end, in its own
    process, so the caller never imports torch; its output is captured for the caller."""
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=engine_env())
    LAUNCHED.append(proc)
    try:
        out, err = proc.communicate()
    except BaseException:  # Ctrl-C: do not leave it running
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def torchrun_args(nproc: int, nnodes: int = 1, rdzv_endpoint: str | None = None, rdzv_id: str = "genstudio") -> list[str]:
    """How torchrun (torch.distributed.run) starts ``nproc`` engine processes on this machine,
    one machine of ``nnodes`` when several meet at ``rdzv_endpoint`` (HOST:PORT, reachable by
    all of them); empty for a single process."""
    if nproc <= 1 and nnodes <= 1:
        return []
    if nnodes <= 1:
        return ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return ["-m", "torch.distributed.run", f"--nnodes={nnodes}", f"--nproc-per-node={nproc}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={rdzv_id}"]


def start_engine(run_dir: str | Path, env: dict | None = None, serve: float = 0.0, nproc: int = 1,
                 nnodes: int = 1, rdzv_endpoint: str | None = None) -> subprocess.Popen:
    """Start the engine on ``run_dir``. ``serve`` > 0 keeps it answering view commands for
    that many idle seconds after training finishes (the studio's pickers use it).
    ``nproc`` > 1 starts that many engine processes under torchrun, training together
    with DDP (rank 0 writes the run directory); with ``nnodes`` > 1 this machine's share of
    a run that several machines train together (the run directory on storage they share)."""
    rd = RunDir(run_dir)
    rd.read_config()  # fail here, with a clear message, rather than in the child
    if nnodes <= 1 and rd.engine_alive():  # (another machine's processes may hold it already)
        raise RunDirError(f"{rd.name} is already training (engine pid {rd.engine_pid()}); attach to it instead")
    log = open(rd.log_path, "ab")
    child_env = engine_env(env)
    # Commands already in the log belong to earlier processes of this run: skip them.
    offset = rd.commands_path.stat().st_size if rd.commands_path.exists() else 0
    try:
        # torchrun (torch.distributed.run) starts nproc copies of the engine with RANK,
        # WORLD_SIZE and a rendezvous address in their environment.
        launcher = torchrun_args(nproc, nnodes, rdzv_endpoint, rdzv_id=rd.name)
        proc = subprocess.Popen(
            [sys.executable, *launcher, "-m", "engine", "run", str(rd.path), "--commands-from", str(offset),
             *(["--serve", f"{serve:g}"] if serve > 0 else [])],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=child_env, cwd=str(rd.path),
        )
        LAUNCHED.append(proc)
        return proc
    finally:
        log.close()


def wait_for_pid(run_dir: str | Path, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> int | None:
    """Wait until the engine has written its pid file (it has started) or exited."""
    rd = RunDir(run_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = rd.engine_pid()
        if pid is not None and pid_alive(pid):
            return pid
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None
