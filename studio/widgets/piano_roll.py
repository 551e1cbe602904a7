"""The piano roll: a piece of four-voice music drawn in the terminal. Time runs across,
pitch goes up, each voice has its colour (a note's first cell brighter, so repeated notes
stay apart), bar lines are lighter columns, and a cursor moves across while it plays.

Each terminal cell is a half block: its top and bottom halves are two pitch rows, so a
12-row roll shows 24 pitches. When the piece has more steps than the roll has columns a
column stands for several steps; when fewer, a step gets several columns.

Keys: space plays (with sound where a local player is found: afplay, paplay, aplay or
ffplay; over SSH, or with none, the files are written and the cursor plays silently), e
writes the piece as MIDI and WAV in the current folder, b swaps in the other version (the
phrase before the picker's change, or the chorale's real continuation), and with a request
to make a new version r asks for it (Enter in a box does too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from engine.schema import ConfigError, ParamSpec, parse_value
from studio.messages import AskEngine
from studio.widgets.hyperparams import coerce
from studio.widgets.sampler import read_json
from studio.widgets.view import ArtifactUpdate, View, leave_box, placeholder

# soprano, alto, tenor, bass: (held, first cell of a note)
VOICE_COLOURS = (("#c0504d", "#ff8a80"), ("#c88a2e", "#ffd180"), ("#4e9a57", "#a5e6a0"), ("#4f77c4", "#9ec5ff"))
EMPTY, BEAT, BAR, OTHER, CURSOR, CURSOR_NOTE = "#16181d", "#1c1f26", "#313645", "#4a4f5c", "#8a8f9c", "#ffffff"
GUTTER = 4  # columns of pitch labels on the left
MIN_PITCHES = 12  # the roll never spans less than an octave
FPS = 12  # cursor updates a second while playing
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
PLAYERS = (("afplay", ()), ("paplay", ()), ("aplay", ("-q",)), ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "quiet")))
LABELS = {"temperature": "temp", "prompt_piece": "chorale", "prompt_bars": "prompt bars", "new_bars": "new bars"}


def find_player() -> tuple[list[str] | None, str]:
    """The command that plays a WAV file here, or None with the reason: over SSH the sound
    would come out of the remote machine, so it is not played."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return None, "SSH: sound would play on the remote machine"
    for name, args in PLAYERS:
        found = shutil.which(name)
        if found:
            return [found, *args], name
    return None, "no audio player found"  # (any of PLAYERS)


def dim(colour: str, amount: float = 0.45) -> str:
    """The colour mixed toward the empty background: the prompt's notes, drawn quieter."""
    a = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(EMPTY[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x * (1 - amount) + y * amount):02x}" for x, y in zip(a, b))


def valid_notes(raw) -> list[tuple[int, int, int, int]]:
    """[[pitch, start, end, voice], ...] from an untrusted file; anything else is dropped."""
    out = []
    for n in raw if isinstance(raw, list) else ():
        if isinstance(n, list) and len(n) == 4 and all(isinstance(x, int) and not isinstance(x, bool) for x in n) \
                and 0 <= n[0] < 128 and 0 <= n[1] < n[2] and 0 <= n[3] < len(VOICE_COLOURS):
            out.append(tuple(n))
    return out


class Layout:
    """Where steps and pitches land on a canvas of ``cols`` x ``rows`` cells (each cell two
    pitch slots, one above the other)."""

    def __init__(self, steps: int, low: int, high: int, cols: int, rows: int):
        self.steps, self.cols, self.rows = steps, max(1, cols), max(1, rows)
        slots = 2 * self.rows
        span = max(MIN_PITCHES, high - low + 1)
        # Room to spare: a semitone gets `thick` slots (a whole cell when 2); otherwise a
        # slot holds one or two neighbouring semitones.
        self.thick = max(1, slots // span)
        self.span = max(span, slots // self.thick)  # the semitones shown
        self.low = (low + high + 1) // 2 - self.span // 2  # the music in the middle
        self.widen = max(1, self.cols // steps) if steps <= self.cols else 1  # columns per step
        self.per_col = 1 if steps <= self.cols else -(-steps // self.cols)  # steps per column
        self.used = steps * self.widen if steps <= self.cols else -(-steps // self.per_col)

    def col(self, step: int) -> int:
        return step * self.widen if self.per_col == 1 else step // self.per_col

    def last_col(self, end: int) -> int:
        """The last column a note ending (exclusively) at step ``end`` covers."""
        return end * self.widen - 1 if self.per_col == 1 else (end - 1) // self.per_col

    def slot(self, pitch: int) -> int | None:
        """The lowest half-cell row of a pitch, 0 at the bottom (None: outside the roll)."""
        if not self.low <= pitch < self.low + self.span:
            return None
        if self.thick > 1:
            return (pitch - self.low) * self.thick
        return (pitch - self.low) * 2 * self.rows // self.span

    def slots(self, pitch: int) -> range:
        """Every half-cell row a pitch's notes fill."""
        first = self.slot(pitch)
        return range(0) if first is None else range(first, first + self.thick)

    def step_at(self, col: int) -> int:
        return col // self.widen if self.per_col == 1 else col * self.per_col


def roll_text(data: dict, width: int, height: int, cursor: float | None = None, swapped: bool = False) -> Text:
    """The roll as text: ``height`` lines of ``width`` cells (pitch labels, the notes,
    and a line of bar numbers when there is room)."""
    main, other = valid_notes(data.get("notes")), valid_notes((data.get("other") or {}).get("notes"))
    if swapped and other:
        main, other = other, main
    steps = data.get("steps") if isinstance(data.get("steps"), int) and data["steps"] > 0 else 16
    steps = max([steps] + [n[2] for n in main + other])
    prompt = data.get("prompt") if isinstance(data.get("prompt"), int) else 0
    pitches = [n[0] for n in main + other] or [60]
    numbers = height >= 8
    rows = max(1, height - (1 if numbers else 0))
    lay = Layout(steps, min(pitches), max(pitches), width - GUTTER, rows)
    cells: dict[tuple[int, int], str] = {}  # (column, slot) -> colour
    for notes, colour_of in ((other, lambda n, first: OTHER),
                             (main, lambda n, first: _note_colour(n, first, prompt))):
        for n in sorted(notes, key=lambda n: -n[3]):  # the soprano drawn last: on top
            first = lay.col(n[1])
            for slot in lay.slots(n[0]):
                for c in range(first, lay.last_col(n[2]) + 1):
                    cells[(c, slot)] = colour_of(n, c == first)
    cursor_col = lay.col(int(cursor)) if cursor is not None else None
    # Each bar line (and beat, when a step has columns to spare) in the column its first
    # step lands in: the same column as the bar's number below. (Testing each column's own
    # first step missed bar lines when a column held 3 steps: bar 2 started mid-column.)
    bar_cols = {lay.col(step) for step in range(0, steps, 16)}
    beat_cols = {lay.col(step) for step in range(0, steps, 4)} if lay.widen > 1 else set()
    out = Text(no_wrap=True, overflow="crop")
    for r in range(rows):
        top, bottom = 2 * (rows - 1 - r) + 1, 2 * (rows - 1 - r)
        out.append(_label(lay, top, bottom), style="dim")
        run, run_style = "", ""
        for c in range(min(lay.used, width - GUTTER)):
            ground = BAR if c in bar_cols else BEAT if c in beat_cols else EMPTY
            hi, lo = cells.get((c, top), ground), cells.get((c, bottom), ground)
            if c == cursor_col:
                hi = CURSOR_NOTE if hi not in (BAR, BEAT, EMPTY) else CURSOR
                lo = CURSOR_NOTE if lo not in (BAR, BEAT, EMPTY) else CURSOR
            style = f"{hi} on {lo}"
            if style != run_style and run:
                out.append(run, style=run_style)
                run = ""
            run, run_style = run + "▀", style
        if run:
            out.append(run, style=run_style)
        out.append("\n")
    if numbers:  # each bar's number starts in its bar line's column
        line = [" "] * lay.used
        for bar in range(0, steps, 16):
            label = str(bar // 16 + 1)
            at = lay.col(bar)
            if at + len(label) <= len(line) and all(ch == " " for ch in line[at:at + len(label) + 1]):
                line[at:at + len(label)] = label
        # The gutter apart from the numbers: a screenshot (SVG) drops the leading blanks of
        # a piece of text, which moved every number four columns left, into the bar before.
        out.append(" " * GUTTER)
        out.append("".join(line)[:max(0, width - GUTTER)], style="dim")
    return out


def _note_colour(n: tuple, first: bool, prompt: int) -> str:
    held, onset = VOICE_COLOURS[n[3]]
    colour = onset if first else held
    return dim(colour) if n[1] < prompt else colour


def _label(lay: Layout, top: int, bottom: int) -> str:
    """The name of a C whose slot is in this row (C4 is middle C), else blank."""
    for p in range(lay.low - lay.low % 12, lay.low + lay.span, 12):
        if lay.slot(p) in (top, bottom):
            return f"C{p // 12 - 1}".ljust(GUTTER)
    return " " * GUTTER


def legend(voices: list[str]) -> Text:
    out = Text()
    for v, name in enumerate(voices[:len(VOICE_COLOURS)]):
        out.append("■ ", style=VOICE_COLOURS[v][1])
        out.append(f"{name}  ", style="dim")
    return out


class PianoRoll(View, Vertical):
    """Boxes for the request's settings (when it has any), a status line, the roll."""

    DEFAULT_CSS = """
    PianoRoll { padding: 0 1; }
    PianoRoll .settings { height: 1; }
    PianoRoll .settings Label { padding: 0 1 0 2; text-style: bold; }
    PianoRoll .settings Label.first { padding: 0 1 0 0; }
    PianoRoll .settings Input { width: 7; }
    PianoRoll #roll-head { height: 3; }  /* the caption, the voices and keys, a message */
    PianoRoll #roll-canvas { height: 1fr; }
    """
    BINDINGS = [
        Binding("space", "play", "Play/stop", tooltip="Play the piece (sound where a player is found)"),
        Binding("e", "export", "Export MIDI+WAV", tooltip="Write the piece as .mid and .wav in the current folder"),
        Binding("b", "swap", "Before/after", tooltip="Show the other version: before the change, or the real one"),
        Binding("r", "regenerate", "New version", tooltip="Ask the model for a new version with these settings"),
        Binding("escape", "leave_box", "Leave the box", show=False),
    ]
    can_focus = True

    def __init__(self, artifact: str, placeholder: str = "", action: str = "", specs: list[ParamSpec] = (),
                 values: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.artifact, self.placeholder, self.action = artifact, placeholder, action
        self.specs = {s.name: s for s in specs}
        self.values = {s.name: coerce(s, (values or {}).get(s.name, s.default)) for s in specs}
        self.data: dict | None = None
        self.caption = ""
        self.source: ArtifactUpdate | None = None  # where the shown piece came from (for file names)
        self.swapped = False
        self.request = 0
        self.playing: dict | None = None  # the piece being played (newer ones wait)
        self._clock: Timer | None = None  # the cursor's clock, ticking only while playing
        self.step_s = 0.1875  # seconds a 16th-note step lasts while playing
        self.play_start = 0.0
        self.cursor: float | None = None
        self.process: subprocess.Popen | None = None
        self.note = ""  # the status line's message

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> PianoRoll:
        return cls(pane.artifact, placeholder(pane.placeholder), pane.action, [specs[n] for n in pane.settings],
                   values, id=pane.id)

    def compose(self) -> ComposeResult:
        if self.specs:
            with Horizontal(classes="settings"):
                for i, name in enumerate(self.specs):
                    yield Label(LABELS.get(name, name), classes="first" if i == 0 else None)
                    yield Input(str(self.values[name]), id=f"roll-{name}", tooltip=self.specs[name].help, compact=True)
        yield Static(Text(self.placeholder, style="dim"), id="roll-head")
        yield Static("", id="roll-canvas")

    def on_mount(self) -> None:
        self._clock = self.set_interval(1 / FPS, self._tick, pause=True)  # ticks only while playing

    def on_unmount(self) -> None:
        self._stop_sound()

    def focus_input(self) -> bool:
        self.focus()
        return True

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "swap":
            return True if self.data and (self.data.get("other") or {}).get("notes") else None
        if action == "regenerate":
            return True if self.action else None
        if action in ("play", "export"):
            return True if self.data else None
        return True

    def action_leave_box(self) -> None:
        leave_box(self)

    def set_values(self, values: dict) -> None:
        for name, spec in self.specs.items():
            value = coerce(spec, values.get(name, spec.default))
            self.values[name] = value
            box = self.query_one(f"#roll-{name}", Input)
            if not box.has_focus:
                box.value = str(value)

    # -- the piece --
    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if data is None:
            return
        request = data.get("request", 0)
        if not isinstance(request, int) or request < self.request:
            return  # the answer to an earlier request, or a periodic view after a request
        if "error" in data:
            self._say(str(data["error"]), error=True)
            return
        if not valid_notes(data.get("notes")) and not isinstance(data.get("steps"), int):
            return
        self.data, self.source = data, update
        self.caption = f"{update.caption or data.get('label', '')} · step {update.step}"
        if self.note.startswith("composing"):
            self.note = ""
        self.refresh_bindings()
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def on_show(self) -> None:
        self._draw()  # drawn while its tab was hidden, it had no size to fit

    def watch_has_focus(self, has_focus: bool) -> None:
        super().watch_has_focus(has_focus)
        self._draw()  # the keys line says how to reach the roll when it has not the focus

    def _draw(self) -> None:
        data = self.playing or self.data
        if not data:
            return
        head = Text(self.caption, style="bold", no_wrap=True, overflow="ellipsis")
        other = data.get("other") if isinstance(data.get("other"), dict) else {}
        if other.get("notes") is not None:
            label = str(other.get("label", "other"))
            head.append(f" · showing {label}, b: back" if self.swapped else f" · b: {label}", style="dim")
        keys = legend(data.get("voices") or ["soprano", "alto", "tenor", "bass"])
        # The keys work once the roll has the focus; on a tab whose charts take it, say how.
        reach = "" if self.has_focus else "Tab here: "
        keys.append(reach + "space plays · e writes MIDI+WAV" + (" · r new version" if self.action else ""), style="dim")
        # A message (where the files went, an error) has a line of its own: at 80 columns,
        # after the legend, "wrote ... in FOLDER" was cut to "wrote".
        status = Text("\n", no_wrap=True, overflow="ellipsis").join(
            [head, keys, Text(self.note, style="bold red" if self.note.startswith("✗") else "dim")])
        self.query_one("#roll-head", Static).update(status)
        canvas = self.query_one("#roll-canvas", Static)
        width, height = canvas.content_size.width, canvas.content_size.height
        if width < GUTTER + 4 or height < 1:
            return  # not laid out yet (a hidden tab): on_show draws it
        canvas.update(roll_text(data, width, height, self.cursor, self.swapped))

    def refused(self, message: str) -> None:
        self._say(message, error=True)

    def _say(self, message: str, error: bool = False) -> None:
        self.note = ("✗ " if error else "") + message
        if self.data or error:
            self._draw()
        else:
            self.query_one("#roll-head", Static).update(Text(self.note, style="bold red" if error else "dim"))

    def shown_notes(self) -> list:
        data = self.playing or self.data or {}
        notes = valid_notes(data.get("notes"))
        other = valid_notes((data.get("other") or {}).get("notes"))
        return other if self.swapped and other else notes

    def file_stem(self) -> str:
        """genstudio-<run>-<artifact>-<step>: the run's folder is two levels above the file."""
        if self.source is None:
            return f"genstudio-{self.artifact}"
        run = Path(self.source.path).parent.parent.name
        version = "-before" if self.swapped else ""
        return f"genstudio-{run}-{self.artifact}-{self.source.step:08d}{version}"

    def _tempo(self) -> float:
        """The piece's tempo (quarters a minute), if it is a sane number."""
        from engine.audio import TEMPO

        tempo = (self.data or {}).get("tempo", TEMPO)
        return tempo if isinstance(tempo, (int, float)) and 20 <= tempo <= 400 else TEMPO

    # -- keys --
    def action_swap(self) -> None:
        if self.data and (self.data.get("other") or {}).get("notes") is not None:
            self.swapped = not self.swapped
            self._draw()

    def action_export(self) -> None:
        if self.data:
            self._write_files(self.shown_notes(), self._tempo(), Path.cwd(), self.file_stem(), None)

    def action_play(self) -> None:
        if self.playing is not None:
            self._stop_play()
            return
        if not self.data:
            return
        from engine.audio import step_seconds

        tempo = self._tempo()
        self.playing, self.step_s = self.data, step_seconds(tempo)
        self.play_start = time.monotonic()
        if self._clock is not None:
            self._clock.resume()
        self.cursor = 0.0
        command, why = find_player()
        if command:
            self._say(f"▶ playing with {why} (space stops)")
            wav = Path(tempfile.gettempdir()) / f"genstudio-play-{os.getpid()}.wav"
            self._write_files(self.shown_notes(), tempo, wav.parent, wav.stem, command)
        else:
            self._say(f"▶ the cursor plays silently ({why})")
            self._write_files(self.shown_notes(), tempo, Path.cwd(), self.file_stem(), None)

    def action_regenerate(self) -> None:
        if not self.action:
            return
        settings = {}
        for name, spec in self.specs.items():
            box = self.query_one(f"#roll-{name}", Input)
            try:
                settings[name] = parse_value(spec, box.value)
            except ConfigError as e:
                self._say(str(e), error=True)
                box.focus()
                return
        self.values.update(settings)
        self.request += 1
        self._say("composing …")
        self.ask_engine(AskEngine(self.action, self.artifact, {"request": self.request}, settings,
                                    "compose music"))

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_regenerate()

    # -- sound and files --
    @work(thread=True, exclusive=True, exit_on_error=False, group="roll-sound")
    def _write_files(self, notes: list, tempo: float, folder: Path, stem: str, player: list[str] | None) -> None:
        """Write the piece (a thread: the synthesiser takes a moment for a long piece).
        With ``player``: only the WAV, then play it; otherwise MIDI and WAV, and say where."""
        from engine.audio import write_piece

        try:
            wav = write_piece(notes, folder / f"{stem}.wav", tempo)
            if player:
                self.app.call_from_thread(self._start_sound, [*player, str(wav)])
                return
            mid = write_piece(notes, folder / f"{stem}.mid", tempo)
        except (OSError, ValueError) as e:
            self.app.call_from_thread(self._say, f"could not write the piece: {e}", True)
            return
        where = f"wrote to {folder}: {mid.name} and {wav.name}"  # the folder first: a cut keeps it
        prefix = f"{self.note} " if self.playing is not None else ""
        self.app.call_from_thread(self._say, prefix + where)
        # Also where every message of the studio appears (over SSH, the files are the sound).
        self.app.call_from_thread(self.app.notify, where, title="Music saved", timeout=8)

    def _start_sound(self, command: list[str]) -> None:
        if self.playing is None:
            return  # stopped while the file was written
        self._stop_sound()
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            self._say(f"the player failed to start ({e}); the cursor plays silently", error=True)
            return
        self.play_start = time.monotonic()  # the sound starts now: keep the cursor with it

    def _stop_sound(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        self.process = None

    def _stop_play(self) -> None:
        self._stop_sound()
        self.playing, self.cursor = None, None
        if self._clock is not None:
            self._clock.pause()
        if self.note.startswith("▶"):
            self.note = ""
        self._draw()

    def _tick(self) -> None:
        if self.playing is None:
            return
        self.cursor = (time.monotonic() - self.play_start) / self.step_s
        end = self.playing.get("steps", 0) if isinstance(self.playing.get("steps"), int) else 0
        if self.cursor >= max(end, max((n[2] for n in self.shown_notes()), default=0)):
            self._stop_play()
            return
        self._draw()
