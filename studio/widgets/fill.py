"""Fill in the blanks: the masked language model's panel.

The learner types a sentence with blanks (``_`` or [MASK]) and presses Enter; the engine
answers the request ``fill`` with each blank's most likely words, twice: reading the whole
sentence, and with the words to the blank's right hidden (what a left-to-right model such
as the GPT could know there). The sentence comes back with the top guesses in place, and
below it, per blank, the two lists of candidates side by side as probability bars."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Static

from studio.messages import AskEngine
from studio.widgets.sampler import read_json
from studio.widgets.view import ArtifactUpdate, View, leave_box, placeholder

SHOWN = 5  # candidates per list
HELP = ("Each blank: the model's guesses reading both sides, beside its guesses with the words to the "
        "right hidden (all a left-to-right GPT could use). Esc leaves the box; ↑/↓ scroll.")


def candidate_bars(candidates: list, width: int, colour: str) -> list[Text]:
    """One line per candidate: the word, a bar as long as its probability (``width``
    characters at 100%), and the probability. Malformed entries are skipped."""
    rows = [(str(c[0]), float(c[1])) for c in candidates
            if isinstance(c, list) and len(c) == 2 and isinstance(c[1], (int, float))]
    pad = min(12, max((len(w) for w, _ in rows), default=1))
    lines = []
    for k, (word, p) in enumerate(rows):
        n = max(0, min(width, round(width * p)))
        lines.append(Text.assemble((f"{word[:pad].ljust(pad)} ", "bold" if k == 0 else ""), ("█" * n, colour),
                                   ("·" * (width - n), "dim"), f" {p:5.1%}"))
    return lines


def side_by_side(left: list[Text], right: list[Text], column: int) -> Text:
    """Two columns of lines, each cut or padded to ``column`` characters."""
    out = Text()
    for i in range(max(len(left), len(right))):
        a = left[i].copy() if i < len(left) else Text()
        a.truncate(column, overflow="ellipsis", pad=True)
        b = right[i].copy() if i < len(right) else Text()
        b.truncate(column, overflow="ellipsis")
        out.append_text(a)
        out.append("  ")
        out.append_text(b)
        out.append("\n")
    return out


class FillPanel(View, Vertical):
    """The sentence box above; the sentence with its blanks filled and the candidates below."""

    DEFAULT_CSS = """
    FillPanel { padding: 0 1; }
    FillPanel .fill-ask { height: 1; margin: 1 0 0 0; }
    FillPanel .fill-ask Label { padding: 0 1 0 0; text-style: bold; }
    FillPanel #fill-text { width: 1fr; }
    FillPanel #fill-status { height: auto; color: $text-muted; }
    FillPanel #fill-out { height: 1fr; }
    FillPanel #fill-sentence { height: auto; margin: 1 0 0 0; }
    FillPanel #fill-blanks { height: auto; }
    """
    BINDINGS = [
        Binding("escape", "leave_box", "Leave the box", tooltip="Stop typing: the studio's keys work again"),
        Binding("down", "scroll_out(1)", "Scroll down", show=False),
        Binding("up", "scroll_out(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_out(8)", "Page down", show=False),
        Binding("pageup", "scroll_out(-8)", "Page up", show=False),
    ]
    can_focus = True

    def __init__(self, artifact: str = "fill", placeholder: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.artifact = artifact
        self.placeholder = placeholder
        self.data: dict | None = None
        self.request = 0  # numbers the sentences sent; older answers are ignored

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> FillPanel:
        return cls(pane.artifact, placeholder(pane.placeholder), id=pane.id)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="fill-ask"):
            yield Label("fill")
            yield Input(placeholder="a sentence with _ for each missing word, then Enter", id="fill-text",
                        compact=True)
        yield Static(Text(HELP, style="dim"), id="fill-status")
        with VerticalScroll(id="fill-out"):
            yield Static(Text(self.placeholder, style="dim"), id="fill-sentence")
            yield Static("", id="fill-blanks")

    def focus_input(self) -> bool:
        self.query_one("#fill-text", Input).focus()
        return True

    def action_leave_box(self) -> None:
        leave_box(self)  # the panel itself: ↑/↓ scroll the blanks, the studio's keys work

    def action_scroll_out(self, lines: int) -> None:
        out = self.query_one("#fill-out", VerticalScroll)
        out.scroll_to(y=out.scroll_y + lines, animate=False)

    @on(Input.Submitted, "#fill-text")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.request += 1
        self._status("filling in …")
        self.ask_engine(AskEngine("fill", self.artifact, {"text": event.value, "request": self.request}, {},
                                    "fill in the blanks"))

    def refused(self, message: str) -> None:
        self._status(message, error=True)

    def _status(self, message: str, error: bool = False) -> None:
        self.query_one("#fill-status", Static).update(Text(message, style="bold red" if error else "dim"))

    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if data is None:
            return
        request = data.get("request", 0)
        if not isinstance(request, int) or request < self.request:
            return  # the answer to an earlier sentence
        if "error" in data:
            self._status(str(data["error"]), error=True)
            return
        if not isinstance(data.get("tokens"), list) or not isinstance(data.get("blanks"), list):
            return  # not an answer this panel can draw
        if self.data is None or request > self.data.get("request", 0):
            self._status(HELP)
        self.data = {**data, "step": update.step}
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        data = self.data
        if not data:
            return
        blanks = [b for b in data["blanks"] if isinstance(b, dict)]
        first = {b.get("at"): k for k, b in enumerate(blanks)}
        sentence = Text()
        for i, token in enumerate(data["tokens"]):
            if i:
                sentence.append(" ")
            if i in first:
                k = first[i]
                guess = (blanks[k].get("both") or [["?", 0]])[0][0]
                sentence.append(f"{k + 1}", style="bold reverse")
                sentence.append(f"[{guess}]", style="bold green")
            else:
                sentence.append(str(token))
        sentence.append(f"   (model at step {data.get('step', 0):,})", style="dim")
        unknown = [str(w) for w in data.get("unknown") or []]
        if unknown:
            sentence.append(f"\nnot in the vocabulary, read as ⁇: {', '.join(unknown[:8])}", style="yellow")
        self.query_one("#fill-sentence", Static).update(sentence)

        width = self.content_size.width or 78
        column = max(20, (width - 2) // 2)
        bar = max(4, min(20, column - 12 - 8))  # the word, the bar, the percentage
        out = side_by_side([Text("both sides", style="bold green")],
                           [Text("left only (all a GPT could see)", style="bold yellow")], column)
        tokens = data["tokens"]
        for k, b in enumerate(blanks):
            at = b.get("at") if isinstance(b.get("at"), int) else 0
            before = ("…" if at > 3 else "") + " ".join(str(t) for t in tokens[max(0, at - 3): at])
            after = " ".join(str(t) for t in tokens[at + 1: at + 4]) + ("…" if at + 4 < len(tokens) else "")
            out.append_text(Text.assemble((f"blank {k + 1}: ", "bold"), (f"{before} _ {after}".strip(), "dim"), "\n"))
            out.append_text(side_by_side(candidate_bars((b.get("both") or [])[:SHOWN], bar, "green"),
                                         candidate_bars((b.get("left") or [])[:SHOWN], bar, "yellow"), column))
        self.query_one("#fill-blanks", Static).update(out)
