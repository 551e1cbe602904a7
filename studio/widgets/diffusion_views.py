"""Views of the diffusion lessons: line plots of a data artifact (the noise schedule), the
denoising timeline the learner scrubs and plays, an image made on request (the sampler
comparison), and the prompt-to-image panel."""

from __future__ import annotations

from PIL import Image
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static
from textual_plotext import PlotextPlot

from engine.schema import ConfigError, ParamSpec, parse_value
from studio.messages import AskEngine
from studio.widgets.hyperparams import coerce
from studio.widgets.image_view import ImageView
from studio.widgets.sampler import read_json
from studio.widgets.scrubber import Scrubber
from studio.widgets.view import ArtifactUpdate, View, placeholder

SERIES_COLOURS = ["cyan", "orange", "green", "magenta"]


class PlotView(View, PlotextPlot):
    """{"title", "x", "xlabel", "series": {name: [y...]}} as lines."""

    def __init__(self, placeholder: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> PlotView:
        return cls(placeholder(pane.placeholder), id=pane.id)

    def on_mount(self) -> None:
        super().on_mount()
        self.plt.title(self.placeholder)

    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if not data or not isinstance(data.get("series"), dict) or not isinstance(data.get("x"), list):
            return
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for i, (label, ys) in enumerate(data["series"].items()):
            plt.plot(data["x"], ys, label=label, color=SERIES_COLOURS[i % len(SERIES_COLOURS)], marker="braille")
        plt.title(data.get("title", ""))
        plt.xlabel(data.get("xlabel", ""))
        self.refresh()


class TimelineView(Scrubber):
    """A horizontal strip of K equal frames (noise on the left, the sample on the right),
    shown one frame at a time: ←/→ step, space plays, Home/End jump to the ends (the keys
    and the play clock are the Scrubber's)."""

    DEFAULT_CSS = """
    TimelineView { padding: 0 1; }
    TimelineView #timeline-bar { height: 3; }
    TimelineView ImageView { height: 1fr; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", "Step back", tooltip="One denoising step back (toward noise)"),
        Binding("right", "move(1)", "Step on", tooltip="One denoising step on (toward the image)"),
        Binding("space", "play", "Play/pause"),
        Binding("home", "jump(0)", "Noise", show=False),
        Binding("end", "jump(-1)", "Image", show=False),
    ]

    def __init__(self, artifact: str, meta: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.artifact, self.meta_name = artifact, meta
        self.strip: Image.Image | None = None
        self.meta: dict = {}
        self.strip_step = 0  # the training step of the model that drew the strip

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> TimelineView:
        return cls(pane.artifact, pane.meta, id=pane.id)

    def compose(self) -> ComposeResult:
        yield Static(Text("no timeline yet: press s to start training; then ←/→ step through the denoising, "
                          "space plays it", style="dim"), id="timeline-bar")
        yield ImageView(id="timeline-frame", placeholder="")

    @property
    def frames(self) -> int:
        frames = self.meta.get("frames", 0)
        return frames if isinstance(frames, int) and frames > 0 else 0

    def load(self, update: ArtifactUpdate) -> None:
        if update.name == self.meta_name:
            data = read_json(update.path)
            if data and data.get("frames"):
                self.meta = data
        else:
            try:
                with Image.open(update.path) as im:
                    self.strip = im.convert("RGB")
            except (OSError, ValueError, Image.DecompressionBombError):
                return  # being replaced (or not an image): the next version tries again
            self.strip_step = update.step
        self._show()

    def _show(self) -> None:
        k = self.frames
        if self.strip is None or not k or self.strip.width % k:
            return
        self.frame = max(0, min(k - 1, self.frame))
        w = self.strip.width // k
        self.query_one(ImageView).set_image(self.strip.crop((self.frame * w, 0, (self.frame + 1) * w, self.strip.height)))
        ts = self.meta.get("t") or []
        t = f"t = {ts[self.frame]}" if self.frame < len(ts) else ""
        done = round(30 * self.frame / max(1, k - 1))
        ends = self.meta.get("ends")
        first, last = (str(e) for e in ends) if isinstance(ends, list) and len(ends) == 2 else ("noise", "image")
        bar = Text.assemble((f"{first} ", "dim"), ("█" * done, "cyan"), ("░" * (30 - done), "dim"), (f" {last}", "dim"),
                            f"   frame {self.frame + 1}/{k}  {t}  ", ("▶ playing" if self.playing else "", "bold green"))
        # What the frames show on a line of its own: after the keys it was cut at 80 columns.
        bar.append(f"\n{self.meta.get('label', '')} · model at step {self.strip_step}", style="dim")
        bar.append("\n←/→ step · space plays · Home/End: the ends", style="dim")
        self.query_one("#timeline-bar", Static).update(bar)


class ActionImage(View, Vertical):
    """A button that asks the engine for an image (the DDPM vs DDIM comparison) and the image
    it answers with, captioned with what it measured."""

    DEFAULT_CSS = """
    ActionImage { padding: 0 1; }
    ActionImage Button { margin: 0 0 0 0; }
    ActionImage #action-note { height: auto; color: $text-muted; }
    ActionImage ImageView { height: 1fr; }
    """

    def __init__(self, action: str, artifact: str, label: str, params: tuple[str, ...] = (),
                 values: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.action, self.artifact, self.label, self.params = action, artifact, label, params
        self.values = dict(values or {})

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> ActionImage:
        return cls(pane.action, pane.artifact, pane.label, pane.settings, values, id=pane.id)

    def set_values(self, values: dict) -> None:
        self.values = dict(values)

    def compose(self) -> ComposeResult:
        yield Button(self.label, id="action-run", compact=True)
        yield Static("", id="action-note")
        yield ImageView(id="action-image", placeholder="nothing yet: train a little, then press the button")

    def focus_input(self) -> bool:
        self.query_one(Button).focus()
        return True

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.query_one("#action-note", Static).update(Text("working … (the full DDPM chain takes a while)", style="dim"))
        self.ask_engine(AskEngine(self.action, self.artifact, {k: self.values.get(k) for k in self.params},
                                    what="run it"))

    def load(self, update: ArtifactUpdate) -> None:
        if update.path.endswith(".json"):
            error = (read_json(update.path) or {}).get("error", "")
            self.query_one("#action-note", Static).update(Text(str(error), style="bold red"))
            return
        self.query_one("#action-note", Static).update(Text(f"{update.caption} · step {update.step}"))
        self.query_one(ImageView).path = update.path


class PromptImagePanel(View, Vertical):
    """The learner types a caption and a guidance scale; the engine draws images for it."""

    DEFAULT_CSS = """
    PromptImagePanel { padding: 0 1; }
    PromptImagePanel .ask { height: 1; margin: 1 0 0 0; }
    PromptImagePanel .ask Label { text-style: bold; padding: 0 1 0 2; }
    PromptImagePanel .ask Label.first { padding: 0 1 0 0; }
    PromptImagePanel #t2i-prompt { width: 1fr; }
    PromptImagePanel #t2i-guidance { width: 7; }
    PromptImagePanel #t2i-note { height: auto; margin: 1 0 0 0; }
    PromptImagePanel ImageView { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "leave_box", "Leave the box", tooltip="Stop typing: the studio's keys work again")]

    def __init__(self, guidance: ParamSpec | None, values: dict, artifact: str = "prompted", **kwargs) -> None:
        super().__init__(**kwargs)
        self.guidance_spec = guidance
        self.values = values
        self.artifact = artifact

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> PromptImagePanel:
        return cls(specs[pane.settings[0]] if pane.settings else None, values, pane.artifact, id=pane.id)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="ask"):
            yield Label("prompt", classes="first")
            yield Input(str(self.values.get("prompt", "")), id="t2i-prompt", compact=True,
                        placeholder="e.g. a small blue triangle at the bottom right")
            if self.guidance_spec:
                yield Label(self.guidance_spec.name)
                yield Input(str(coerce(self.guidance_spec, self.values.get(self.guidance_spec.name, self.guidance_spec.default))),
                            id="t2i-guidance", compact=True, tooltip=self.guidance_spec.help)
        yield Static(Text("Enter draws 16 images for the prompt; the Guidance tab sweeps the scale.", style="dim"),
                     id="t2i-note")
        yield ImageView(id="t2i-image", placeholder="no images yet: press s to start training")

    def focus_input(self) -> bool:
        self.query_one("#t2i-prompt", Input).focus()
        return True

    def action_leave_box(self) -> None:
        self.screen.set_focus(None)

    def set_values(self, values: dict) -> None:
        self.values = values
        boxes = [("#t2i-prompt", "prompt")] + ([("#t2i-guidance", self.guidance_spec.name)] if self.guidance_spec else [])
        for box, key in boxes:
            found = self.query(box)
            if found and not found.first().has_focus and key in values:
                found.first().value = str(values[key])

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        settings = {}
        if self.guidance_spec:
            try:
                settings[self.guidance_spec.name] = parse_value(self.guidance_spec,
                                                                self.query_one("#t2i-guidance", Input).value)
            except ConfigError as e:
                self.query_one("#t2i-note", Static).update(Text(str(e), style="bold red"))
                return
        self.query_one("#t2i-note", Static).update(Text("drawing …", style="dim"))
        prompt = self.query_one("#t2i-prompt", Input).value
        self.ask_engine(AskEngine("generate", self.artifact, {"prompt": prompt, **settings}, settings, "draw images"))

    def load(self, update: ArtifactUpdate) -> None:
        if update.path.endswith(".json"):
            error = (read_json(update.path) or {}).get("error", "")
            self.query_one("#t2i-note", Static).update(Text(str(error), style="bold red"))
            return
        self.query_one("#t2i-note", Static).update(Text(f"{update.caption} · step {update.step}"))
        self.query_one(ImageView).path = update.path
