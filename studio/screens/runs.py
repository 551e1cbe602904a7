"""Earlier runs: see how each ended, open one in its lesson, continue a stopped one."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine.rundir import RunDir
from engine.runs import CONTINUABLE, list_summaries, summarise
from studio.lessons import lesson_for_recipe
from studio.runs_table import COLUMNS, cells


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_run", "Open", tooltip="Open the run in its lesson"),
        Binding("u", "continue_run", "Continue", tooltip="Continue a stopped run from its last checkpoint"),
        Binding("f5", "reload", "Refresh"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("GenStudio", "bold"), "  ›  runs (newest first)"), id="title-bar")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-help")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        self.action_reload()
        table.focus()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for run in list_summaries():
            table.add_row(*cells(run), key=str(run.path))
        n = table.row_count
        self.query_one("#runs-help", Static).update(
            f"{n} run{'s' if n != 1 else ''}. Enter opens a run in its lesson; u continues a stopped or interrupted one."
            if n else "No runs yet. Open a lesson and press s, or run `genstudio train vae`.")

    def _selected(self) -> RunDir | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return RunDir(key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self, resume: bool = False) -> None:
        rd = self._selected()
        if rd is None:
            return
        try:
            cfg = rd.read_config()
        except Exception as e:
            self.notify(str(e), severity="error")
            return
        lesson = lesson_for_recipe(cfg["recipe"])
        if lesson is None:
            self.notify(f"No lesson for recipe {cfg['recipe']!r} in this version.", severity="error")
            return
        self.app.open_lesson(cfg.get("lesson") or lesson.id, attach=str(rd.path), resume=resume)

    def action_continue_run(self) -> None:
        rd = self._selected()
        if rd is None:
            return
        run = summarise(rd)
        if run.state not in CONTINUABLE or not run.has_checkpoint:
            self.notify("Only a stopped, interrupted or failed run with a checkpoint can continue.", severity="warning")
            return
        self.action_open_run(resume=True)
