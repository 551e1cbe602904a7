"""The lesson's quiz: multiple choice, feedback with an explanation for each question."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, RadioButton, RadioSet, Static

from studio.lessons import QuizQuestion
from studio.messages import QuizFinished


class QuizPanel(VerticalScroll):
    DEFAULT_CSS = """
    QuizPanel { padding: 0 1; }
    QuizPanel .question { margin-top: 1; text-style: bold; }
    QuizPanel RadioSet { width: 100%; }
    QuizPanel RadioButton { width: 100%; height: auto; text-wrap: wrap; text-overflow: fold; }
    QuizPanel .question { width: 100%; }
    QuizPanel .feedback { margin-bottom: 1; }
    QuizPanel .right { color: $success; }
    QuizPanel .wrong { color: $error; }
    QuizPanel #quiz-buttons { height: 3; margin-top: 1; }
    QuizPanel #quiz-score { margin-left: 2; padding-top: 1; }
    """

    def __init__(self, lesson_id: str, questions: list[QuizQuestion], **kwargs) -> None:
        super().__init__(**kwargs)
        self.lesson_id = lesson_id
        self.questions = questions

    def compose(self) -> ComposeResult:
        yield Static(f"{len(self.questions)} questions. Pick an answer for each, then check.", classes="intro")
        for i, q in enumerate(self.questions):
            yield Static(f"{i + 1}. {q.question}", classes="question", markup=False)
            with RadioSet(id=f"q{i}"):
                for choice in q.choices:
                    yield RadioButton(choice)
            yield Static("", id=f"fb{i}", classes="feedback")
        with Horizontal(id="quiz-buttons"):
            yield Button("Check answers", id="quiz-check", variant="primary")
            yield Static("", id="quiz-score")

    @on(Button.Pressed, "#quiz-check")
    def check(self) -> None:
        score = 0
        answered = 0
        for i, q in enumerate(self.questions):
            chosen = self.query_one(f"#q{i}", RadioSet).pressed_index
            fb = self.query_one(f"#fb{i}", Static)
            fb.remove_class("right", "wrong")
            if chosen < 0:
                fb.update("(no answer yet)")
                continue
            answered += 1
            if chosen == q.answer:
                score += 1
                fb.update(f"✓ Right. {q.explain}")
                fb.add_class("right")
            else:
                fb.update(f"✗ Not quite: the answer is “{q.choices[q.answer]}”. {q.explain}")
                fb.add_class("wrong")
        total = len(self.questions)
        verdict = "passed: well done!" if score == total else "read the lesson again and retry"
        self.query_one("#quiz-score", Static).update(f"{score}/{total} right; {verdict}")
        if answered:
            self.post_message(QuizFinished(self.lesson_id, score, total))
