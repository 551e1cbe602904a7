"""Text views of the GPT lesson: the Train tab's sample, and the sampling panel where the
learner types a prompt, sets temperature, top-k and top-p, and watches the continuation
appear token by token beside bars of the candidates for the next token."""

from __future__ import annotations

import json
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Region
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from engine.schema import ConfigError, ParamSpec, parse_value
from studio.messages import AskEngine
from studio.widgets.attention import show_piece
from studio.widgets.hyperparams import coerce
from studio.widgets.view import ArtifactUpdate, View, leave_box, placeholder

REVEAL_HZ = 30  # tokens shown per second while a continuation appears
BAR = 24  # characters of the longest probability bar
MIN_CANDIDATES = 3  # candidate bars shown however short the screen (the text gets the rest)
CURSOR = "reverse bold"  # the style of the token whose candidates are shown
HINT = ("Tab moves between the boxes; Esc leaves them (then 1-9 switch tabs, ←/→ move along the text "
        "to show the candidates at each position).")
LABELS = {"temperature": "temp", "top_k": "top-k", "top_p": "top-p", "max_new_tokens": "tokens"}


def read_json(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None  # being replaced while we read: the next snapshot tries again
    return data if isinstance(data, dict) else None


class TextSample(View, VerticalScroll):
    """The newest text sample: the prompt dim, the model's continuation bright."""

    DEFAULT_CSS = "TextSample { padding: 0 1; } TextSample > Static { width: 1fr; }"

    def __init__(self, placeholder: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.pane_placeholder = ""  # the pane's own, with {start} (follow fills it in)
        self.loaded = False

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> TextSample:
        view = cls(placeholder(pane.placeholder), id=pane.id)
        view.pane_placeholder = pane.placeholder
        if pane.height:
            view.styles.height = pane.height
        return view

    def follow(self, snapshot) -> None:
        """Until a sample arrives: while a run is starting, that it is coming, not how to start one."""
        if not self.loaded and self.pane_placeholder:
            text = placeholder(self.pane_placeholder, snapshot.state)
            if text != self.placeholder:
                self.placeholder = text
                self.query_one("#text-caption", Static).update(Text(text, style="dim"))

    def compose(self) -> ComposeResult:
        yield Static(Text(self.placeholder, style="dim"), id="text-caption")
        yield Static("", id="text-body")

    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if data is None or not isinstance(data.get("text"), str):
            return
        self.loaded = True
        self.query_one("#text-caption", Static).update(
            Text(f"{update.caption or 'sample'} · step {update.step}", style="dim italic"))
        self.query_one("#text-body", Static).update(
            Text.assemble((str(data.get("prompt", "")), "dim"), (data["text"], "bold")))


def bars(candidates: list, chosen: str | None) -> Text:
    """The most likely next tokens: a bar of the probability the draw used (after
    temperature, top-k and top-p) with the model's own probability beside it (one line each)."""
    out = Text()
    width = max((len(show_piece(c[0])) for c in candidates), default=1)
    top = max((max(c[1], c[2]) for c in candidates), default=1.0) or 1.0
    for token, p_model, p_draw in candidates:
        mark = "▶" if token == chosen else " "
        out.append(f"{mark} {show_piece(token).ljust(width)} ", style="bold" if token == chosen else "")
        n = round(BAR * p_draw / top)
        out.append("█" * n, style="green" if p_draw > 0 else "")
        out.append(" " * (BAR - n))
        out.append(f" {p_draw:6.1%}", style="bold")
        out.append(f"  model {p_model:6.1%}\n", style="dim")
    return out


class SamplerPanel(View, Vertical):
    """Prompt and settings above; the continuation and the candidate bars below. While a
    continuation arrives it is revealed one token at a time; afterwards ←/→ (or [ and ])
    move along it to show the candidates at any position."""

    DEFAULT_CSS = """
    SamplerPanel { padding: 0 1; }
    SamplerPanel .ask { height: 1; margin: 1 0 0 0; }
    SamplerPanel .ask Label { text-style: bold; padding: 0 1 0 0; }
    SamplerPanel #prompt { width: 1fr; }
    SamplerPanel .settings { height: 1; margin: 1 0 0 0; }
    SamplerPanel .settings Label { padding: 0 1 0 2; text-style: bold; }
    SamplerPanel .settings Label.first { padding: 0 1 0 0; }
    SamplerPanel .settings Input { width: 8; }
    SamplerPanel #sampler-status { height: auto; color: $text-muted; }
    SamplerPanel #sampler-out { height: 1fr; min-height: 4; border: round $primary; padding: 0 1; scrollbar-gutter: stable; }
    SamplerPanel #sampler-bars { height: auto; }
    """
    BINDINGS = [
        Binding("left,left_square_bracket", "move(-1)", "Earlier token", show=False),
        Binding("right,right_square_bracket", "move(1)", "Later token", show=False),
        Binding("escape", "leave_box", "Leave the box", tooltip="Stop typing: the studio's keys work again"),
    ]
    can_focus = True

    def __init__(self, specs: list[ParamSpec], values: dict, artifact: str = "generation", **kwargs) -> None:
        super().__init__(**kwargs)
        self.specs = {s.name: s for s in specs}
        self.values = {s.name: coerce(s, values.get(s.name, s.default)) for s in specs}
        self.artifact = artifact
        self.data: dict | None = None
        self.shown = 0  # tokens revealed so far
        self._clock: Timer | None = None  # the reveal clock, ticking only while tokens appear
        self.cursor: int | None = None  # the position whose candidates are shown (None: the newest)
        self.request = 0  # numbers the answers (older ones are ignored); also the sampling seed

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> SamplerPanel:
        return cls([specs[name] for name in pane.settings], values, pane.artifact, id=pane.id)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="ask"):
            yield Label("prompt")
            yield Input(placeholder="type a prompt and press Enter (empty: the corpus's start)", id="prompt",
                        compact=True)
        with Horizontal(classes="settings"):
            for i, name in enumerate(self.specs):
                yield Label(LABELS.get(name, name), classes="first" if i == 0 else None)
                yield Input(str(self.values[name]), id=f"set-{name}", tooltip=self.specs[name].help, compact=True)
        yield Static(Text(HINT, style="dim"), id="sampler-status")
        with VerticalScroll(id="sampler-out"):
            yield Static("", id="sampler-text")
        yield Static("", id="sampler-bars")

    def on_mount(self) -> None:
        self._clock = self.set_interval(1 / REVEAL_HZ, self._reveal, pause=True)  # ticks only while revealing

    def focus_input(self) -> bool:
        self.query_one("#prompt", Input).focus()
        return True

    def action_leave_box(self) -> None:
        leave_box(self)  # the panel itself: ←/→ now move along the text

    def set_values(self, values: dict) -> None:
        for name, spec in self.specs.items():
            value = coerce(spec, values.get(name, spec.default))
            self.values[name] = value
            box = self.query_one(f"#set-{name}", Input)
            if not box.has_focus:
                box.value = str(value)

    # -- asking --
    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        settings = {}
        for name, spec in self.specs.items():
            raw = self.query_one(f"#set-{name}", Input).value
            try:
                settings[name] = parse_value(spec, raw)
            except ConfigError as e:
                self._status(str(e), error=True)
                self.query_one(f"#set-{name}", Input).focus()
                return
        self.values.update(settings)
        self.request += 1
        self._status("generating …")
        prompt = self.query_one("#prompt", Input).value
        self.ask_engine(AskEngine("generate", self.artifact, {"prompt": prompt, "request": self.request}, settings,
                                    "generate text"))

    def refused(self, message: str) -> None:
        self._status(message, error=True)

    def _status(self, message: str, error: bool = False) -> None:
        self.query_one("#sampler-status", Static).update(Text(message, style="bold red" if error else "dim"))

    # -- answers --
    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if data is None:
            return
        if not isinstance(data.get("request", 0), int) or data.get("request", 0) < self.request:
            return  # the answer to an earlier request, still being written
        if "error" in data:
            self._status(str(data["error"]), error=True)
            return
        if not all(isinstance(data.get(k), list) for k in ("tokens", "candidates", "chosen_p")):
            return  # not an answer this panel can draw
        if self.data is None or data.get("request") != self.data.get("request"):
            self.shown, self.cursor = 0, None  # a new answer: reveal it from the start
        self.data = data
        if self._clock is not None:
            self._clock.resume()
        if data.get("done"):
            s = data.get("settings", {})
            self._status(f"{len(data['tokens'])} tokens in {data.get('seconds', 0):.2f} s at temperature "
                         f"{s.get('temperature')}, top-k {s.get('top_k')}, top-p {s.get('top_p')}. "
                         "Esc, then ←/→: the candidates at each position.")
        self._draw()

    def _reveal(self) -> None:
        if not self.data or self.shown >= len(self.data["tokens"]):
            if self._clock is not None:
                self._clock.pause()
            return
        backlog = len(self.data["tokens"]) - self.shown
        self.shown += max(1, backlog // 20)  # catch up when far behind
        self._draw()

    def action_move(self, delta: int) -> None:
        if isinstance(self.screen.focused, Input) or not self.data or not self.shown:
            return
        at = self.shown - 1 if self.cursor is None else self.cursor
        self.cursor = max(0, min(self.shown - 1, at + delta))
        self._draw()

    def _draw(self) -> None:
        data = self.data
        if not data:
            return
        tokens = data["tokens"][: self.shown]
        at = (len(tokens) - 1) if self.cursor is None else self.cursor
        text = Text(data.get("prompt", ""), style="dim")
        for i, token in enumerate(tokens):
            text.append(token, style=CURSOR if i == at else "bold")
        self.query_one("#sampler-text", Static).update(text)
        self.call_after_refresh(self._keep_in_view, text)
        if 0 <= at < len(tokens):
            chosen_p = data["chosen_p"][at]
            candidates = data["candidates"][at]
            room = self._room_for_bars()
            top = f"its top {room} of {len(candidates)} candidates" if room < len(candidates) else "the candidates"
            head = Text.assemble(("position ", "dim"), (f"{at + 1}", "bold"),
                                 (f" of {len(tokens)}: drew {show_piece(tokens[at])!r} ({chosen_p:.1%}); {top}:\n", "dim"))
            self.query_one("#sampler-bars", Static).update(head + bars(candidates[:room], tokens[at]))

    def on_resize(self) -> None:
        self._draw()  # as many bars as fit now, and the shown token kept in view

    def _room_for_bars(self) -> int:
        """How many candidate bars to draw: all of them when the screen is tall enough, else
        about as many rows as the text keeps (at 80x24 a long continuation would otherwise
        show two lines)."""
        fixed = sum(w.outer_size.height + w.styles.margin.top + w.styles.margin.bottom
                    for w in self.query(".ask, .settings, #sampler-status"))
        room = self.content_size.height - fixed - 2 - 1  # the text's border, the bars' heading
        return max(MIN_CANDIDATES, room // 2)

    def _keep_in_view(self, text: Text, tries: int = 3) -> None:
        """Scroll the continuation so the token whose candidates are shown is on screen."""
        out = self.query_one("#sampler-out", VerticalScroll)
        body = self.query_one("#sampler-text", Static)
        width = body.content_size.width
        if width <= 0:
            return
        lines = text.wrap(self.app.console, width)
        if body.size.height < len(lines) and tries:  # the text grew and is not laid out yet
            self.call_after_refresh(self._keep_in_view, text, tries - 1)
            return
        row = next((i for i, line in enumerate(lines) if any(str(span.style) == CURSOR for span in line.spans)), None)
        if row is not None:
            out.scroll_to_region(Region(0, row, 1, 1), animate=False, immediate=True)
