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


NARROW_DROPS = ("created", "recipe", "quality")  # left out first on a narrow screen (the run name holds date and recipe)


def fit_columns(rows: list[tuple], width: int, padding: int = 2) -> list[int]:
    """Which of COLUMNS to show in ``width`` cells (each column takes ``padding`` more than its
    widest cell): every one when they fit, else without those in NARROW_DROPS, one at a time.
    The run name is never dropped, and its column is as wide as the longest name."""
    def cell_width(cell) -> int:
        return cell.cell_len if isinstance(cell, Text) else len(str(cell))

    widths = [max([len(col)] + [cell_width(r[i]) for r in rows]) + padding for i, col in enumerate(COLUMNS)]
    shown = list(range(len(COLUMNS)))
    for name in NARROW_DROPS:
        if sum(widths[i] for i in shown) <= width:
            break
        shown.remove(COLUMNS.index(name))
    return shown


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
