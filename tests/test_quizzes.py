"""Quizzes that test understanding, not test-taking: over every lesson, the right answer is
neither given away by being the longest choice nor by sitting in a favourite position, and
each explanation names the section of the lesson that teaches it. Then the quiz widget:
choices shuffled anew for every attempt, and every answer recorded with its time."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from textual.app import App, ComposeResult

from studio.lessons import QuizQuestion, load_lessons
from studio.progress import answer_history, load_progress, progress_path, record_answers
from studio.widgets.quiz import QuizPanel, shuffled

POOLED_LIMIT = 0.4  # over all lessons: at most this share of answers longest, or in one position
LESSON_LIMIT = 2  # per lesson: at most this many answers longest, or in one position

HEADING = re.compile(r"^#{2,6}\s+(.+?)\s*#*\s*$", re.M)  # sections: the title (#) is the whole lesson


def norm(text: str) -> str:
    return " ".join(text.replace("`", "").replace("*", "").lower().split())


def is_longest(q: QuizQuestion) -> bool:
    """The right choice is at least as long as every other: a tie gives nothing away only
    half the time, so it counts against the quiz."""
    return len(q.choices[q.answer]) >= max(len(c) for c in q.choices)


def headings(body: str) -> set[str]:
    return {norm(h) for h in HEADING.findall(body)}


def sections_named(explain: str, sections: set[str]) -> list[str]:
    """The section headings an explanation names: quoted, in brackets, or after "see" or
    "section", as in (see "EMA weights"), (EMA weights) or (section: EMA weights)."""
    text = norm(explain)
    return [h for h in sections
            if re.search(rf"(?:[\"“(]|\bsee |\bsections?:? )\s*{re.escape(h)}\s*[\"”).,;]", text)]


LESSONS = load_lessons()


def test_right_answers_are_not_given_away_over_all_lessons():
    questions = [q for lesson in LESSONS for q in lesson.quiz]
    assert questions
    longest = sum(map(is_longest, questions)) / len(questions)
    position, count = Counter(q.answer for q in questions).most_common(1)[0]
    assert longest <= POOLED_LIMIT, f"the right choice is the longest in {longest:.0%} of {len(questions)} questions"
    assert count / len(questions) <= POOLED_LIMIT, (
        f"choice {position + 1} is right in {count} of {len(questions)} questions")


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.id for l in LESSONS])
def test_right_answers_are_not_given_away_in_a_lesson(lesson):
    longest = [i + 1 for i, q in enumerate(lesson.quiz) if is_longest(q)]
    assert len(longest) <= LESSON_LIMIT, f"{lesson.id}: the right choice is the longest in questions {longest}"
    position, count = Counter(q.answer for q in lesson.quiz).most_common(1)[0]
    assert count <= LESSON_LIMIT, f"{lesson.id}: choice {position + 1} is right in {count} questions"


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.id for l in LESSONS])
def test_every_explanation_names_a_section_of_the_lesson(lesson):
    sections = headings(lesson.body)
    for i, q in enumerate(lesson.quiz, start=1):
        assert sections_named(q.explain, sections), (
            f"{lesson.id} question {i}: the explanation names no section heading of the lesson; "
            f"write it as (see \"Heading\"), one of {sorted(sections)}")


def test_the_checks_catch_a_quiz_that_gives_answers_away():
    q = QuizQuestion("q", ["a", "bb", "the longest choice by far", "dd"], 2, 'see "Two"')
    assert is_longest(q)
    assert not is_longest(QuizQuestion("q", ["a much longer wrong choice", "b", "c", "d"], 1))
    sections = headings("# Title\n\ntext\n\n## The loss\n\n### Two `code`\n")
    assert sections == {"the loss", "two code"}
    assert sections_named('Lower is better (see "The loss").', sections) == ["the loss"]
    assert sections_named("Lower is better (The loss).", sections) == ["the loss"]
    assert sections_named("Lower is better: see two code.", sections) == ["two code"]
    assert sections_named("Lower is better (section: the loss).", sections) == ["the loss"]
    assert sections_named("The loss falls as training goes on.", sections) == []


# -- the widget ----------------------------------------------------------------------------

QUESTIONS = [
    QuizQuestion("First?", ["alpha", "beta", "gamma", "delta"], 2, "see One"),
    QuizQuestion("Second?", ["red", "green", "blue", "white"], 0, "see Two"),
]


class QuizApp(App):
    def __init__(self, rng: random.Random):
        super().__init__()
        self.rng = rng

    def compose(self) -> ComposeResult:
        yield QuizPanel("test-lesson", QUESTIONS, rng=self.rng, id="quiz")


def shown(panel: QuizPanel) -> list[list[str]]:
    """The choices as the screen lists them, question by question."""
    from textual.widgets import RadioButton, RadioSet

    return [[str(b.label) for b in panel.query_one(f"#q{i}", RadioSet).query(RadioButton)]
            for i in range(len(panel.questions))]


async def test_each_attempt_shuffles_the_choices_and_every_answer_is_recorded():
    app = QuizApp(random.Random(7))
    async with app.run_test(size=(80, 40)) as pilot:
        panel = app.query_one(QuizPanel)
        first = shown(panel)
        # The screen shows the order the panel keeps, and button_for finds choices through it.
        for i, q in enumerate(QUESTIONS):
            assert first[i] == [q.choices[k] for k in panel.order[i]]
            assert sorted(first[i]) == sorted(q.choices)
            assert str(panel.button_for(i, q.answer).label) == q.choices[q.answer]

        panel.button_for(0, 1).value = True  # wrong
        panel.button_for(1, 0).value = True  # right
        await pilot.pause()
        await pilot.click("#quiz-check")
        await pilot.pause()
        assert "✗" in str(panel.query_one("#fb0").render())
        assert "✓" in str(panel.query_one("#fb1").render())
        history = answer_history("test-lesson")
        assert [(a["question"], a["chosen"], a["right"], a["attempt"]) for a in history] == [
            (0, 1, False, 1), (1, 0, True, 1)]
        assert history[0]["text"] == "beta" and history[0]["time"] > 1.6e9

        # Checking again with the same answers records nothing new; a changed one is recorded.
        await pilot.click("#quiz-check")
        panel.button_for(0, 2).value = True
        await pilot.pause()
        await pilot.click("#quiz-check")
        await pilot.pause()
        assert [(a["question"], a["chosen"], a["right"]) for a in answer_history("test-lesson")[2:]] == [(0, 2, True)]

        # Try again: a new order for every question, no answers pressed, no feedback left.
        await pilot.click("#quiz-retry")
        await pilot.pause()
        second = shown(panel)
        assert all(a != b for a, b in zip(first, second)), (first, second)
        for i, q in enumerate(QUESTIONS):
            assert second[i] == [q.choices[k] for k in panel.order[i]]
        assert all(panel.chosen(i) is None for i in range(len(QUESTIONS)))
        assert str(panel.query_one("#fb0").render()).strip() == ""
        panel.button_for(0, 2).value = True
        await pilot.pause()
        await pilot.click("#quiz-check")
        await pilot.pause()
        assert "✓" in str(panel.query_one("#fb0").render())
        assert answer_history("test-lesson")[-1] | {"time": 0} == {
            "question": 0, "chosen": 2, "text": "gamma", "right": True, "attempt": 2, "time": 0}


async def test_the_same_seed_gives_the_same_orders():
    orders = []
    for _ in range(2):
        app = QuizApp(random.Random(3))
        async with app.run_test(size=(80, 40)):
            orders.append(app.query_one(QuizPanel).order)
    assert orders[0] == orders[1]


def test_a_retry_never_repeats_the_order_just_seen():
    rng = random.Random(0)
    order = shuffled(4, rng)
    for _ in range(200):
        new = shuffled(4, rng, avoid=order)
        assert new != order and sorted(new) == [0, 1, 2, 3]
        order = new
    assert shuffled(1, rng, avoid=[0]) == [0]  # one choice has one order


def test_answers_are_validated_and_survive_damaged_entries():
    with pytest.raises(ValueError, match="question, chosen, right and time"):
        record_answers("vae-digits", [{"question": 0, "right": True}])
    assert not progress_path().exists()  # nothing written for a bad answer
    record_answers("vae-digits", [{"question": 1, "chosen": 3, "right": False, "time": 1.0}])
    # A hand-edited file with a broken entry: the entry starts afresh, the rest is kept.
    data = load_progress()
    data["lessons"]["gan-shape"] = "broken"
    data["lessons"]["vae-digits"]["answers"] = "broken"
    import json

    progress_path().write_text(json.dumps(data))
    assert answer_history("gan-shape") == []
    record_answers("gan-shape", [{"question": 0, "chosen": 0, "right": True, "time": 2.0}])
    record_answers("vae-digits", [{"question": 2, "chosen": 1, "right": True, "time": 3.0}])
    assert [a["question"] for a in answer_history("vae-digits")] == [2]
    assert load_progress()["lessons"]["gan-shape"]["answers"][0]["right"] is True


def test_the_next_lesson_after_a_passed_quiz_is_the_next_one_not_passed_wrapping_round():
    from studio.lessons import load_lessons, next_lesson

    path = load_lessons()
    ids = [lesson.id for lesson in path]
    passed = {"lessons": {ids[1]: {"quiz_passed": True}, ids[2]: {"quiz_passed": True}}}
    assert next_lesson(path, passed, after=ids[0]).id == ids[3]  # skips the two already passed
    assert next_lesson(path, passed, after=ids[-1]).id == ids[0]  # the last lesson: back to the first not passed
    everything = {"lessons": {i: {"quiz_passed": True} for i in ids}}
    assert next_lesson(path, everything, after=ids[-1]) is None
    assert next_lesson(path, passed).id == ids[0]


async def test_passing_the_last_quiz_of_the_path_before_training_says_what_is_left():
    """A walkthrough passed the music Transformer's quiz (the last lesson of the path) at step
    0 and was told it had finished the lesson and that this was the last lesson of the path,
    with 15 lessons untouched."""
    from studio.app import GenStudioApp
    from studio.lessons import load_lessons
    from studio.messages import QuizFinished
    from studio.screens.lesson import LessonScreen
    from studio.screens.next_lesson import NextLesson

    path = load_lessons()
    last = path[-1]
    app = GenStudioApp(graphics="halfblock", lesson=last.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LessonScreen)
        screen.post_message(QuizFinished(last.id, len(last.quiz), len(last.quiz)))
        await pilot.pause()
        offer = app.screen
        assert isinstance(offer, NextLesson) and offer.upcoming.id == path[0].id
        text = str(offer.query_one("#next-text").render())
        assert "you have finished" not in text and "last lesson" not in text
        assert "reaches its bar" in text and last.bar.describe() in text
