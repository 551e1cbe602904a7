"""A hyperparameter form built from a recipe's config schema (engine.configs)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Select, Static

from engine.schema import ConfigError, ParamSpec, parse_value


class SpecValidator(Validator):
    """Checks one field with the engine's own parser, so the form and engine agree."""

    def __init__(self, spec: ParamSpec) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_value(self.spec, value)
        except ConfigError as e:
            return self.failure(str(e))
        return self.success()


def coerce(spec: ParamSpec, value):
    """A stored value in the spec's current type ("32" from an older run is 32 now); the
    default when it no longer parses, so an old run never breaks the form."""
    try:
        return parse_value(spec, value)
    except ConfigError:
        return spec.default


class HyperparamForm(VerticalScroll):
    DEFAULT_CSS = """
    HyperparamForm { padding: 0 1; }
    HyperparamForm .row { height: auto; margin-bottom: 0; }
    HyperparamForm .name { width: 14; padding-top: 1; text-style: bold; }
    HyperparamForm Input, HyperparamForm Select { width: 24; }
    HyperparamForm .help { width: 1fr; padding: 1 0 0 1; color: $text-muted; }
    HyperparamForm #form-error { color: $error; height: auto; margin-top: 1; }
    HyperparamForm #form-note { color: $text-muted; height: auto; }
    HyperparamForm #form-buttons { height: 3; margin-top: 1; }
    HyperparamForm #form-buttons Button { margin-right: 1; }
    """

    BINDINGS = [Binding("escape", "leave_box", "Leave the box", tooltip="Stop editing: the studio's keys work again")]

    @dataclass
    class Submitted(Message):
        """Valid values from the form. ``restart`` is False when only live params changed."""

        values: dict
        changed: dict
        restart: bool

    def __init__(self, specs: list[ParamSpec], values: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.specs = specs
        self.values = dict(values)
        self.running = False  # set by the screen: a live change needs a running engine

    def compose(self) -> ComposeResult:
        yield Static("Change a value and press Apply. Values marked ⚡ apply live while training; "
                     "any other change restarts the run with the new settings (the old run is kept).",
                     id="form-note")
        for spec in self.specs:
            with Horizontal(classes="row"):
                live = " ⚡" if spec.live else ""
                yield Label(spec.name + live, classes="name")
                if spec.choices:
                    yield Select([(str(c), c) for c in spec.choices], value=self.values.get(spec.name, spec.default),
                                 allow_blank=False, id=f"hp-{spec.name}")
                else:
                    yield Input(value=str(self.values.get(spec.name, spec.default)), id=f"hp-{spec.name}",
                                validators=[SpecValidator(spec)], validate_on=["changed", "submitted"])
                yield Static(f"{spec.help} [{spec.range_text()}]", classes="help", markup=False)
        yield Static("", id="form-error")
        with Horizontal(id="form-buttons"):
            yield Button("Apply", id="form-apply", variant="primary")
            yield Button("Defaults", id="form-defaults")

    def action_leave_box(self) -> None:
        """Esc leaves a field first (as in the other boxes); a second Esc goes back."""
        self.screen.set_focus(None)

    def set_values(self, values: dict) -> None:
        """Show the values of the run now on screen."""
        self.values = dict(values)
        for spec in self.specs:
            widget = self.query_one(f"#hp-{spec.name}")
            value = coerce(spec, values.get(spec.name, spec.default))
            if isinstance(widget, Select):
                widget.value = value
            else:
                widget.value = str(value)

    def read(self) -> tuple[dict, list[str]]:
        """(parsed values, error messages)."""
        out, errors = {}, []
        for spec in self.specs:
            widget = self.query_one(f"#hp-{spec.name}")
            raw = widget.value
            try:
                out[spec.name] = parse_value(spec, raw)
            except ConfigError as e:
                errors.append(str(e))
        return out, errors

    @on(Input.Submitted)
    @on(Button.Pressed, "#form-apply")
    def apply(self, event: Message) -> None:
        event.stop()
        values, errors = self.read()
        error_box = self.query_one("#form-error", Static)
        if errors:
            error_box.update("Not applied:\n" + "\n".join(f"• {e}" for e in errors))
            return
        error_box.update("")
        changed = {k: v for k, v in values.items() if v != self.values.get(k)}
        if not changed:
            error_box.update("Nothing changed.")
            return
        live = {s.name for s in self.specs if s.live}
        restart = not (self.running and set(changed) <= live)
        self.post_message(self.Submitted(values, changed, restart))
        self.values = values

    @on(Button.Pressed, "#form-defaults")
    def defaults(self, event: Button.Pressed) -> None:
        event.stop()
        for spec in self.specs:
            widget = self.query_one(f"#hp-{spec.name}")
            widget.value = spec.default if isinstance(widget, Select) else str(spec.default)
        self.query_one("#form-error", Static).update("Defaults filled in; press Apply to use them.")
