"""The hidden-state view: what a recurrent model holds in memory while it reads a text.

The learner types a text; the engine reads it and answers with every layer's hidden state
after every token ({"tokens", "layers": [layer][unit][token] in -1..1, "tracked": [per
layer: the unit that follows a feature of the text best, and whether closely enough to
name it], "request"}). The heatmap has a row per unit and a column per token read, blue
for negative and orange for positive; the tracked unit's row comes first, the others by
how much they change over the text. The drawing is the attention viewer's heatmap."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from studio.messages import AskEngine
from studio.widgets.attention import heatmap_text, legend
from studio.widgets.sampler import read_json
from studio.widgets.view import ArtifactUpdate, View, leave_box, placeholder

NEGATIVE, ZERO, POSITIVE = (70, 140, 255), (24, 24, 32), (255, 140, 40)
MARK = "▶"  # before the tracked unit's number


def signed_colour(v: float) -> str:
    """-1 blue, 0 near black, +1 orange. The magnitude is raised to 0.7 so that middling
    activations (most of them) are visible, not lost beside the saturated ones."""
    x = max(-1.0, min(1.0, v))
    end = POSITIVE if x >= 0 else NEGATIVE
    t = abs(x) ** 0.7
    r, g, b = (round(z + (e - z) * t) for z, e in zip(ZERO, end))
    return f"#{r:02x}{g:02x}{b:02x}"


def unit_order(units: list[list[float]], first: int | None) -> list[int]:
    """Units by how much they change over the text (standard deviation), most first, with
    ``first`` (the tracked unit) at the top."""
    def spread(row: list[float]) -> float:
        m = sum(row) / max(1, len(row))
        return sum((v - m) ** 2 for v in row) / max(1, len(row))

    order = sorted(range(len(units)), key=lambda u: -spread(units[u]))
    if first is not None and 0 <= first < len(units):
        order.remove(first)
        order.insert(0, first)
    return order


def tracked_text(tracked: dict | None, layer: int) -> Text:
    """One line on the unit that follows a feature of the text, or an honest none."""
    if not isinstance(tracked, dict) or "unit" not in tracked:
        return Text("")
    n = tracked.get("tokens", 0)
    where = f"over {n:,} held-out tokens" if n else "over held-out text"
    r = float(tracked.get("r", 0.0))
    if tracked.get("found"):
        sign = "higher" if r > 0 else "lower"
        return Text.assemble(
            (f"{MARK}{tracked['unit']}", "bold"), (" tracks ", ""), (str(tracked.get("label")), "bold"),
            (f": r = {r:+.2f} {where} (it runs {sign} there). Its row is first.", ""))
    best = ", ".join(f"{name} {v[1]:+.2f} (unit {v[0]})" for name, v in (tracked.get("best") or {}).items())
    return Text.assemble(
        (f"No unit of layer {layer + 1} tracks quotes, brackets, line position or indentation yet ", ""),
        (f"(|r| ≥ {tracked.get('threshold', 0.5):g} {where}); the closest: {best}.", "dim"))


class HiddenStateView(View, Vertical):
    """A text box and a layer picker above the heatmap of the hidden state."""

    DEFAULT_CSS = """
    HiddenStateView { padding: 0 1; }
    HiddenStateView .hs-ask { height: 1; margin: 1 0 0 0; }
    HiddenStateView .hs-ask Label { padding: 0 1 0 0; text-style: bold; }
    HiddenStateView .hs-ask Label.second { padding: 0 1 0 2; }
    HiddenStateView #hs-text { width: 1fr; }
    HiddenStateView .hs-ask Select { width: 10; }
    HiddenStateView #hs-help { height: auto; color: $text-muted; }
    HiddenStateView #hs-tracked { height: auto; }
    HiddenStateView #hs-cols { height: auto; }
    HiddenStateView #hs-scroll { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "leave_box", "Leave the box", tooltip="Stop typing: the studio's keys work again"),
        Binding("down", "scroll_map(1)", "Scroll down", show=False),
        Binding("up", "scroll_map(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_map(10)", "Page down", show=False),
        Binding("pageup", "scroll_map(-10)", "Page up", show=False),
    ]
    can_focus = True

    def __init__(self, artifact: str = "hidden", placeholder: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.artifact = artifact
        self.placeholder = placeholder
        self.data: dict | None = None
        self.pick_layer = 0
        self.request = 0  # numbers the texts sent; older answers are ignored
        self._layers: int = 1

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> HiddenStateView:
        return cls(pane.artifact, placeholder(pane.placeholder), id=pane.id)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="hs-ask"):
            yield Label("read")
            yield Input(placeholder='type a text, then Enter (\\n: new line)', id="hs-text",
                        compact=True)
            yield Label("layer", classes="second")
            yield Select([("1", 0)], value=0, allow_blank=False, id="hs-layer", compact=True,
                         tooltip="which layer's hidden state to show (1 reads the characters)")
        yield Static(self.placeholder, id="hs-help", markup=False)
        yield Static("", id="hs-tracked")
        yield Static("", id="hs-cols")  # the tokens along the top: stays put while the units scroll
        with VerticalScroll(id="hs-scroll"):
            yield Static("", id="hs-map")

    def focus_input(self) -> bool:
        self.query_one("#hs-text", Input).focus()
        return True

    def action_leave_box(self) -> None:
        leave_box(self)  # the view itself: ↑/↓ now scroll the units, and the studio's keys work

    def action_scroll_map(self, rows: int) -> None:
        self.query_one("#hs-scroll", VerticalScroll).scroll_relative(y=rows, animate=False)

    @on(Input.Submitted, "#hs-text")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.request += 1
        self._status(Text("reading …", style="dim"))
        self.ask_engine(AskEngine("read", self.artifact, {"text": event.value, "request": self.request}, {},
                                    "read the text"))

    @on(Select.Changed, "#hs-layer")
    def picked(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.BLANK:
            self.pick_layer = int(event.value)
            self.draw()

    def _status(self, text: Text) -> None:
        self.query_one("#hs-help", Static).update(text)

    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if data is None:
            return
        if not isinstance(data.get("request", 0), int) or data.get("request", 0) < self.request:
            return  # an answer to an earlier text
        if "error" in data:
            self._status(Text(str(data["error"]), style="bold red"))
            return
        layers, tokens = data.get("layers"), data.get("tokens")
        if not (isinstance(layers, list) and layers and isinstance(tokens, list)
                and all(isinstance(units, list) and units and all(isinstance(u, list) and len(u) == len(tokens)
                                                                  for u in units) for units in layers)):
            return  # not an answer this view can draw
        self.data = data
        if len(layers) != self._layers:
            self._layers = len(layers)
            self.pick_layer = min(self.pick_layer, len(layers) - 1)
            select = self.query_one("#hs-layer", Select)
            with select.prevent(Select.Changed):
                select.set_options([(str(i + 1), i) for i in range(len(layers))])
                select.value = self.pick_layer
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def on_show(self) -> None:
        self.draw()  # drawn while its tab was hidden, it had no width to fit

    def draw(self) -> None:
        data = self.data
        if not data:
            return
        units = data["layers"][self.pick_layer]
        tracked = (data.get("tracked") or [None] * len(data["layers"]))[self.pick_layer]
        found = isinstance(tracked, dict) and tracked.get("found")
        order = unit_order(units, tracked.get("unit") if found else None)
        # Every label keeps room for the mark, so the columns stay put whether or not a
        # tracking unit was found in the newest reading.
        labels = [(MARK if found and i == 0 else " " * len(MARK)) + str(u) for i, u in enumerate(order)]
        self._status(Text.assemble(
            (f"Layer {self.pick_layer + 1}: {len(units)} hidden units (rows, most changing first) after each token "
             "read (columns). ", "bold"), "Esc, then ↑/↓ or PgUp/PgDn scroll the units.\n",
            legend(signed_colour, -1.0, 1.0, "h")))
        self.query_one("#hs-tracked", Static).update(tracked_text(tracked, self.pick_layer))
        width = self.content_size.width - 1
        if width < 8:
            return  # not laid out yet (a hidden tab); on_show draws it
        lines = heatmap_text([units[u] for u in order], labels, data["tokens"], width, paint=signed_colour,
                             square=False).split("\n", allow_blank=True)
        # The heatmap's text is: a header of token labels, a line per unit, then a note (or
        # nothing) saying how many tokens were left out to fit.
        depth = len(lines) - len(order) - 1
        header, rows, note = lines[:depth], lines[depth:-1], lines[-1]
        self.query_one("#hs-cols", Static).update(Text("\n").join(header + ([note] if note.plain else [])))
        self.query_one("#hs-map", Static).update(Text("\n").join(rows))
