"""Review: spaced-repetition cards from the lessons the learner has opened.

A card shows its question first (a quiz question, a glossary term, or a function from a
lesson's code); space shows the answer; 1-4 rate the recall (again, hard, good, easy)
and the next card comes. The cards, the scheduler and the saved file are in
studio/review.py; this screen only shows them."""

from __future__ import annotations

import time

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static

from studio.lessons import load_lessons
from studio.review import (AGAIN, EASY, GOOD, HARD, NEW_PER_DAY, RATINGS, Card, build_deck, due_cards,
                           interval_text, load_states, next_due, opened_lessons, rate, schedule)

KIND_NAMES = {"quiz": "Quiz question", "term": "Glossary term", "code": "Code"}
REFRESH_S = 30.0  # how often a screen with nothing due looks again ("again" cards return in minutes)


class ReviewScreen(Screen):
    CSS_PATH = "review.tcss"
    BINDINGS = [
        Binding("space", "reveal", "Answer", tooltip="Show the answer and its explanation"),
        Binding("1", f"rate({AGAIN})", "Again", tooltip="Forgotten: see it again in a few minutes"),
        Binding("2", f"rate({HARD})", "Hard", tooltip="Recalled with effort: back a little later"),
        Binding("3", f"rate({GOOD})", "Good", tooltip="Recalled: back after a longer gap"),
        Binding("4", f"rate({EASY})", "Easy", tooltip="Recalled at once: back after a much longer gap"),
        Binding("o", "open_lesson", "Lesson", tooltip="Open the lesson this card comes from"),
        Binding("escape", "back", "Back", tooltip="Back to the catalog"),
    ]

    revealed: reactive[bool] = reactive(False, always_update=True, init=False)
    """Whether the current card's answer is showing (the ratings apply only then)."""

    def __init__(self) -> None:
        super().__init__()
        self.titles = {l.id: l.title for l in load_lessons()}
        self.deck: list[Card] = []
        self.due: list[Card] = []  # what to review now, the current card first
        self.card: Card | None = None
        self.reviewed = 0  # cards rated in this visit

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("GenStudio", "bold"), "  ›  review"), id="title-bar")
        yield Static(id="review-status")
        with VerticalScroll(id="review-card"):
            yield Static(id="card-source")
            yield Static(id="card-prompt")
            yield Static(id="card-code")
            yield Static(id="card-answer")
        yield Static(id="review-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(REFRESH_S, self._look_again)

    def on_screen_resume(self) -> None:
        self.reload()  # back from a lesson: it may have brought new cards

    def reload(self) -> None:
        """Rebuild the deck from the opened lessons and show what is due; the card on show
        stays while it is still due."""
        self.deck = build_deck(opened_lessons())
        self.due = due_cards(self.deck, load_states(), time.time())
        if self.card is not None and self.card.id in {c.id for c in self.due}:
            self.due.sort(key=lambda c: c.id != self.card.id)
            self._show_status()
            return
        self.show_next()

    def _look_again(self) -> None:
        if self.card is None:
            self.reload()

    def show_next(self) -> None:
        self.card = self.due[0] if self.due else None
        self.revealed = False  # always_update: the new card is drawn even when it was False
        self._show_status()
        self.query_one("#review-card", VerticalScroll).scroll_home(animate=False)

    def _show_status(self) -> None:
        lessons = len({c.lesson for c in self.deck})
        status = Text.assemble((f"{len(self.due)} due now", "bold"),
                               f"  ·  {len(self.deck)} cards from {lessons} lesson{'s' * (lessons != 1)}")
        if self.reviewed:
            status.append(f"  ·  {self.reviewed} reviewed")
        self.query_one("#review-status", Static).update(status)

    def watch_revealed(self, revealed: bool) -> None:
        card = self.card
        source, prompt, code, answer = (self.query_one(f"#card-{n}", Static)
                                        for n in ("source", "prompt", "code", "answer"))
        hint = self.query_one("#review-hint", Static)
        code.display = bool(card and card.code)
        answer.display = bool(card and revealed)
        if card is None:
            source.update("")
            prompt.update(self._nothing_due())
            hint.update("")
            self.refresh_bindings()
            return
        source.update(Text(f"{KIND_NAMES[card.kind]} · {self.titles.get(card.lesson, card.lesson)}", style="dim"))
        prompt.update(Text(card.prompt, style="bold"))
        if card.code:
            code.update(Group(Text(f"{card.path}, line {card.first_line}", style="dim"),
                              Syntax(card.code, "python", line_numbers=True, start_line=card.first_line,
                                     theme="monokai", word_wrap=True)))
        if revealed:
            label = "From the lesson: " if card.kind == "code" else ""
            more = f"\n{card.more}" if card.more else ""
            answer.update(Text.assemble((label, "dim"), (card.answer, "green"), (more, "italic")))
            self.call_after_refresh(answer.scroll_visible, animate=False)
            hint.update(self._rating_hint(card))
        else:
            hint.update(Text("Recall the answer, then press space to see it.", style="dim"))
        self.refresh_bindings()

    def _rating_hint(self, card: Card) -> Text:
        """The four ratings, each with when the card would come back."""
        now = time.time()
        state = load_states().get(card.id)
        hint = Text("Rate it:  ", style="dim")
        for rating, name in RATINGS.items():
            wait = interval_text(schedule(state, rating, now).due - now)
            hint.append_text(Text.assemble((str(rating), "bold"), f" {name} ", (f"({wait})  ", "dim")))
        return hint

    def _nothing_due(self) -> Text:
        if not self.deck:
            return Text.assemble(
                ("No cards yet.\n\n", "bold"),
                "Review cards come from the lessons you have opened: their quiz questions, the terms "
                "they use and the code they link to. Open a lesson first: press Esc for the catalog, "
                "choose a lesson and press Enter, then come back here with v.")
        now = time.time()
        states = load_states()
        text = Text("Nothing to review now.\n\n", style="bold")
        waiting_new = sum(1 for c in self.deck if c.id not in states)
        if waiting_new:
            text.append(f"{waiting_new} new cards wait for tomorrow ({NEW_PER_DAY} new cards a day). ")
        when = next_due(self.deck, states, now)
        if when is not None:
            text.append(f"The next card is due in {interval_text(when - now)}. ")
        text.append("Open another lesson for more cards.")
        return text

    # -- actions --
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Greys out (None) what cannot run now: the ratings before the answer shows."""
        if action == "reveal":
            return True if self.card and not self.revealed else None
        if action == "rate":
            return True if self.card and self.revealed else None
        if action == "open_lesson":
            return True if self.card else None
        return True

    def action_reveal(self) -> None:
        if self.card is not None:
            self.revealed = True

    def action_rate(self, rating: int) -> None:
        if self.card is None or not self.revealed:
            return
        rate(self.card.id, rating)
        self.reviewed += 1
        self.due = due_cards(self.deck, load_states(), time.time())
        self.show_next()

    def action_open_lesson(self) -> None:
        if self.card is not None:
            self.app.open_lesson(self.card.lesson)

    def action_back(self) -> None:
        self.app.pop_screen()
