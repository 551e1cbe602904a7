"""The catalog: families and their lessons, with the learner's progress."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from studio.lessons import Lesson, load_lessons
from studio.progress import lesson_badge, load_progress


class CatalogScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_lesson", "Open lesson", tooltip="Open the highlighted lesson", show=True),
        Binding("R", "app.show_runs", "Runs", tooltip="Earlier runs: attach, resume"),
        Binding("q", "app.quit", "Quit", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.lessons: list[Lesson] = load_lessons()

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("GenStudio", "bold"), "  learn generative AI by training it yourself"), id="title-bar")
        with Horizontal(id="catalog-body"):
            with Vertical(id="catalog-left"):
                yield OptionList(id="lesson-list")
                yield Static("↑/↓ choose a lesson, Enter opens it. Each lesson trains a real model on data "
                             "built into GenStudio: no download, no GPU needed.", id="catalog-hint")
            with VerticalScroll(id="lesson-detail"):
                yield Static(id="detail-text")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_list()
        self.query_one(OptionList).focus()

    def on_screen_resume(self) -> None:
        self.refresh_list()

    def refresh_list(self) -> None:
        progress = load_progress()
        ol = self.query_one(OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        family = None
        for lesson in self.lessons:
            if lesson.family != family:
                family = lesson.family
                ol.add_option(Option(Text(family.upper(), style="bold $accent"), disabled=True))
            badge = lesson_badge(lesson.id, progress)
            style = "green" if badge.startswith("★") else ("cyan" if badge.startswith("✓") else "dim")
            ol.add_option(Option(Text.assemble("  ", (lesson.title, "bold"), "  ", (badge, style)), id=lesson.id))
        ol.highlighted = highlighted if highlighted is not None else 1
        self.show_detail()

    def current(self) -> Lesson | None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            return None
        option = ol.get_option_at_index(ol.highlighted)
        return next((l for l in self.lessons if l.id == option.id), None)

    @on(OptionList.OptionHighlighted)
    def show_detail(self) -> None:
        lesson = self.current()
        detail = self.query_one("#detail-text", Static)
        if lesson is None:
            detail.update("No lessons found.")
            return
        sources = "\n".join(f"  • {s['book']}, ch. {s['chapter']}: {s.get('topic', '')}" for s in lesson.sources)
        detail.update(Text.assemble(
            (lesson.title + "\n", "bold"), (lesson.family + "\n\n", "dim"), lesson.summary + "\n\n",
            ("Sources\n", "bold"), sources + "\n\n",
            ("Progress: ", "bold"), lesson_badge(lesson.id) + "\n\n",
            ("Press Enter to open it. ", "italic"),
            (f"Headless: genstudio train {lesson.recipe}", "dim"),
        ))

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        self.action_open_lesson()

    def action_open_lesson(self) -> None:
        lesson = self.current()
        if lesson is not None:
            self.app.open_lesson(lesson.id)
