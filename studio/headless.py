"""Headless training: start the engine process, follow its event log with a rich progress
bar, print a summary. The same run directory the studio reads."""

from __future__ import annotations

import signal
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from engine.launch import start_engine
from engine.rundir import TERMINAL_STATES, EventTail, History, RunDir, RunDirError, read_history
from engine.runs import run_ref, train_command


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def train(rd: RunDir, resume: bool = False, console: Console | None = None, nnodes: int = 1,
          rdzv_endpoint: str | None = None) -> int:
    """Train ``rd`` in an engine process and follow it with a progress bar. The verdict is
    what this attempt did, never what an earlier one left in the log. Ctrl-C or SIGTERM ask
    the engine to stop (it saves a checkpoint); a lost terminal (SIGHUP) leaves it training.
    Returns 0 (finished, or stopped as asked), 1 (failed or died), 2 (could not start),
    or 128 + the signal when a signal stopped it."""
    console = console or Console(stderr=False)
    cfg = rd.read_config()  # RunDirError for a damaged run: the CLI says so and exits 2
    ref = run_ref(rd)
    total = cfg["params"].get("steps") if isinstance(cfg["params"].get("steps"), int) else 0
    if resume:
        if rd.engine_alive():
            console.print(f"[yellow]{rd.name} is already training; `genstudio attach {ref}` watches it[/]")
            return 2
        done = read_history(rd)
        if done.state == "finished":
            console.print(f"{rd.name} already finished all {done.step:,} steps; for more, start a new run: "
                          f"{train_command(cfg)} (with a larger --steps)")
            return 2
        if not rd.checkpoint_path.exists():
            console.print(f"[red]{rd.name} has no checkpoint to resume from[/]; start a new run with the same "
                          f"settings: {train_command(cfg)}")
            return 2
    tail = EventTail(rd.events_path)
    hist = History()
    for ev in tail.read_new():  # earlier history, when resuming
        hist.apply(ev)
    console.print(f"[bold]genstudio[/] training [cyan]{cfg['recipe']}[/] -> {rd.path}")
    try:
        proc = start_engine(rd.path, nproc=_nproc(cfg), nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)
    except RunDirError as e:
        console.print(f"[yellow]{e}[/]")
        return 2
    signals: list[int] = []  # SIGINT / SIGTERM received, in order
    previous = {sig: signal.signal(sig, lambda signum, frame: signals.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"), console=console, transient=False,
    )
    attempt = None  # the last state this attempt's engine wrote
    asked = 0  # signals already acted on
    try:
        with progress:
            task = progress.add_task("starting", total=total, completed=hist.step, rate="", info="")
            while True:
                for ev in tail.read_new():
                    hist.apply(ev)
                    if ev.type == "state" and isinstance(ev.payload.get("state"), str):
                        attempt = ev.payload["state"]
                    elif ev.type == "log" and isinstance(ev.payload.get("message"), str):
                        progress.console.print(f"[dim]{ev.payload['message']}[/]")
                    elif ev.type == "error":
                        progress.console.print(f"[red]error:[/] {ev.payload.get('message')}\n"
                                               f"[yellow]what to try:[/] {ev.payload.get('hint')}")
                loss = hist.metrics.get("train/loss")
                rate = hist.status.get("steps_per_s")
                progress.update(task, completed=hist.step, description=hist.state,
                                rate=f"{rate:,.1f} it/s" if rate else "", info=f"loss {loss[-1][1]:.4g}" if loss else "")
                if attempt in TERMINAL_STATES or proc.poll() is not None:
                    break
                if len(signals) > asked:
                    asked = len(signals)
                    if asked > 1:  # a second signal: stop waiting; the engine still saves and exits
                        break
                    rd.send("stop")
                    progress.console.print("[yellow]stopping: saving a checkpoint (Ctrl-C again to stop waiting)[/]")
                time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    code = proc.wait() if attempt in TERMINAL_STATES or proc.poll() is not None else None
    for ev in tail.read_new():
        hist.apply(ev)
        if ev.type == "state" and isinstance(ev.payload.get("state"), str):
            attempt = ev.payload["state"]
    interrupted = 128 + signals[0] if signals else 0
    if attempt not in TERMINAL_STATES:
        if code is None:  # we stopped waiting
            console.print(f"stopped waiting; {rd.name} is still saving its checkpoint. `genstudio runs` shows when "
                          f"it is done, and `genstudio resume {ref}` continues it.")
            return interrupted or 1
        log_lines = rd.log_path.read_text(errors="replace").strip().splitlines()[-8:] if rd.log_path.exists() else []
        if code == 2 and any("already training" in line for line in log_lines):
            console.print(f"[yellow]{rd.name} is already training in another process[/]; "
                          f"`genstudio attach {ref}` watches it")
            return 2
        how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        oom = " (signal 9 is often the system killing a process that used too much memory)" if code == -9 else ""
        console.print(f"[red]the engine process died ({how}) without saying why{oom}[/]; its log: {rd.log_path}")
        for line in log_lines:
            console.print(f"  [dim]{line}[/]")
        return 1
    console.print(summary_table(rd, hist))
    if attempt == "failed":
        return 1
    if attempt == "stopped":
        console.print(f"stopped at step {hist.step:,}; continue with `genstudio resume {ref}`")
    return interrupted


def _nproc(cfg: dict) -> int:
    n = cfg.get("nproc", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1


def start_detached(rd: RunDir, console: Console | None = None, nnodes: int = 1, rdzv_endpoint: str | None = None) -> int:
    """Start (or continue) ``rd`` in the background and say how to come back to it."""
    console = console or Console(stderr=False)
    cfg = rd.read_config()
    try:
        proc = start_engine(rd.path, nproc=_nproc(cfg), nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)
    except RunDirError as e:
        console.print(f"[yellow]{e}[/]")
        return 2
    ref = run_ref(rd)
    console.print(f"training {cfg['recipe']} in the background: {rd.path} (engine pid {proc.pid})\n"
                  f"  watch it:  genstudio attach {ref}\n"
                  f"  stop it:   genstudio stop {ref}\n"
                  f"  all runs:  genstudio runs")
    return 0


def summary_table(rd: RunDir, hist: History) -> Table:
    table = Table(title=f"run {rd.name}: {hist.state}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("steps", f"{hist.step:,}")
    table.add_row("device", hist.device or "?")
    if hist.status:
        table.add_row("training time", fmt_duration(hist.status.get("elapsed") or 0))
    for key in sorted(hist.metrics, key=lambda k: (k.split("/")[0] != "train", k.split("/")[0] != "val", k)):
        table.add_row(key, f"{hist.metrics[key][-1][1]:.4g}")
    for name, rel in hist.samples.items():
        path = rd.artifact_path(rel)
        if path is not None and path.suffix == ".png":
            table.add_row(name, str(path))
    if rd.checkpoint_path.exists():
        table.add_row("checkpoint", str(rd.checkpoint_path))
    for err in hist.errors:
        table.add_row("[red]error[/]", f"{err.get('message')}\n{err.get('hint', '')}")
    return table
