"""A row of pickers for a recipe's live choice parameters (the attribute picker, the latent
explorer's direction). Picking a value posts :class:`studio.messages.PickSetting`; the lesson
screen sends it to the engine, which redraws the views at once."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.widgets import Label, Select, Static

from engine.schema import ParamSpec
from studio.messages import PickSetting
from studio.widgets.hyperparams import coerce
from studio.widgets.view import View


def short_name(name: str) -> str:
    """pick_hair -> hair: the picker's labels leave out the shared prefix."""
    return name.removeprefix("pick_")


class ControlRow(View, Vertical):
    DEFAULT_CSS = """
    ControlRow { height: auto; padding: 0 1; }
    ControlRow .controls-help { color: $text-muted; height: auto; }
    ControlRow .controls { height: auto; layout: grid; grid-size: 2; grid-gutter: 0 2; grid-rows: 3; }
    ControlRow .control { height: 3; }
    ControlRow .control Label { width: auto; min-width: 9; padding: 1 1 0 0; text-style: bold; }
    ControlRow .control Select { width: 1fr; max-width: 22; }
    """

    def __init__(self, specs: list[ParamSpec], values: dict, help: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        bad = [s.name for s in specs if not (s.choices and s.live)]
        if bad:
            raise ValueError(f"controls need live choice parameters; not: {', '.join(bad)}")
        self.specs = specs
        self.values = {s.name: coerce(s, values.get(s.name, s.default)) for s in specs}
        self.help = help

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> ControlRow:
        return cls([specs[name] for name in pane.settings], values, pane.help, id=pane.id)

    def compose(self) -> ComposeResult:
        if self.help:
            yield Static(self.help, classes="controls-help", markup=False)
        with Container(classes="controls"):
            for spec in self.specs:
                with Horizontal(classes="control"):
                    yield Label(short_name(spec.name))
                    yield Select([(str(c), c) for c in spec.choices], value=self.values[spec.name],
                                 allow_blank=False, id=f"ctl-{spec.name}", tooltip=spec.help)

    focus_last = True  # a roll or a scrubber beside the pickers takes the keys first

    def focus_input(self) -> bool:
        """The first picker takes the keys, so Enter opens it at once (a walkthrough pressed
        Tab, Enter, ↓, Enter and reached the tab bar, not the picker)."""
        selects = self.query(Select)
        if not selects:
            return False
        selects.first().focus()
        return True

    def set_values(self, values: dict) -> None:
        """Show these values without reporting them as changes."""
        for spec in self.specs:
            value = coerce(spec, values.get(spec.name, spec.default))
            self.values[spec.name] = value
            select = self.query_one(f"#ctl-{spec.name}", Select)
            if select.value != value:
                with select.prevent(Select.Changed):
                    select.value = value

    @on(Select.Changed)
    def changed(self, event: Select.Changed) -> None:
        event.stop()
        key = (event.select.id or "").removeprefix("ctl-")
        if key not in self.values or event.value == self.values[key] or event.value is Select.BLANK:
            return
        self.values[key] = event.value
        self.post_message(PickSetting(key, event.value))
