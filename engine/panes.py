"""The dashboard vocabulary: what a recipe can ask the studio to show (torch-free).

A recipe's config module declares ``DASHBOARD``, a tuple of :class:`Tab`, each holding pane
declarations: plain frozen dataclasses that say *what* to show (which artifacts, which
parameters), never *how*. The studio keeps one table from pane class to widget
(``studio/views.py``) and draws them; the CLI and the tests can read them without Textual.

Every pane has an ``id`` (unique in its dashboard; the widget gets it), and says which
artifacts it listens to (:attr:`Pane.artifacts`) and which recipe parameters it shows or
sends (``params``, read through :attr:`Pane.settings`). A placeholder may contain ``{start}``: the front end fills in how a
run is started there (the studio: "press s to start training").

A new kind of view is a new dataclass here (subclass :class:`Pane`) plus one widget file
and one line in the studio's view table. This module imports nothing of GenStudio's.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR_SUFFIX = ".error"  # a request's error reply is written as "<reply>.error" (engine/runner.py)


def error_reply(name: str) -> str:
    """The artifact name under which the engine answers a bad request for ``name``."""
    return name + ERROR_SUFFIX


class Pane:
    """Base of every pane declaration (subclasses are frozen dataclasses with an ``id``)."""

    id: str

    @property
    def settings(self) -> tuple[str, ...]:
        """The recipe parameters the view shows or sends with its requests (its ``params``)."""
        return tuple(getattr(self, "params", ()))

    @property
    def artifacts(self) -> tuple[str, ...]:
        """The artifact names whose new versions the view loads, in the order it wants them."""
        artifact = getattr(self, "artifact", None)
        return (artifact,) if artifact else ()

    @property
    def export(self) -> str | None:
        """The artifact the studio's export key saves, when this pane shows one worth saving."""
        return None


@dataclass(frozen=True)
class Curves(Pane):
    """The live loss and quality curves (from the metric events, not from artifacts)."""

    id: str = "curves"


@dataclass(frozen=True)
class ImagePane(Pane):
    """The newest image artifact called ``artifact``. ``tile`` = (pitch, padding) when it is a
    grid of samples (small screens then show fewer, readable tiles); ``group`` keeps that
    many columns of tiles together (input | output pairs)."""

    artifact: str
    id: str
    placeholder: str = "no samples yet: {start}"
    tile: tuple[int, int] | None = None
    group: int = 1
    height: int | None = None  # rows, when the pane should not share space evenly
    side: bool = False  # a narrower companion pane, hidden on narrow screens (a bigger tab shows it)
    min_scale: float = 0.45  # smallest scale a tile is drawn at on text screens before fewer are shown

    @property
    def export(self) -> str | None:
        return self.artifact


@dataclass(frozen=True)
class PointsPane(Pane):
    """The newest points artifact ({"x", "y", "label", "projection"}) as a coloured scatter."""

    artifact: str
    id: str


@dataclass(frozen=True)
class Controls(Pane):
    """A row of pickers for some of the recipe's live choice parameters: changing one sets
    it on the running engine and refreshes the views at once (the attribute picker)."""

    params: tuple[str, ...]
    id: str
    help: str = ""


@dataclass(frozen=True)
class AttentionPane(Pane):
    """The attention maps inside the newest data artifact ``artifact`` (its "attention" entry),
    as a heatmap with the tokens on its axes; the learner picks the layer and the head (or the
    mean over heads)."""

    artifact: str
    id: str
    title: str = "attention"
    placeholder: str = "no attention maps yet: {start}"


@dataclass(frozen=True)
class TranslatePane(Pane):
    """A box where the learner types a sentence; the engine answers the request ``translate``
    (artifact ``artifact``) and the held-out examples (artifact ``examples``) show beside
    it. ``params``: the decoding setting offered beside the box (a live choice, the beam)."""

    artifact: str
    id: str
    examples: str = "examples"
    params: tuple[str, ...] = ()

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact), self.examples)


@dataclass(frozen=True)
class SamplerPane(Pane):
    """The sampling panel: the learner types a prompt and sets the sampling parameters
    (``params``: live parameters of the recipe); the engine's continuation (artifact
    ``artifact``) appears token by token, with the top candidates for the next token."""

    artifact: str
    id: str
    params: tuple[str, ...] = ("temperature", "top_k", "top_p", "max_new_tokens")

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact))


@dataclass(frozen=True)
class TextPane(Pane):
    """The newest text artifact (a data dict with "text", and optionally "prompt")."""

    artifact: str
    id: str
    placeholder: str = "no text yet: {start}"
    height: int | None = None  # rows, when the pane should not share space evenly


@dataclass(frozen=True)
class PlotPane(Pane):
    """Line plots of a data artifact {"title": str, "x": [..], "xlabel": str, "series": {name: [..]}}."""

    artifact: str
    id: str
    placeholder: str = "no data yet: {start}"


@dataclass(frozen=True)
class TimelinePane(Pane):
    """A denoising timeline the learner scrubs (←/→) and plays (space): the image artifact
    ``artifact`` is a horizontal strip of equal frames; the data artifact ``meta`` says
    {"frames": K, "t": [t of each frame], "label": str, optionally "ends": [first, last], the
    names of the two ends (default: noise, image)}."""

    artifact: str
    meta: str
    id: str

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.meta, self.artifact)


@dataclass(frozen=True)
class PromptImagePane(Pane):
    """A prompt box, with the live settings ``params`` beside it (the guidance scale): the
    engine draws images for the prompt (image artifact ``artifact``; its caption carries
    the prompt accuracy)."""

    artifact: str
    id: str
    params: tuple[str, ...] = ()

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact))


@dataclass(frozen=True)
class ActionPane(Pane):
    """A button that sends the engine the request ``action`` (with the current values of
    ``params`` as its arguments) and shows the image it answers with (artifact ``artifact``):
    work too slow for the periodic views, such as a full DDPM sampling chain."""

    action: str
    artifact: str
    id: str
    label: str
    params: tuple[str, ...] = ()

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact))


@dataclass(frozen=True)
class Tab:
    title: str
    id: str
    panes: tuple
    vertical: bool = False  # stack the panes instead of placing them side by side


@dataclass(frozen=True)
class PianoRollPane(Pane):
    """A piano roll of the newest data artifact ``artifact``: time across, pitch up, one
    colour per voice, bar lines, and a cursor while it plays. The artifact is
    {"notes": [[pitch, start, end, voice], ...] (times in 16th-note steps), "steps": int,
    "voices": [names], "tempo": quarters a minute, "label": str, "prompt": steps given to
    the model (drawn dimmer; optional), "other": {"notes": [...], "label": str} (another
    version drawn faintly behind, swapped with b; optional), "request": int (optional)}.
    Space plays it (sound where a local player is found), e writes it as MIDI and WAV in
    the current folder. With ``action``, r (or Enter in a box) asks the engine for a new
    version: the request ``action`` with the live parameters ``params`` shown as boxes."""

    artifact: str
    id: str
    placeholder: str = "no music yet: {start}"
    action: str = ""
    params: tuple[str, ...] = ()

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact)) if self.action else (self.artifact,)


@dataclass(frozen=True)
class HiddenStatePane(Pane):
    """A recurrent model's hidden state while it reads a text: a box where the learner types
    the text (the engine answers the request ``read`` as artifact ``artifact``: {"tokens",
    "layers": [layer][unit][token] in -1..1, "tracked": per layer, the unit that follows a
    feature of the text, or why none does}), a layer picker, and the heatmap (rows: units,
    columns: the tokens read)."""

    artifact: str
    id: str
    placeholder: str = "no hidden states yet: {start}"

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact))


@dataclass(frozen=True)
class RasterPane(Pane):
    """Images drawn one pixel at a time in raster order, replayed with a cursor: ←/→ move it
    a pixel, shift+←/→ or PgUp/PgDn a row, Home/End to the ends, space plays. The data
    artifact ``artifact`` is {"height", "width", "channels", "levels", "images": [image][(row
    * width + col) * channels + channel] level indices, "done" (pixels drawn so far; the
    rest are not drawn yet), "probs": [pixel][channel][level] (the first image's
    distributions), "label"}. With ``action``, Enter asks the engine to draw new images; its
    answer (the same artifact) arrives in parts while the drawing goes on."""

    artifact: str
    id: str
    action: str = ""

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact)) if self.action else (self.artifact,)


@dataclass(frozen=True)
class ModelPane(Pane):
    """The network that trains, as a tree of layers with output shapes and parameter counts:
    the data artifact "model" (format: engine/model_summary.py). Every lesson has one, on a
    Model tab the studio adds after its own (MODEL_TAB); a recipe does not declare it."""

    artifact: str = "model"
    id: str = "model-summary"
    placeholder: str = "the network appears with the first training step: {start}"


MODEL_TAB = Tab("Model", "tab-model", (ModelPane(),))
"""The tab every lesson ends with: the model summary the runner writes for every recipe."""


@dataclass(frozen=True)
class FillPane(Pane):
    """Fill in the blanks: a box where the learner types a sentence with blanks (``_`` or
    [MASK]); the engine answers the request ``fill`` as the data artifact ``artifact``:
    {"tokens": [the sentence's tokens, "_" for a blank], "blanks": [{"at": token index,
    "both": [[word, probability], ...] (reading both sides), "left": [[word, probability],
    ...] (the words to its right hidden)}], "unknown": [words read as unknown], "request"}."""

    artifact: str
    id: str
    placeholder: str = "no answer yet: {start}, then type a sentence with a blank _"

    @property
    def artifacts(self) -> tuple[str, ...]:
        return (self.artifact, error_reply(self.artifact))
