"""Lessons: Markdown files with TOML front matter in assets/lessons (torch-free)."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.registry import RECIPES

ASSETS = Path(__file__).resolve().parent.parent / "assets"
LESSONS_DIR = ASSETS / "lessons"
REPO_ROOT = Path(__file__).resolve().parent.parent

# [text](code:engine/models/vae.py#VAE.reparameterize)
CODE_LINK = re.compile(r"^code:(?P<path>[\w./-]+?)(?:#(?P<symbol>[\w.]+))?$")


class LessonError(ValueError):
    pass


@dataclass
class QuizQuestion:
    question: str
    choices: list[str]
    answer: int
    explain: str = ""


@dataclass(frozen=True)
class Bar:
    """What "trained" means for a lesson: the mean of the latest values of ``metrics`` at
    least ``at_least`` (or at most ``at_most``), from training step ``from_step`` on (a score
    that early, noisy samples can fool). Front matter:
    bar = { metrics = ["quality/recognisability"], at_least = 0.9 }"""

    metrics: tuple[str, ...]
    at_least: float | None = None
    at_most: float | None = None
    from_step: int = 0

    def value(self, latest: dict[str, float]) -> float | None:
        values = [latest[m] for m in self.metrics if m in latest]
        return sum(values) / len(values) if len(values) == len(self.metrics) else None

    def reached(self, latest: dict[str, float], step: int | None = None) -> bool:
        v = self.value(latest)
        if v is None or (self.from_step and (step is None or step < self.from_step)):
            return False
        return (self.at_least is None or v >= self.at_least) and (self.at_most is None or v <= self.at_most)

    def describe(self) -> str:
        """e.g. "recognisability ≥ 0.9", "val/loss ≤ 1.5", "mean of to_black, to_blond ≥ 0.9"."""
        names = [m.removeprefix("quality/") for m in self.metrics]
        name = names[0] if len(names) == 1 else f"mean of {', '.join(names)}"
        limit = f"≥ {self.at_least:g}" if self.at_least is not None else f"≤ {self.at_most:g}"
        return f"{name} {limit}" + (f" from step {self.from_step:,}" if self.from_step else "")


@dataclass
class Lesson:
    id: str
    family: str
    title: str
    recipe: str
    order: int
    summary: str
    body: str
    code: list[str]
    sources: list[dict] = field(default_factory=list)
    quiz: list[QuizQuestion] = field(default_factory=list)
    path: Path | None = None
    minutes: int | None = None  # how long the default preset trains on a 2-core CPU (benchmarks/lesson_minutes.py)
    course: int = 1000  # its place in the one learning path (front matter `course`; lower comes first)
    prerequisites: list[str] = field(default_factory=list)  # lesson ids to take first
    bar: Bar | None = None  # when a run of it counts as trained


def parse_lesson(text: str, path: Path | None = None) -> Lesson:
    parts = text.split("+++", 2)
    if len(parts) != 3 or parts[0].strip():
        raise LessonError(f"{path}: a lesson starts with TOML front matter between +++ lines")
    try:
        meta = tomllib.loads(parts[1])
    except tomllib.TOMLDecodeError as e:
        raise LessonError(f"{path}: bad front matter: {e}") from None
    try:
        quiz = [QuizQuestion(q["question"], list(q["choices"]), int(q["answer"]), q.get("explain", "")) for q in meta.get("quiz", [])]
        for q in quiz:
            if not 0 <= q.answer < len(q.choices):
                raise LessonError(f"{path}: quiz answer {q.answer} is not one of the {len(q.choices)} choices")
        return Lesson(
            id=meta["id"], family=meta["family"], title=meta["title"], recipe=meta["recipe"],
            order=int(meta.get("order", 0)), summary=meta.get("summary", ""), body=parts[2].strip() + "\n",
            code=list(meta.get("code", [])), sources=list(meta.get("sources", [])), quiz=quiz, path=path,
            minutes=int(meta["minutes"]) if "minutes" in meta else None,
            course=int(meta.get("course", 1000)), prerequisites=[str(p) for p in meta.get("prerequisites", [])],
            bar=_bar(meta["bar"], path) if "bar" in meta else None,
        )
    except KeyError as e:
        raise LessonError(f"{path}: front matter lacks {e}") from None


def _bar(meta: dict, path: Path | None) -> Bar:
    try:
        bar = Bar(tuple(meta["metrics"]), meta.get("at_least"), meta.get("at_most"), int(meta.get("from_step", 0)))
    except (KeyError, TypeError, ValueError) as e:
        raise LessonError(f"{path}: bar needs metrics = [...] and at_least or at_most ({e})") from None
    if (bar.at_least is None) == (bar.at_most is None):
        raise LessonError(f"{path}: bar needs exactly one of at_least and at_most")
    return bar


SKIPPED: dict[str, str] = {}  # lesson files the last load could not read -> why (the catalog says so)


def load_lessons(directory: Path = LESSONS_DIR, strict: bool = False) -> list[Lesson]:
    """Every lesson whose recipe the engine has, in the order of the learning path. A file
    that cannot be read as a lesson (one being edited, say) is left out and listed in
    SKIPPED, so the rest of the studio still opens; ``strict`` raises LessonError instead
    (the tests hold every shipped lesson to that)."""
    lessons = []
    SKIPPED.clear()
    for p in sorted(directory.glob("*.md")):
        try:
            lessons.append(parse_lesson(p.read_text(encoding="utf-8"), p))
        except (LessonError, OSError, UnicodeDecodeError) as e:
            if strict:
                raise LessonError(str(e)) from None
            SKIPPED[p.name] = str(e)
    return sorted((l for l in lessons if l.recipe in RECIPES), key=lambda l: (l.course, l.family, l.order, l.title))


def next_lesson(lessons: list[Lesson], progress: dict, after: str | None = None) -> Lesson | None:
    """The first lesson of the path whose quiz is not passed yet; with ``after``, the first
    such lesson that follows it in the path, else the first one before it (None: all passed)."""
    done = {k for k, v in progress.get("lessons", {}).items() if isinstance(v, dict) and v.get("quiz_passed")}
    ids = [lesson.id for lesson in lessons]
    start = ids.index(after) + 1 if after in ids else 0
    order = lessons[start:] + lessons[:start]
    return next((l for l in order if l.id not in done and l.id != after), None)


def get_lesson(lesson_id: str) -> Lesson:
    lessons = {l.id: l for l in load_lessons()}
    if lesson_id in lessons:
        return lessons[lesson_id]
    by_recipe = [l for l in lessons.values() if l.recipe == lesson_id]
    if by_recipe:
        return by_recipe[0]
    close = difflib.get_close_matches(lesson_id, list(lessons), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise LessonError(f"unknown lesson {lesson_id!r}.{hint} `genstudio lessons` lists them.")


def lesson_for_recipe(recipe: str) -> Lesson | None:
    return next((l for l in load_lessons() if l.recipe == recipe), None)


def find_symbol(source: str, symbol: str | None) -> tuple[int, int] | None:
    """1-based (first, last) line of ``def``/``class`` ``symbol`` (``Class.method`` works)."""
    if not symbol:
        return None
    lines = source.splitlines()
    start, indent = 0, -1
    for part in symbol.split("."):
        pat = re.compile(rf"^(\s*)(?:async\s+)?(?:def|class)\s+{re.escape(part)}\b")
        for i in range(start, len(lines)):
            m = pat.match(lines[i])
            if m and len(m.group(1)) > indent:
                start, indent = i, len(m.group(1))
                break
        else:
            return None
    end = start + 1
    def inside(line: str) -> bool:
        # Blank, indented deeper, or the ")" that closes a signature split over lines.
        return not line.strip() or len(line) - len(line.lstrip()) > indent or line.lstrip().startswith(")")

    while end < len(lines) and inside(lines[end]):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return start + 1, end
