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
        )
    except KeyError as e:
        raise LessonError(f"{path}: front matter lacks {e}") from None


def load_lessons(directory: Path = LESSONS_DIR) -> list[Lesson]:
    """Every lesson whose recipe the engine has, ordered by family then order."""
    lessons = [parse_lesson(p.read_text(encoding="utf-8"), p) for p in sorted(directory.glob("*.md"))]
    return sorted((l for l in lessons if l.recipe in RECIPES), key=lambda l: (l.family, l.order, l.title))


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
