"""The runs table: the same rows for `genstudio runs` and the studio's runs screen, from
:func:`engine.runs.list_summaries`."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from engine.runs import RunSummary, list_summaries

COLUMNS = ("run", "recipe", "state", "step", "val/loss", "quality", "created")
STATE_STYLE = {"finished": "blue", "running": "green", "paused": "yellow", "stopped": "magenta",
               "failed": "red", "interrupted": "red", "damaged": "red"}


def cells(run: RunSummary) -> tuple:
    """One run's cells, in the order of COLUMNS."""
    if run.problem:
        return (run.name, "?", Text(f"damaged: {run.problem}", style="red"), "", "", "", "")
    return (run.name, run.recipe, Text(run.state, style=STATE_STYLE.get(run.state, "")), run.steps_text,
            f"{run.val_loss:.4g}" if run.val_loss is not None else "",
            f"{run.quality:.2f}" if run.quality is not None else "", run.created_text)


def runs_table(runs: list[RunSummary] | None = None) -> Table:
    """A rich table of the runs; run names are never cut (they are what attach and stop take)."""
    runs = list_summaries() if runs is None else runs
    table = Table(title="GenStudio runs (newest first)", title_justify="left")
    longest = max((len(r.name) for r in runs), default=3)
    for col in COLUMNS:
        if col == "run":
            table.add_column(col, no_wrap=True, min_width=longest)
        else:
            table.add_column(col)
    for run in runs:
        table.add_row(*cells(run))
    if not table.row_count:
        table.caption = "no runs yet: `genstudio train vae` or press s in a lesson"
    return table
