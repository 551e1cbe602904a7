"""Per-user progress (lessons opened, quizzes passed, every quiz answer), saved as JSON in
GENSTUDIO_HOME:

    {"lessons": {"vae-digits": {"opened": true, "last_opened": 1.7e9,
                                "trained": true, "trained_value": 0.91, "trained_run": "2026...-vae",
                                "quiz_best": 4, "quiz_total": 5, "quiz_passed": false,
                                "answers": [{"question": 0, "chosen": 2, "text": "...",
                                             "right": false, "attempt": 1, "time": 1.7e9}, ...]}}}

``chosen`` is the index of the choice in the lesson file (the quiz shows them shuffled),
``question`` the question's index there. The file is the learner's own: a damaged one is
kept aside, never overwritten, and a damaged entry inside it is started afresh."""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.rundir import atomic_write_json, genstudio_home


def progress_path() -> Path:
    return genstudio_home() / "progress.json"


def load_learner_file(path: Path, key: str) -> dict | None:
    """The JSON object in ``path`` (one of the learner's own files) whose ``key`` holds an
    object; None when the file does not exist. A damaged one is kept aside as
    NAME.damaged-TIME.json (never silently overwritten) and None returned, to start afresh."""
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            return data
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        pass
    try:
        path.replace(path.with_name(f"{path.stem}.damaged-{int(time.time())}.json"))
    except OSError:
        pass
    return None


def load_progress() -> dict:
    return load_learner_file(progress_path(), "lessons") or {"lessons": {}}


MAX_ANSWERS = 2000  # answers kept per lesson, newest last; older ones are dropped


def _entry(data: dict, lesson_id: str) -> dict:
    """The lesson's entry in ``data``, made (or made afresh, if damaged) when needed."""
    entry = data["lessons"].get(lesson_id)
    if not isinstance(entry, dict):
        entry = data["lessons"][lesson_id] = {}
    return entry


def _update(lesson_id: str, **changes) -> dict:
    data = load_progress()
    entry = _entry(data, lesson_id)
    entry.update(changes)
    atomic_write_json(progress_path(), data)
    return entry


def mark_opened(lesson_id: str) -> dict:
    return _update(lesson_id, opened=True, last_opened=time.time())


def record_quiz(lesson_id: str, score: int, total: int) -> dict:
    entry = _entry(load_progress(), lesson_id)
    best = max(score, int(entry.get("quiz_best", 0)))
    return _update(lesson_id, quiz_best=best, quiz_total=total, quiz_passed=bool(entry.get("quiz_passed")) or score == total)


def record_answers(lesson_id: str, answers: list[dict]) -> list[dict]:
    """Append quiz answers to the lesson's history; returns the whole history.

    Each answer is {"question": int, "chosen": int, "right": bool, "time": unix seconds},
    optionally with "text" (the choice as shown) and "attempt" (1 for the first try).
    A malformed answer raises ValueError and nothing is written."""
    clean = []
    for a in answers:
        try:
            row = {"question": int(a["question"]), "chosen": int(a["chosen"]), "right": bool(a["right"]),
                   "time": float(a["time"])}
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"a quiz answer needs question, chosen, right and time: {a!r}") from None
        if "text" in a:
            row["text"] = str(a["text"])
        if "attempt" in a:
            row["attempt"] = int(a["attempt"])
        clean.append(row)
    data = load_progress()
    entry = _entry(data, lesson_id)
    history = entry.get("answers")
    history = (history if isinstance(history, list) else []) + clean
    entry["answers"] = history[-MAX_ANSWERS:]
    atomic_write_json(progress_path(), data)
    return entry["answers"]


def answer_history(lesson_id: str, progress: dict | None = None) -> list[dict]:
    """Every recorded answer of the lesson, oldest first ([] when none)."""
    entry = (progress or load_progress())["lessons"].get(lesson_id)
    history = entry.get("answers") if isinstance(entry, dict) else None
    return [a for a in history if isinstance(a, dict)] if isinstance(history, list) else []


def mark_trained(lesson_id: str, value: float, run: str) -> dict:
    """A run of the lesson reached its bar (the lesson's front matter says which)."""
    return _update(lesson_id, trained=True, trained_value=float(value), trained_run=str(run))


def was_trained(lesson_id: str, progress: dict | None = None) -> bool:
    """Whether a run of the lesson has reached its bar."""
    entry = (progress or load_progress())["lessons"].get(lesson_id)
    return isinstance(entry, dict) and bool(entry.get("trained"))


def lesson_badge(lesson_id: str, progress: dict | None = None) -> str:
    """opened, trained to its bar, quiz passed: how far the learner has got with a lesson."""
    entry = (progress or load_progress())["lessons"].get(lesson_id)
    if not isinstance(entry, dict):
        return "new"
    trained = ", trained" if entry.get("trained") else ""
    if entry.get("quiz_passed"):
        return f"★ quiz passed{trained}"
    if entry.get("quiz_total"):
        return f"✓ opened{trained}, quiz {entry.get('quiz_best', 0)}/{entry['quiz_total']}"
    if entry.get("opened"):
        return f"✓ opened{trained}"
    return "new"
