"""Spaced-repetition review of the lessons a learner has opened: the cards, the scheduler
and the learner's file (torch-free; the screen is studio/screens/review.py).

Three kinds of card come from every opened lesson (studio.progress: "opened"):

- quiz: a quiz question as free recall; the answer is the right choice and its explanation;
- term: a glossary term (assets/glossary.toml) that matters in the lesson; the answer is
  its definition;
- code: a function the lesson's text links to (``code:PATH#SYMBOL``); the learner says what
  it does, and the answer is the lesson's sentence that links to it.

The learner rates each recall 1 again, 2 hard, 3 good or 4 easy, and :func:`schedule`
sets when the card comes back, as SM-2 (Wozniak's SuperMemo 2) does: a card starts with
an ease of 2.5; the first good recall brings it back in 1 day, the second in 6 days, and
each later one multiplies the interval by the ease. "Again" starts the card over (back in
10 minutes) and lowers the ease; "hard" lowers it less and grows the interval only by
1.2x; "easy" raises it and adds a bonus of 1.3x (a new card: 4 days). The ease never
falls below 1.3.

What each card has reached is saved in GENSTUDIO_HOME/review.json, written atomically:

    {"cards": {"quiz:vae-digits:3f2a9c1b": {"ease": 2.5, "interval": 6.0, "reps": 2,
               "lapses": 0, "due": 1.7e9, "first": 1.7e9, "last": 1.7e9}, ...}}

Times are unix seconds, intervals days. Like progress.json the file is the learner's own:
a damaged one is kept aside (review.damaged-TIME.json) and review starts afresh; a damaged
card entry is dropped and that card counts as new.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import asdict, dataclass, replace
from itertools import zip_longest
from pathlib import Path

from engine.rundir import atomic_write_json, genstudio_home
from studio.glossary import Term, load_glossary
from studio.lessons import CODE_LINK, REPO_ROOT, Lesson, find_symbol, load_lessons
from studio.progress import load_learner_file, load_progress
from studio.screens.code_links import code_links

AGAIN, HARD, GOOD, EASY = 1, 2, 3, 4
RATINGS = {AGAIN: "again", HARD: "hard", GOOD: "good", EASY: "easy"}

START_EASE = 2.5
MIN_EASE = 1.3
AGAIN_MINUTES = 10  # a forgotten card comes back within the session
FIRST_DAYS, SECOND_DAYS = 1.0, 6.0  # SM-2's first two intervals
EASY_FIRST_DAYS = 4.0  # a new card recalled at once skips ahead
HARD_FACTOR = 1.2  # "hard" grows the interval this much instead of by the ease
EASY_BONUS = 1.3  # and "easy" this much more than "good"
MAX_DAYS = 365.0
NEW_PER_DAY = 20  # new cards introduced per day: a first visit after many lessons is not a wall
DAY = 86400.0


# -- the scheduler --
@dataclass(frozen=True)
class CardState:
    """Where one card stands. A card with no state is new."""

    ease: float = START_EASE  # how fast its intervals grow
    interval: float = 0.0  # days until it is due, as of its last review
    reps: int = 0  # recalls in a row that were not "again"
    lapses: int = 0  # times it was forgotten
    due: float = 0.0  # unix time it is next due
    first: float = 0.0  # unix time of its first review
    last: float = 0.0  # unix time of its last review


def schedule(state: CardState | None, rating: int, now: float) -> CardState:
    """The card's state after a recall rated ``rating`` (1-4) at ``now``."""
    if rating not in RATINGS:
        raise ValueError(f"a rating is 1 (again), 2 (hard), 3 (good) or 4 (easy), not {rating!r}")
    s = state or CardState(first=now)
    if rating == AGAIN:  # forgotten: learn it again from the start, soon
        return replace(s, ease=max(MIN_EASE, s.ease - 0.2), interval=0.0, reps=0, lapses=s.lapses + 1,
                       due=now + AGAIN_MINUTES * 60, last=now)
    ease = max(MIN_EASE, {HARD: s.ease - 0.15, GOOD: s.ease, EASY: s.ease + 0.15}[rating])
    bonus = EASY_BONUS if rating == EASY else 1.0
    if rating == HARD:
        days = FIRST_DAYS if s.reps == 0 else s.interval * HARD_FACTOR
    elif s.reps == 0:
        days = EASY_FIRST_DAYS if rating == EASY else FIRST_DAYS
    elif s.reps == 1:
        days = SECOND_DAYS * bonus
    else:
        days = s.interval * ease * bonus  # SM-2: I(n) = I(n-1) * EF
    days = min(MAX_DAYS, max(FIRST_DAYS, days))
    return replace(s, ease=ease, interval=days, reps=s.reps + 1, due=now + days * DAY, last=now)


def interval_text(seconds: float) -> str:
    """10 min, 5 h, 6 d, 3 mo: how long until a card is due, for a short label."""
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < DAY:
        return f"{round(seconds / 3600)} h"
    if seconds < 60 * DAY:
        return f"{round(seconds / DAY)} d"
    return f"{round(seconds / (30 * DAY))} mo"


# -- persistence --
def review_path() -> Path:
    return genstudio_home() / "review.json"


def _state(entry) -> CardState | None:
    """A saved card's state, or None when its entry is damaged."""
    try:
        s = CardState(ease=float(entry["ease"]), interval=float(entry["interval"]), reps=int(entry["reps"]),
                      lapses=int(entry["lapses"]), due=float(entry["due"]), first=float(entry["first"]),
                      last=float(entry["last"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    times = (s.ease, s.interval, s.due, s.first, s.last)
    return s if all(math.isfinite(v) for v in times) and s.ease >= MIN_EASE and s.reps >= 0 else None


def load_states() -> dict[str, CardState]:
    """Every reviewed card's state by card id ({} when none or when the file was damaged)."""
    data = load_learner_file(review_path(), "cards") or {"cards": {}}
    states = {card_id: _state(entry) for card_id, entry in data["cards"].items() if isinstance(card_id, str)}
    return {card_id: s for card_id, s in states.items() if s is not None}


def save_state(card_id: str, state: CardState) -> None:
    states = load_states()
    states[card_id] = state
    atomic_write_json(review_path(), {"cards": {k: asdict(v) for k, v in sorted(states.items())}})


def rate(card_id: str, rating: int, now: float | None = None) -> CardState:
    """Schedule the card by the learner's rating and save it; its new state."""
    now = time.time() if now is None else now
    state = schedule(load_states().get(card_id), rating, now)
    save_state(card_id, state)
    return state


# -- the cards --
@dataclass(frozen=True)
class Card:
    id: str  # stable across sessions: quiz:LESSON:HASH, term:ID, code:PATH#SYMBOL
    kind: str  # quiz, term or code
    lesson: str  # the lesson it comes from (a term: the first opened lesson it matters in)
    prompt: str  # what the learner sees first
    answer: str  # what the reveal shows
    more: str = ""  # shown under the answer: the explanation, where the term matters
    code: str = ""  # a code card's source lines
    path: str = ""  # a code card's file
    first_line: int = 1  # its first line number


def _quiz_id(lesson_id: str, question: str) -> str:
    # A hash of the question, not its index: reordering a quiz keeps each card's history.
    return f"quiz:{lesson_id}:{hashlib.sha1(question.encode()).hexdigest()[:8]}"


def plain(markdown: str) -> str:
    """Lesson Markdown as plain text: links become their labels, emphasis marks go."""
    text = re.sub(r"\[([^\]]+)\]\([^)\s]+\)", r"\1", markdown)
    return re.sub(r"\*\*|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)", "", text)


FENCE = re.compile(r"^\s*```")
ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\[(*\"“])")


def _blocks(body: str) -> list[tuple[str, str]]:
    """The lesson's text as ("prose" | "code", text) blocks: paragraphs and list items
    (their lines joined), and code blocks."""
    blocks: list[tuple[str, str]] = []
    prose: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if prose:
            blocks.append(("prose", " ".join(line.strip() for line in prose)))
            prose.clear()

    for line in body.splitlines():
        if code is not None:
            if FENCE.match(line):
                blocks.append(("code", "\n".join(code)))
                code = None
            else:
                code.append(line)
        elif FENCE.match(line):
            flush()
            code = []
        elif not line.strip() or line.lstrip().startswith("#"):
            flush()
        elif line.startswith("    ") and not prose:
            blocks.append(("code", line[4:]))  # an indented code block
        else:
            if ITEM.match(line):
                flush()
            prose.append(line)
    flush()
    return blocks


def link_sentence(body: str, href: str) -> str:
    """The sentence of the lesson that links to ``href``, as plain text; a sentence that
    ends with a colon brings the block it introduces (the equation, the list's first item)."""
    blocks = _blocks(body)
    for i, (kind, text) in enumerate(blocks):
        if kind != "prose" or f"]({href})" not in text:
            continue
        text = ITEM.sub("", text)
        sentence = next(s for s in SENTENCE_END.split(text) if f"]({href})" in s)
        sentence = plain(sentence).strip()
        if sentence.endswith(":") and i + 1 < len(blocks):
            sentence += "\n" + plain(ITEM.sub("", blocks[i + 1][1]))
        return sentence
    return ""


def _code_card(lesson: Lesson, href: str) -> Card | None:
    m = CODE_LINK.match(href)
    if not m or not m["symbol"]:
        return None  # a link to a whole file: no one function to recall
    try:
        source = (REPO_ROOT / m["path"]).read_text(encoding="utf-8")
    except OSError:
        return None
    span = find_symbol(source, m["symbol"])
    answer = link_sentence(lesson.body, href)
    if span is None or not answer:
        return None
    first, last = span
    return Card(f"code:{m['path']}#{m['symbol']}", "code", lesson.id,
                f"What does {m['symbol']} do, and why is it there?", answer,
                code="\n".join(source.splitlines()[first - 1:last]), path=m["path"], first_line=first)


def _term_card(term: Term, lesson: Lesson, titles: dict[str, str]) -> Card:
    where = ", ".join(titles[l] for l in term.lessons if l in titles)
    return Card(f"term:{term.id}", "term", lesson.id, f"What does “{term.term}” mean?", term.definition,
                more=f"It matters in: {where}." if where else "")


def opened_lessons(progress: dict | None = None) -> list[Lesson]:
    """The lessons the learner has opened, in course order."""
    entries = (progress or load_progress())["lessons"]
    return [l for l in load_lessons() if isinstance(entries.get(l.id), dict) and entries[l.id].get("opened")]


def build_deck(lessons: list[Lesson], glossary: dict[str, Term] | None = None) -> list[Card]:
    """Every card of ``lessons``, each once, lesson by lesson: a term, a piece of code and
    a quiz question in turn."""
    glossary = load_glossary() if glossary is None else glossary
    titles = {l.id: l.title for l in load_lessons()}
    deck: list[Card] = []
    seen: set[str] = set()

    def add(card: Card | None) -> None:
        if card is not None and card.id not in seen:
            seen.add(card.id)
            deck.append(card)

    for lesson in lessons:
        terms = [_term_card(t, lesson, titles) for t in glossary.values() if lesson.id in t.lessons]
        code = [_code_card(lesson, href) for _, href in code_links(lesson.body)]
        quiz = [Card(_quiz_id(lesson.id, q.question), "quiz", lesson.id, q.question, q.choices[q.answer],
                     more=q.explain) for q in lesson.quiz]
        for cards in zip_longest(terms, code, quiz):  # the kinds take turns, for variety
            for card in cards:
                add(card)
    return deck


def _day(t: float) -> tuple[int, int, int]:
    lt = time.localtime(t)
    return lt.tm_year, lt.tm_mon, lt.tm_mday


def due_cards(deck: list[Card], states: dict[str, CardState], now: float) -> list[Card]:
    """What to review now: cards due again, the longest overdue first, then new cards in
    deck order, as many as today's NEW_PER_DAY still allows."""
    seen = sorted((c for c in deck if c.id in states and states[c.id].due <= now), key=lambda c: states[c.id].due)
    started_today = sum(1 for s in states.values() if _day(s.first) == _day(now))
    new = [c for c in deck if c.id not in states][:max(0, NEW_PER_DAY - started_today)]
    return seen + new


def next_due(deck: list[Card], states: dict[str, CardState], now: float) -> float | None:
    """When the next card that is not due now falls due (None when none is waiting)."""
    later = [states[c.id].due for c in deck if c.id in states and states[c.id].due > now]
    return min(later) if later else None
