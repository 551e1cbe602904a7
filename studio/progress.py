"""Per-user progress (lessons opened, quizzes passed), saved as JSON in GENSTUDIO_HOME."""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.rundir import atomic_write_json, genstudio_home


def progress_path() -> Path:
    return genstudio_home() / "progress.json"


def load_progress() -> dict:
    path = progress_path()
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("lessons"), dict):
            return data
    except FileNotFoundError:
        return {"lessons": {}}
    except (OSError, ValueError):
        pass
    # Damaged: keep the file aside (never silently overwrite what a user had) and start afresh.
    try:
        path.replace(path.with_name(f"progress.damaged-{int(time.time())}.json"))
    except OSError:
        pass
    return {"lessons": {}}


def _update(lesson_id: str, **changes) -> dict:
    data = load_progress()
    entry = data["lessons"].setdefault(lesson_id, {})
    entry.update(changes)
    atomic_write_json(progress_path(), data)
    return entry


def mark_opened(lesson_id: str) -> dict:
    return _update(lesson_id, opened=True, last_opened=time.time())


def record_quiz(lesson_id: str, score: int, total: int) -> dict:
    entry = load_progress()["lessons"].get(lesson_id, {})
    best = max(score, int(entry.get("quiz_best", 0)))
    return _update(lesson_id, quiz_best=best, quiz_total=total, quiz_passed=bool(entry.get("quiz_passed")) or score == total)


def lesson_badge(lesson_id: str, progress: dict | None = None) -> str:
    entry = (progress or load_progress())["lessons"].get(lesson_id, {})
    if entry.get("quiz_passed"):
        return "★ quiz passed"
    if entry.get("quiz_total"):
        return f"✓ opened, quiz {entry.get('quiz_best', 0)}/{entry['quiz_total']}"
    if entry.get("opened"):
        return "✓ opened"
    return "new"
