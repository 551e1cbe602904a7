"""Headless training: start the engine process, follow its event log with a rich progress
bar, print a summary. The same run directory the studio reads."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from engine.launch import start_engine
from engine.rundir import TERMINAL_STATES, EventTail, History, RunDir, read_history


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def train(rd: RunDir, resume: bool = False, console: Console | None = None) -> int:
    console = console or Console(stderr=False)
    cfg = rd.read_config()
    if resume:
        if rd.engine_alive():
            console.print(f"[yellow]{rd.name} is already training (pid {rd.engine_pid()}); "
                          f"`genstudio attach {rd.name}` watches it[/]")
            return 2
        done = read_history(rd)
        if done.state == "finished":
            console.print(f"{rd.name} already finished all {done.step:,} steps; for more, start a new run "
                          f"with `genstudio train {cfg['recipe']} --steps N`")
            return 2
        if not rd.checkpoint_path.exists():
            console.print(f"[red]{rd.name} has no checkpoint to resume from[/]; start a new run with "
                          f"`genstudio train {cfg['recipe']}`")
            return 2
    total = int(cfg["params"].get("steps", 0))
    tail = EventTail(rd.events_path)
    hist = History()
    for ev in tail.read_new():  # earlier history, when resuming
        hist.apply(ev)
    console.print(f"[bold]genstudio[/] training [cyan]{cfg['recipe']}[/] -> {rd.path}")
    proc = start_engine(rd.path, nproc=int(cfg.get("nproc", 1)))
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"), console=console, transient=False,
    )
    stopping = False
    seen_terminal = False
    with progress:
        task = progress.add_task("starting", total=total, completed=hist.step, rate="", info="")
        while True:
            try:
                for ev in tail.read_new():
                    hist.apply(ev)
                    if ev.type == "log":
                        progress.console.print(f"[dim]{ev.payload.get('message', '')}[/]")
                    elif ev.type == "error":
                        progress.console.print(f"[red]error:[/] {ev.payload.get('message')}\n"
                                               f"[yellow]what to try:[/] {ev.payload.get('hint')}")
                    if ev.type == "state" and ev.payload.get("state") in TERMINAL_STATES:
                        seen_terminal = True
                loss = hist.metrics.get("train/loss")
                info = f"loss {loss[-1][1]:.4g}" if loss else ""
                rate = hist.status.get("steps_per_s")
                progress.update(task, completed=hist.step, description=hist.state,
                                rate=f"{rate:,.1f} it/s" if rate else "", info=info)
                if seen_terminal or proc.poll() is not None:
                    break
                time.sleep(0.1)
            except KeyboardInterrupt:
                if stopping:  # a second Ctrl-C: stop waiting; the engine still saves and exits
                    break
                stopping = True
                rd.send("stop")
                progress.console.print("[yellow]stopping: saving a checkpoint (Ctrl-C again to stop waiting)[/]")
    code = proc.wait() if seen_terminal or proc.poll() is not None else None
    for ev in tail.read_new():
        hist.apply(ev)
    if code not in (0, None) and hist.state not in TERMINAL_STATES:
        console.print(f"[red]the engine process died (exit {code}) without saying why[/]; its log: {rd.log_path}")
        tail_log = rd.log_path.read_text(errors="replace").strip().splitlines()[-8:] if rd.log_path.exists() else []
        for line in tail_log:
            console.print(f"  [dim]{line}[/]")
        return 1
    console.print(summary_table(rd, hist))
    if hist.state == "failed":
        return 1
    if hist.state == "stopped":
        console.print(f"stopped at step {hist.step:,}; continue with `genstudio resume {rd.name}`")
    return 0


def summary_table(rd: RunDir, hist: History) -> Table:
    table = Table(title=f"run {rd.name}: {hist.state}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("steps", f"{hist.step:,}")
    table.add_row("device", hist.device or "?")
    if hist.status:
        table.add_row("training time", fmt_duration(hist.status.get("elapsed", 0)))
    for key in sorted(hist.metrics, key=lambda k: (k.split("/")[0] != "train", k.split("/")[0] != "val", k)):
        table.add_row(key, f"{hist.metrics[key][-1][1]:.4g}")
    for name, rel in hist.samples.items():
        if rel.endswith(".png"):
            table.add_row(name, str(rd.path / rel))
    if rd.checkpoint_path.exists():
        table.add_row("checkpoint", str(rd.checkpoint_path))
    for err in hist.errors:
        table.add_row("[red]error[/]", f"{err.get('message')}\n{err.get('hint', '')}")
    return table
