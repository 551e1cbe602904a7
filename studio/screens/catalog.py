"""The catalog: families and their lessons, with the learner's progress."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from studio.lessons import SKIPPED, Lesson, load_lessons, next_lesson
from studio.progress import lesson_badge, load_progress

NEXT_STYLE = "bold #ffa62b"  # the next lesson's marker (rich renders rows and the detail: no theme $variables)


def duration(lesson: Lesson) -> str:
    """The lesson's training time in a few characters ("~2 min"), or "" when unknown."""
    return f"~{lesson.minutes} min" if lesson.minutes else ""


def training_time(lesson: Lesson) -> str:
    """How long the default preset trains, as the detail pane says it ("" when not measured)."""
    if not lesson.minutes:
        return ""
    return (f"{duration(lesson)} at most with the default settings on one CPU core (more cores or a GPU are "
            "faster); you can stop any time and keep the model")


def short_badge(badge: str) -> str:
    """The progress badge in a few characters, for the list (the detail shows it in full)."""
    if badge.startswith("★"):
        return "★ passed"
    if "trained" in badge:
        return "✓ trained"
    if "quiz " in badge:
        return "✓ " + badge.rsplit("quiz ", 1)[1]
    return "✓ opened" if badge.startswith("✓") else badge


def lesson_row(lesson: Lesson, badge: str, place: int, is_next: bool = False) -> Table:
    """One lesson in the list: its place on the path, its title (wrapped when narrow, never
    cut), how long it trains and the learner's progress badge, both on the title's first
    line. The next lesson to take is marked with an arrow and "next"."""
    badge = short_badge(badge)
    if is_next:  # the arrow, with how far the learner has got: "▶ next", "▶ opened", "▶ 3/5"
        badge = "▶ next" if badge == "new" else "▶ " + badge.removeprefix("✓ ")
    style = (NEXT_STYLE if is_next else "green" if badge.startswith("★") else "cyan" if badge.startswith("✓")
             else "dim")
    row = Table.grid(expand=True, padding=(0, 0, 0, 1), pad_edge=True)
    row.add_column(no_wrap=True, width=4, justify="right")
    row.add_column(ratio=1)
    row.add_column(no_wrap=True, justify="right")
    row.add_column(no_wrap=True, width=10)
    row.add_row(Text(f"{place}.", style=NEXT_STYLE if is_next else "dim"),
                Text(lesson.title, style="bold"),
                Text(duration(lesson), style="dim"), Text(badge, style=style))
    return row


class CatalogScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_lesson", "Open lesson", tooltip="Open the highlighted lesson", show=True),
        Binding("R", "app.show_runs", "Runs", tooltip="Earlier runs: attach, resume"),
        Binding("v", "review", "Review", tooltip="Review cards from the lessons you opened (spaced repetition)"),
        Binding("q", "app.quit", "Quit", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.lessons: list[Lesson] = load_lessons()
        self.next: Lesson | None = None  # the first lesson of the path whose quiz is not passed

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
        if SKIPPED:  # a lesson file that cannot be read is left out, not fatal
            names = ", ".join(SKIPPED)
            self.notify(f"Left out {len(SKIPPED)} lesson file(s) that could not be read: {names}. "
                        f"{next(iter(SKIPPED.values()))}", severity="warning", timeout=15)

    def on_screen_resume(self) -> None:
        self.refresh_list()

    def refresh_list(self) -> None:
        progress = load_progress()
        ol = self.query_one(OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        self.next = next_lesson(self.lessons, progress)
        family, next_index = None, None
        for place, lesson in enumerate(self.lessons, start=1):
            if lesson.family != family:
                family = lesson.family
                ol.add_option(Option(Text(family.upper(), style="bold $accent"), disabled=True))
            is_next = self.next is not None and lesson.id == self.next.id
            if is_next:
                next_index = ol.option_count
            ol.add_option(Option(lesson_row(lesson, lesson_badge(lesson.id, progress), place, is_next), id=lesson.id))
        # The learner's place on the path when the catalog opens; where they were when it returns.
        ol.highlighted = highlighted if highlighted is not None else (next_index if next_index is not None else 1)
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
        titles = {l.id: l.title for l in self.lessons}
        before = ", ".join(titles.get(p, p) for p in lesson.prerequisites) or "nothing: start here"
        when = training_time(lesson)
        detail.update(Text.assemble(
            (lesson.title + "\n", "bold"), (lesson.family + "\n\n", "dim"),
            (("▶ Next on your path\n\n", NEXT_STYLE) if self.next is not None and lesson.id == self.next.id else ""),
            lesson.summary + "\n\n",
            ("Take first: ", "bold"), before + "\n",
            ("Progress: ", "bold"), lesson_badge(lesson.id) + "\n",
            *((("Training: ", "bold"), when + "\n") if when else ()), "\n",
            ("Sources\n", "bold"), sources + "\n\n",
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

    def action_review(self) -> None:
        from studio.screens.review import ReviewScreen

        self.app.push_screen(ReviewScreen())
