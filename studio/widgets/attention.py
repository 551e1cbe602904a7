"""The attention viewer: a layer's (and a head's, or the mean over heads) attention weights
as a heatmap, the query tokens down the side and the tokens they attend to along the top.

It reads the "attention" entry of a data artifact: {"rows": [tokens], "cols": [tokens],
"maps": [layer][head][row][col], "title": str}. The GPT writes self-attention over a text
(rows = cols); the translator writes cross-attention (rows = French output words, cols =
English source words)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Select, Static

from studio.widgets.view import ArtifactUpdate, View, placeholder

MEAN = -1  # the head picker's value for the mean over heads
MAX_LABEL = 10  # characters of a word label shown
MIN_SQUARE_COLS = 20  # tokens that must fit before cells are drawn square
MAX_CELL = 4  # widest cell, in characters (short sentences)
# Dark blue (0) -> teal -> yellow (1): light cells are strong attention on any background.
STOPS = [(0.0, (20, 24, 48)), (0.25, (40, 70, 140)), (0.5, (30, 140, 140)), (0.75, (120, 200, 90)), (1.0, (250, 230, 80))]
SHOW_PIECE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def show_piece(token: str) -> str:
    """A token as it can be drawn in one cell row: spaces and line breaks made visible."""
    if token in SHOW_PIECE:
        return SHOW_PIECE[token]
    if token.strip() == "" and token:
        return "␣" * min(len(token), 3)
    return token.replace("\n", "⏎")


def colour(w: float) -> str:
    """Weight 0..1 -> an RGB hex. The square root spreads small weights, which are most of a
    row when it attends to many tokens, over more of the scale."""
    x = max(0.0, min(1.0, w)) ** 0.5
    for (x0, c0), (x1, c1) in zip(STOPS, STOPS[1:]):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            r, g, b = (round(a + (b_ - a) * t) for a, b_ in zip(c0, c1))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#%02x%02x%02x" % STOPS[-1][1]


def select_map(maps: list, layer: int, head: int) -> list[list[float]]:
    """One layer's map for one head, or the mean over its heads (head == MEAN)."""
    heads = maps[layer]
    if head != MEAN:
        return heads[head]
    n = len(heads)
    return [[sum(h[i][j] for h in heads) / n for j in range(len(heads[0][i]))] for i in range(len(heads[0]))]


def heatmap_fit(rows: list[str], cols: list[str], width: int, square: bool = True) -> tuple[int, int, int]:
    """How a heatmap fits ``width``: (label width, cell width, columns that fit).

    Two characters per cell draw squares (a character is twice as tall as wide); a few
    tokens get wider cells, and one character is the fallback when two would leave too
    few tokens to read a pattern."""
    label_w = max((len(show_piece(t)[:MAX_LABEL]) for t in rows), default=1)
    room = width - label_w - 1
    cell = min(MAX_CELL, room // max(1, len(cols))) if room >= 2 * len(cols) else (
        2 if square and room // 2 >= MIN_SQUARE_COLS else 1)
    return label_w, cell, max(1, room // cell)


def heatmap_text(matrix: list[list[float]], rows: list[str], cols: list[str], width: int,
                 paint: Callable[[float], str] = colour, square: bool = True, start: int | None = None) -> Text:
    """The heatmap as text: a header of column labels (written downwards when they are
    longer than a cell), then one line per row: its label and a cell per column, coloured
    by ``paint`` (a value -> an RGB hex). When the columns do not all fit ``width``, those
    from ``start`` on are drawn (self-attention: the same tokens down the side); with no
    ``start``, the last ones (the newest tokens) and a note of how many are left out.
    ``square=False`` fits more of them in one-character cells rather than draw square ones."""
    label_w, cell, fit = heatmap_fit(rows, cols, width, square)
    first_c = max(0, len(cols) - fit) if start is None else max(0, min(start, len(cols) - fit))
    last_c = first_c + fit
    labels_c = [show_piece(t)[:MAX_LABEL] for t in cols[first_c:last_c]]
    if rows == cols:  # self-attention: the same tokens down the side
        labels_r, matrix = labels_c, [row[first_c:last_c] for row in matrix[first_c:last_c]]
    else:
        labels_r, matrix = [show_piece(t)[:MAX_LABEL] for t in rows], [row[first_c:last_c] for row in matrix]
    out = Text(no_wrap=True, overflow="crop")
    depth = max((len(s) for s in labels_c), default=1)
    for k in range(depth):  # column labels, read top to bottom
        out.append(" " * (label_w + 1))
        for s in labels_c:
            out.append((s[k] if k < len(s) else " ").ljust(cell), style="bold")
        out.append("\n")
    for label, row in zip(labels_r, matrix):
        out.append(label.rjust(label_w) + " ", style="bold")
        for w in row:
            out.append(" " * cell, style=f"on {paint(w)}")
        out.append("\n")
    if first_c and start is None:
        out.append(f"(the first {first_c} tokens are left out to fit; a wider terminal shows them)", style="dim")
    return out


def legend(paint: Callable[[float], str] = colour, low: float = 0.0, high: float = 1.0, name: str = "weight") -> Text:
    """A colour scale from ``low`` to ``high`` in nine swatches."""
    out = Text(f"{name} {low:g} ", style="dim")
    for i in range(9):
        out.append("  ", style=f"on {paint(low + (high - low) * i / 8)}")
    out.append(f" {high:g}", style="dim")
    return out


class AttentionView(View, Vertical):
    """Pickers for layer and head above the heatmap. When the tokens do not all fit the
    width, a window of them is drawn (at first the newest), the line above says which, and
    ←/→ (or [ and ]) move it half a window, Home/End to either end."""

    DEFAULT_CSS = """
    AttentionView { padding: 0 1; }
    AttentionView .attn-pickers { height: 1; margin: 1 0 0 0; }
    AttentionView .attn-pickers Label { padding: 0 1 0 0; text-style: bold; }
    AttentionView .attn-pickers Select { width: 12; margin: 0 2 0 0; }
    AttentionView #attn-help { height: auto; color: $text-muted; }
    AttentionView #attn-scroll { height: 1fr; }
    """
    BINDINGS = [
        Binding("left,left_square_bracket", "shift(-1)", "Earlier tokens", show=False),
        Binding("right,right_square_bracket", "shift(1)", "Later tokens", show=False),
        Binding("home", "shift_to(0)", "First tokens", show=False),
        Binding("end", "shift_to(-1)", "Newest tokens", show=False),
    ]
    can_focus = True

    def __init__(self, title: str = "attention", placeholder: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.map_title = title
        self.placeholder = placeholder
        self.pane_placeholder = ""  # the pane's own, with {start} (follow fills it in)
        self.data: dict | None = None
        self.path: str | None = None
        self.pick_layer, self.pick_head = 0, MEAN
        self._options: dict[str, list] = {}  # the values each picker offers now
        self.start: int | None = None  # the first token drawn (None: the newest that fit)
        self.window: tuple[int, int, int] = (0, 0, 0)  # (first, last, of) the tokens drawn now

    def compose(self) -> ComposeResult:
        with Horizontal(classes="attn-pickers"):
            yield Label("layer")
            yield Select([("1", 0)], value=0, allow_blank=False, id="attn-layer",
                         tooltip="which block's attention to show (1 is nearest the input)", compact=True)
            yield Label("head")
            yield Select([("mean", MEAN)], value=MEAN, allow_blank=False, id="attn-head",
                         tooltip="one head, or the mean of all heads of the layer", compact=True)
        yield Static(self.placeholder, id="attn-help", markup=False)
        with VerticalScroll(id="attn-scroll"):
            yield Static("", id="attn-map")

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> AttentionView:
        view = cls(pane.title, placeholder(pane.placeholder), id=pane.id)
        view.pane_placeholder = pane.placeholder
        return view

    def follow(self, snapshot) -> None:
        """Until a map arrives: while a run is starting, that it is coming, not how to start one."""
        if self.data is None and self.pane_placeholder:
            text = placeholder(self.pane_placeholder, snapshot.state)
            if text != self.placeholder:
                self.placeholder = text
                self.query_one("#attn-help", Static).update(text)

    def load(self, update: ArtifactUpdate) -> None:
        path = update.path
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return  # written while we read: the next snapshot tries again
        if not isinstance(data, dict):
            return
        att = data.get("attention", data)
        if not isinstance(att, dict) or not att.get("maps"):
            return  # an error reply, or an answer without maps
        if self.data is None or att.get("cols") != self.data.get("cols"):
            self.start = None  # another text: its newest tokens first
        self.path, self.data = path, att
        layers, heads = len(att["maps"]), len(att["maps"][0])
        self._set_options("#attn-layer", [(str(i + 1), i) for i in range(layers)], min(self.pick_layer, layers - 1))
        self._set_options("#attn-head", [("mean", MEAN)] + [(str(i + 1), i) for i in range(heads)],
                          self.pick_head if self.pick_head < heads else MEAN)
        self.draw()

    def _set_options(self, selector: str, options: list, value: int) -> None:
        select = self.query_one(selector, Select)
        with select.prevent(Select.Changed):
            if self._options.get(selector) != options:
                self._options[selector] = options
                select.set_options(options)
            select.value = value

    @on(Select.Changed)
    def picked(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is Select.BLANK:
            return
        if event.select.id == "attn-layer":
            self.pick_layer = int(event.value)
        else:
            self.pick_head = int(event.value)
        self.draw()

    def focus_input(self) -> bool:
        self.focus()  # ←/→ move along the tokens at once; the studio's letter keys still work
        return True

    def action_shift(self, direction: int) -> None:
        first, last, total = self.window
        if not self.data or last - first >= total:
            return
        step = max(1, (last - first) // 2)
        self.start = max(0, min(total - (last - first), first + direction * step))
        self.draw()

    def action_shift_to(self, where: int) -> None:
        if self.data:
            self.start = None if where < 0 else 0
            self.draw()

    def on_resize(self) -> None:
        self.draw()

    def on_show(self) -> None:
        self.draw()  # drawn while its tab was hidden, it had no width to fit

    def draw(self) -> None:
        if not self.data:
            return
        att = self.data
        matrix = select_map(att["maps"], self.pick_layer, self.pick_head)
        who = "mean of the heads" if self.pick_head == MEAN else f"head {self.pick_head + 1}"
        width = self.content_size.width - 1
        if width < 8:
            return  # not laid out yet (a hidden tab); on_show draws it
        cols = att["cols"]
        fit = heatmap_fit(att["rows"], cols, width)[2]
        first = max(0, len(cols) - fit) if self.start is None else max(0, min(self.start, len(cols) - fit))
        self.window = (first, min(len(cols), first + fit), len(cols))
        if fit < len(cols):
            shown = Text.assemble((f"Tokens {first + 1}-{self.window[1]} of {len(cols)}", "bold"),
                                  " (←/→ move along them, Home/End: first/newest). ")
        else:
            shown = Text(f"All {len(cols)} tokens. ")
        self.query_one("#attn-help", Static).update(Text.assemble(
            (f"{att.get('title', self.map_title)}, layer {self.pick_layer + 1}, {who}. ", "bold"), shown,
            "Each row is a token; its cells show how much it attends to each token along the top.\n",
            legend()))
        self.query_one("#attn-map", Static).update(heatmap_text(matrix, att["rows"], cols, width, start=first))
