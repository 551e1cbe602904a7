"""Scrubber: the keys and the play clock of a view that steps through numbered frames (the
denoising timeline, the pixel-by-pixel drawing). A subclass says how many frames there are
and how to show one; the stepping, jumping and playing are here, once."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer

from studio.widgets.view import View


class Scrubber(View, Vertical):
    """←/→ one frame, shift+←/→ or PgUp/PgDn a big step, Home/End the ends, space plays.

    Subclasses implement :attr:`frames` (how many there are now) and :meth:`_show` (draw
    :attr:`frame`), and may set :attr:`big_step` and :attr:`play_stride`. While playing,
    the view advances ``play_stride`` frames ``PLAY_FPS`` times a second and stops at the
    last frame."""

    BINDINGS = [
        Binding("left", "move(-1)", "Step back"),
        Binding("right", "move(1)", "Step on"),
        Binding("shift+left,pageup", "page(-1)", "Big step back", show=False),
        Binding("shift+right,pagedown", "page(1)", "Big step on", show=False),
        Binding("space", "play", "Play/pause"),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]
    PLAY_FPS = 6
    can_focus = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame = 0
        self._playing = False
        self._clock: Timer | None = None

    def on_mount(self) -> None:
        # The clock ticks only while playing: an idle timer would wake the studio (and take
        # a slice of a core from the training beside it) several times a second for nothing.
        self._clock = self.set_interval(1 / self.PLAY_FPS, self._tick, pause=not self._playing)

    @property
    def playing(self) -> bool:
        return self._playing

    @playing.setter
    def playing(self, value: bool) -> None:
        self._playing = value
        if self._clock is not None:
            self._clock.resume() if value else self._clock.pause()

    def focus_input(self) -> bool:
        self.focus()
        return True

    @property
    def frames(self) -> int:
        """How many frames can be shown now."""
        return 0

    @property
    def big_step(self) -> int:
        """Frames moved by shift+←/→ and PgUp/PgDn."""
        return max(1, self.frames // 10)

    @property
    def play_stride(self) -> int:
        """Frames advanced at each tick of the play clock."""
        return 1

    def _show(self) -> None:
        """Draw :attr:`frame` (clamp it to the frames there are)."""

    def action_move(self, delta: int) -> None:
        self.playing = False
        self.frame += delta
        self._show()

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.big_step)

    def action_jump(self, where: int) -> None:
        self.playing = False
        self.frame = 0 if where == 0 else self.frames - 1
        self._show()

    def action_play(self) -> None:
        if not self.frames:
            return
        if not self.playing and self.frame >= self.frames - 1:
            self.frame = 0  # replay from the start
        self.playing = not self.playing
        self._show()

    def _tick(self) -> None:
        if not self.playing:
            return
        if self.frame >= self.frames - 1:
            self.playing = False
        else:
            self.frame = min(self.frames - 1, self.frame + self.play_stride)
        self._show()
