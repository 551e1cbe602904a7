"""The translator's panel: the learner types an English sentence and picks greedy or beam
decoding; the engine's French appears with the time it took, beside held-out examples
marked right or wrong."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from engine.schema import ParamSpec
from studio.messages import AskEngine
from studio.widgets.hyperparams import coerce
from studio.widgets.sampler import read_json
from studio.widgets.view import ArtifactUpdate, View


class TranslatePanel(View, Vertical):
    DEFAULT_CSS = """
    TranslatePanel { padding: 0 1; height: auto; max-height: 60%; }
    TranslatePanel .ask { height: 1; margin: 1 0 0 0; }
    TranslatePanel #source { width: 1fr; }
    TranslatePanel .ask Label { padding: 0 1 0 1; text-style: bold; }
    TranslatePanel .ask Label.first { padding: 0 1 0 0; }
    TranslatePanel .ask Select { width: 12; }
    TranslatePanel #translation { height: auto; padding: 0 1; }
    TranslatePanel #examples { height: auto; }
    """

    BINDINGS = [Binding("escape", "leave_box", "Leave the box", tooltip="Stop typing: the studio's keys work again")]

    def __init__(self, beam: ParamSpec | None, values: dict, artifact: str = "translation",
                 examples: str = "examples", **kwargs) -> None:
        super().__init__(**kwargs)
        self.beam_spec = beam
        self.beam = coerce(beam, values.get(beam.name, beam.default)) if beam else 1
        self.artifact, self.examples = artifact, examples
        self.request = 0

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> TranslatePanel:
        beam = specs[pane.settings[0]] if pane.settings else None
        return cls(beam, values, pane.artifact, pane.examples, id=pane.id)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="ask"):
            yield Label("English", classes="first")
            yield Input(placeholder="type a sentence and press Enter, e.g. the red car is big", id="source",
                        compact=True)
            if self.beam_spec:
                yield Label("beam")
                yield Select([("greedy" if c == 1 else str(c), c) for c in self.beam_spec.choices],
                             value=self.beam, allow_blank=False, id="beam", tooltip=self.beam_spec.help,
                             compact=True)
        yield Static(Text("no translation yet: press s to start training, then type a sentence", style="dim"),
                     id="translation")
        yield Static("", id="examples")

    def focus_input(self) -> bool:
        self.query_one("#source", Input).focus()
        return True

    def action_leave_box(self) -> None:
        self.screen.set_focus(None)

    def set_values(self, values: dict) -> None:
        if self.beam_spec:
            self.beam = coerce(self.beam_spec, values.get(self.beam_spec.name, self.beam_spec.default))
            select = self.query_one("#beam", Select)
            with select.prevent(Select.Changed):
                select.value = self.beam

    @on(Select.Changed, "#beam")
    def beam_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.BLANK:
            self.beam = int(event.value)

    @on(Input.Submitted, "#source")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.request += 1
        self.query_one("#translation", Static).update(Text("translating …", style="dim"))
        settings = {self.beam_spec.name: self.beam} if self.beam_spec else {}
        self.ask_engine(AskEngine("translate", self.artifact, {"text": event.value, "request": self.request},
                                    settings, "translate"))

    def refused(self, message: str) -> None:
        self.query_one("#translation", Static).update(Text(message, style="bold red"))

    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if data is None:
            return
        if update.name == self.examples:
            self._show_examples(data)
            return
        if not isinstance(data.get("request", 0), int) or data.get("request", 0) < self.request:
            return  # an earlier answer, or the periodic one while a request is on its way
        if "error" in data:
            self.query_one("#translation", Static).update(Text(str(data["error"]), style="bold red"))
            return
        how = "greedy" if data.get("beam", 1) == 1 else f"beam {data['beam']}"
        out = Text.assemble(("EN  ", "bold dim"), data.get("source", ""), "\n",
                            ("FR  ", "bold dim"), (data.get("output", ""), "bold green"))
        ref = data.get("reference")
        if ref:
            ok = ref == data.get("output")
            out.append("\nref ", style="bold dim")
            out.append(ref, style="")
            out.append("  ✓ exact" if ok else "  ✗ differs", style="green" if ok else "red")
        out.append(f"\n{how}, {data.get('seconds', 0) * 1000:.0f} ms", style="dim")
        self.query_one("#translation", Static).update(out)

    def _show_examples(self, data: dict) -> None:
        rows = data.get("rows") or []
        table = Table(title="held-out sentences (never trained on)", title_justify="left", expand=True,
                      show_edge=False, pad_edge=False)
        table.add_column("", width=1)
        table.add_column("English", ratio=1)
        table.add_column("model's French", ratio=1)
        for row in rows:
            ok = row.get("correct")
            table.add_row(Text("✓" if ok else "✗", style="green" if ok else "red"), row.get("source", ""),
                          Text(row.get("output", ""), style="" if ok else "yellow"))
        n = sum(1 for r in rows if r.get("correct"))
        table.caption = f"{n}/{len(rows)} exactly right"
        self.query_one("#examples", Static).update(table)
