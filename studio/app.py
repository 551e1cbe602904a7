"""The GenStudio Textual app: screens, global bindings, and the graphics mode."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from studio.commands import ScreenActions
from studio.graphics import detect_mode_with_reason
from studio.screens.catalog import CatalogScreen
from studio.screens.lesson import LessonScreen
from studio.screens.review import ReviewScreen
from studio.screens.runs import RunsScreen

MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmall(ModalScreen):
    """Shown while the terminal is smaller than the studio can draw."""

    def compose(self):
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self.show(self.app.size)

    def show(self, size) -> None:
        self.query_one(Static).update(
            f"The terminal is {size.width}x{size.height}; GenStudio needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\n"
            "Make the window larger (training keeps going)."
        )


class GenStudioApp(App):
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {ScreenActions}
    TITLE = "GenStudio"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, graphics: str = "auto", lesson: str | None = None, attach: str | None = None,
                 review: bool = False) -> None:
        super().__init__()
        self.graphics_mode, self.graphics_reason = detect_mode_with_reason(graphics)
        self._lesson = lesson
        self._attach_to = attach
        self._review = review  # open on the Review screen (`genstudio review`)

    def on_mount(self) -> None:
        self.push_screen(CatalogScreen())
        if self._attach_to:
            from engine.rundir import RunDir
            from studio.lessons import lesson_for_recipe

            cfg = RunDir(self._attach_to).read_config()
            lesson = cfg.get("lesson") or getattr(lesson_for_recipe(cfg["recipe"]), "id", None)
            if lesson is None:
                self.notify(f"No lesson shows recipe {cfg['recipe']!r}", severity="error")
            else:
                self.open_lesson(lesson, attach=self._attach_to)
        elif self._lesson:
            self.open_lesson(self._lesson)
        elif self._review:
            self.push_screen(ReviewScreen())
        self.call_after_refresh(self._check_size)

    def open_lesson(self, lesson_id: str, attach: str | None = None, resume: bool = False) -> Screen:
        screen = LessonScreen(lesson_id, attach=attach, resume=resume)
        self.push_screen(screen)
        return screen

    def action_show_runs(self) -> None:
        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen())

    def on_resize(self, event) -> None:
        # The event's size: self.size can still be the old one while the resize is handled.
        self._check_size(event.size)

    def _check_size(self, size=None) -> None:
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        top = self.screen
        if small and not isinstance(top, TooSmall):
            self.push_screen(TooSmall())
        elif small:
            top.show(size)
        elif isinstance(top, TooSmall):
            self.pop_screen()
