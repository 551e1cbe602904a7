"""The Model tab: the network that trains, as a table of layers indented by depth, with
each one's output shape (from the first training step) and parameter count. Enter on a
layer opens the code that defines it in the Code tab."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from studio.lessons import CODE_LINK
from studio.messages import OpenCode
from studio.widgets.sampler import read_json
from studio.widgets.view import ArtifactUpdate, View, placeholder

HINT = "↑/↓ choose a layer · Enter opens its code · output shapes from the first training step (batch first)"
COLUMNS = ("layer", "type", "output shape", "parameters")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def clean_rows(data: dict | None) -> list[dict] | None:
    """The summary's rows, each field in its documented type (a damaged file: None; a
    malformed row: skipped)."""
    if data is None or not isinstance(data.get("rows"), list):
        return None
    rows = []
    for row in data["rows"]:
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            continue
        text = {k: row.get(k) if isinstance(row.get(k), str) else "" for k in ("type", "shape", "code")}
        code = text["code"] if CODE_LINK.match(text["code"]) else ""
        rows.append({"depth": min(_int(row.get("depth")), 12), "name": row["name"], "type": text["type"],
                     "shape": text["shape"], "params": _int(row.get("params")), "code": code})
    return rows


class ModelView(View, Vertical):
    DEFAULT_CSS = """
    ModelView { height: 1fr; }
    ModelView > #model-caption { height: auto; padding: 0 1; color: $text-muted; }
    ModelView > DataTable { height: 1fr; }
    """

    def __init__(self, placeholder_text: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.pane_placeholder = placeholder_text
        self.rows: list[dict] = []

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> ModelView:
        return cls(pane.placeholder, id=pane.id)

    def compose(self) -> ComposeResult:
        yield Static(Text(placeholder(self.pane_placeholder), style="dim"), id="model-caption")
        table = DataTable(cursor_type="row", zebra_stripes=True, id="model-table")
        table.add_columns(*COLUMNS)
        yield table

    def follow(self, snapshot) -> None:
        if not self.rows:
            self.query_one("#model-caption", Static).update(
                Text(placeholder(self.pane_placeholder, snapshot.state), style="dim"))

    def focus_input(self) -> bool:
        if not self.rows:
            return False
        self.query_one(DataTable).focus()  # arrows move along the layers, Enter opens the code
        return True

    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        rows = clean_rows(data)
        if not rows:
            return
        self.rows = rows
        total = _int(data.get("total"))
        trainable = _int(data.get("trainable"))
        frozen = f" ({total - trainable:,} frozen)" if trainable < total else ""
        self.query_one("#model-caption", Static).update(Text.assemble(
            (f"{total:,} parameters{frozen}", "bold"), "  ·  ", HINT))
        table = self.query_one(DataTable)
        table.clear()
        for i, row in enumerate(rows):
            top = row["depth"] == 0
            name = Text("  " * row["depth"] + row["name"], style="bold" if top else "")
            table.add_row(name, Text(row["type"], style="cyan" if row["code"] else ""),
                          row["shape"] or Text("not called in training", style="dim"),
                          Text(f"{row['params']:,}", style="bold" if top else ""), key=str(i))

    @on(DataTable.RowSelected)
    def open_code(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.rows[int(event.row_key.value)]
        if row["code"]:
            self.post_message(OpenCode(row["code"]))
        else:
            self.notify(f"{row['name']} is a PyTorch class; its code is in torch, not in GenStudio",
                        severity="information")
