"""After a passed quiz: the next lesson of the path, offered (Enter opens it, Esc stays)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from studio.lessons import Lesson


class NextLesson(ModalScreen[bool]):
    """Returns True when the learner chose to open the next lesson."""

    DEFAULT_CSS = """
    NextLesson { align: center middle; }
    NextLesson > Vertical { width: 64; max-width: 95%; height: auto; border: round $success; background: $surface;
                            padding: 1 2; }
    """
    BINDINGS = [Binding("enter", "choose(True)", "Open it"), Binding("escape", "choose(False)", "Stay here")]

    def __init__(self, done: Lesson, upcoming: Lesson | None, trained: bool = True) -> None:
        super().__init__()
        self.done, self.upcoming, self.trained = done, upcoming, trained

    def compose(self) -> ComposeResult:
        if self.trained:
            text = Text.assemble(("★ Quiz passed: ", "bold green"), f"you have finished “{self.done.title}”.\n\n")
        else:  # the quiz can come first; the lesson is done when a run also reaches its bar
            bar = self.done.bar.describe() if self.done.bar else ""
            text = Text.assemble(("★ Quiz passed. ", "bold green"), f"“{self.done.title}” is done once a run of it "
                                 f"also reaches its bar ({bar}): press s in the lesson to train one.\n\n")
        if self.upcoming is None:
            text.append("You have passed every quiz of the path. R shows your runs; the catalog lets you review any "
                        "lesson.", style="")
        else:
            minutes = f" (about {self.upcoming.minutes} min of training)" if self.upcoming.minutes else ""
            text.append_text(Text.assemble("Next in the path: ", (self.upcoming.title, "bold"), minutes, "\n",
                                           (self.upcoming.summary, "dim"), "\n\n",
                                           ("Enter", "bold"), " opens it · ", ("Esc", "bold"), " stays here"))
        with Vertical():
            yield Static(text, id="next-text")

    def action_choose(self, go: bool) -> None:
        self.dismiss(go and self.upcoming is not None)
