"""The lesson's quiz: multiple choice, feedback with an explanation for each question.

The choices are shuffled for every attempt (when the quiz is built and on "Try again"), so
a learner who retries has to read the choices again rather than remember a position.
``order[i][j]`` is the original index (in the lesson file) of the choice shown j-th under
question i; checking maps the pressed button back through it. Every checked answer is
recorded with its time (studio.progress.record_answers), not only the best score.
"""

from __future__ import annotations

import random
import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, RadioButton, RadioSet, Static

from studio.lessons import QuizQuestion
from studio.messages import QuizFinished
from studio.progress import record_answers


def shuffled(n: int, rng: random.Random, avoid: list[int] | None = None) -> list[int]:
    """A random order of range(n); different from ``avoid`` whenever n > 1, so a retry
    never shows a question's choices in the order the learner just saw."""
    order = list(range(n))
    while True:
        rng.shuffle(order)
        if n < 2 or order != avoid:
            return order


class QuizPanel(VerticalScroll):
    DEFAULT_CSS = """
    QuizPanel { padding: 0 1; }
    QuizPanel .question { margin-top: 1; text-style: bold; }
    QuizPanel RadioSet { width: 100%; }
    QuizPanel RadioButton { width: 100%; height: auto; text-wrap: wrap; text-overflow: fold; }
    /* Only the question being answered shows a cursor and a bright frame: every question
       used to show its first answer highlighted, so none looked like the one in use. */
    QuizPanel RadioSet:focus { border: tall $accent; }
    QuizPanel RadioSet:blur > RadioButton.-selected > .toggle--label { background: transparent; }
    QuizPanel .question { width: 100%; }
    QuizPanel .question.current { color: $accent; }
    QuizPanel .feedback { margin-bottom: 1; }
    QuizPanel .right { color: $success; }
    QuizPanel .wrong { color: $error; }
    QuizPanel #quiz-score { width: 100%; text-style: bold; }
    QuizPanel #quiz-buttons { height: 3; margin-top: 1; }
    QuizPanel #quiz-retry { margin-left: 1; }
    """

    def __init__(self, lesson_id: str, questions: list[QuizQuestion], rng: random.Random | None = None,
                 **kwargs) -> None:
        """``rng`` shuffles the choices (a seeded one makes the orders repeatable in tests)."""
        super().__init__(**kwargs)
        self.lesson_id = lesson_id
        self.questions = questions
        self.rng = rng or random.Random()
        self.attempt = 1
        self.order: list[list[int]] = [shuffled(len(q.choices), self.rng) for q in questions]
        # What was last recorded for each question in this attempt: checking again without
        # changing an answer records nothing new.
        self._recorded: dict[int, int] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"{len(self.questions)} questions. The one you are on is framed and marked ▶: ↑/↓ choose, "
                     "Enter or space picks; then Tab moves to the next question. Check answers at the end.",
                     classes="intro")
        for i, q in enumerate(self.questions):
            yield Static(f"{i + 1}. {q.question}", classes="question", markup=False)
            with RadioSet(id=f"q{i}"):
                for k in self.order[i]:
                    yield RadioButton(q.choices[k])
            yield Static("", id=f"fb{i}", classes="feedback")
        yield Static("", id="quiz-score")  # above the buttons: in view when Check is pressed
        with Horizontal(id="quiz-buttons"):
            yield Button("Check answers", id="quiz-check", variant="primary")
            yield Button("Try again", id="quiz-retry", disabled=True)

    def button_for(self, question: int, choice: int) -> RadioButton:
        """The radio button showing original choice ``choice`` of question ``question``."""
        buttons = list(self.query_one(f"#q{question}", RadioSet).query(RadioButton))
        return buttons[self.order[question].index(choice)]

    def chosen(self, question: int) -> int | None:
        """The original index of the choice pressed for ``question``, or None."""
        shown = self.query_one(f"#q{question}", RadioSet).pressed_index
        return self.order[question][shown] if shown >= 0 else None

    def on_descendant_focus(self, event) -> None:
        """The question being answered is marked, and its text is scrolled into view with its
        answers (Tab to a question used to show its answers with the question cut off)."""
        focused = event.widget if isinstance(event.widget, RadioSet) else None
        for i, label in enumerate(self.query(".question")):
            current = focused is not None and focused.id == f"q{i}"
            if current != label.has_class("current"):
                label.set_class(current, "current")
                q = self.questions[i]
                label.update(Text(f"{'▶ ' if current else ''}{i + 1}. {q.question}"))
            if current:
                self.scroll_to_region(label.virtual_region.union(focused.virtual_region), animate=False)

    @on(Button.Pressed, "#quiz-check")
    def check(self) -> None:
        score = answered = 0
        answers = []
        now = time.time()
        for i, q in enumerate(self.questions):
            chosen = self.chosen(i)
            fb = self.query_one(f"#fb{i}", Static)
            fb.remove_class("right", "wrong")
            if chosen is None:
                fb.update("(no answer yet)")
                continue
            answered += 1
            right = chosen == q.answer
            if self._recorded.get(i) != chosen:
                answers.append({"question": i, "chosen": chosen, "text": q.choices[chosen], "right": right,
                                "attempt": self.attempt, "time": now})
                self._recorded[i] = chosen
            if right:
                score += 1
                fb.update(f"✓ Right. {q.explain}")
                fb.add_class("right")
            else:
                fb.update(f"✗ Not quite: the answer is “{q.choices[q.answer]}”. {q.explain}")
                fb.add_class("wrong")
        total = len(self.questions)
        verdict = "passed: well done!" if score == total else "read the lesson again and retry"
        self.query_one("#quiz-score", Static).update(f"{score}/{total} right; {verdict}")
        self.query_one("#quiz-retry", Button).disabled = False
        if answers:
            record_answers(self.lesson_id, answers)
        if answered:
            self.post_message(QuizFinished(self.lesson_id, score, total))

    @on(Button.Pressed, "#quiz-retry")
    async def retry(self) -> None:
        """A fresh attempt: new orders, no answers, no feedback, back to the first question."""
        self.attempt += 1
        self.order = [shuffled(len(q.choices), self.rng, avoid=old) for q, old in zip(self.questions, self.order)]
        self._recorded = {}
        await self.recompose()
        self.call_after_refresh(self._back_to_the_top)

    def first_open(self) -> int:
        """The first question with no answer picked (the first when all have one)."""
        for i in range(len(self.questions)):
            if self.query_one(f"#q{i}", RadioSet).pressed_index < 0:
                return i
        return 0

    def focus_input(self) -> bool:
        """Keys go to the first question still open, so ↑/↓ choose at once."""
        if not self.questions:
            return False
        i = self.first_open()
        self.query_one(f"#q{i}", RadioSet).focus(scroll_visible=False)
        if i == 0:  # the instructions stay in view above the first question
            self.scroll_home(animate=False)
        else:  # the question above its answers
            self.scroll_to_widget(self.query(".question")[i], animate=False, top=True)
        return True

    def _back_to_the_top(self) -> None:
        self.scroll_home(animate=False)
        if self.questions:
            self.query_one("#q0", RadioSet).focus(scroll_visible=False)
