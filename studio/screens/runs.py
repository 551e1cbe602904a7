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
from studio.runs_table import COLUMNS, cells, fit_columns


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_run", "Open", tooltip="Open the run in its lesson"),
        Binding("u", "continue_run", "Continue", tooltip="Continue a stopped run from its last checkpoint"),
        Binding("space", "mark", "Mark", tooltip="Mark or unmark the run for comparing"),
        Binding("c", "compare", "Compare", tooltip="Compare the marked runs: settings, curves, samples"),
        Binding("f5", "reload", "Refresh"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("GenStudio", "bold"), "  ›  runs (newest first)"), id="title-bar")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-help")
        yield Footer()

    def on_mount(self) -> None:
        self._shown: list[int] = []  # which of COLUMNS the table has now
        self.marked: list[str] = []  # run folders marked for comparing, in the order marked
        self.action_reload()
        self.query_one(DataTable).focus()

    def on_resize(self) -> None:
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        """Read the runs again and show them with the columns that fit: run names are
        never cut (attach, stop and resume take them), so narrow screens leave out the
        columns the name already tells (date, recipe)."""
        table = self.query_one(DataTable)
        runs = list_summaries()
        rows = [cells(run) for run in runs]
        shown = fit_columns(rows, (self.size.width or self.app.size.width) - 2)
        cursor = table.cursor_row
        table.clear(columns=shown != self._shown)
        if shown != self._shown:
            self._shown = shown
            table.add_columns(*(COLUMNS[i] for i in shown))
        for run, row in zip(runs, rows):
            table.add_row(*(row[i] for i in shown), key=str(run.path),
                          label=Text("✓", style="bold green") if str(run.path) in self.marked else " ")
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        n = table.row_count
        help_text = (f"{n} run{'s' if n != 1 else ''}. Enter opens one in its lesson; u continues a stopped one; "
                     "space marks runs of one lesson and c compares them.")
        if len(help_text) > (self.size.width or self.app.size.width) - 2:  # one line: the short form
            help_text = f"{n} run{'s' if n != 1 else ''}. Enter: open · u: continue · space: mark · c: compare"
        self.query_one("#runs-help", Static).update(
            help_text if n else "No runs yet. Open a lesson and press s, or run `genstudio train vae`.")

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

    def action_mark(self) -> None:
        rd = self._selected()
        if rd is None:
            return
        key = str(rd.path)
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        table = self.query_one(DataTable)
        row = table.cursor_row
        self.action_reload()
        table.move_cursor(row=min(row + 1, table.row_count - 1))  # on to the next run, as file managers do

    def action_compare(self) -> None:
        from studio.screens.compare import CompareScreen, load_runs

        _, problem = load_runs(self.marked)
        if problem:
            self.notify(problem, severity="warning")
            return
        self.app.push_screen(CompareScreen(self.marked))

    def action_continue_run(self) -> None:
        rd = self._selected()
        if rd is None:
            return
        run = summarise(rd)
        if run.state not in CONTINUABLE or not run.has_checkpoint:
            self.notify("Only a stopped, interrupted or failed run with a checkpoint can continue.", severity="warning")
            return
        self.action_open_run(resume=True)
