"""Runs, as the contract sees them: creating one, and reading what state it is in.

The CLI, the studio and the benchmarks all create runs with :func:`create_run` and read
them with :func:`run_state` and :func:`summarise`, so they can never disagree about what
"interrupted" means or which settings name files. Torch-free; it raises its own
:class:`RunError`, which each front end turns into its own kind of message.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.registry import get_recipe
from engine.rundir import (TERMINAL_STATES, History, RunDir, RunDirError, index_run, list_runs, new_run_dir,
                           read_history, resolve_run)
from engine.schema import ConfigError, parse_assignments, specs, validate

CONTINUABLE = ("stopped", "interrupted", "failed")  # states a run can continue from its checkpoint
ACTIVE = ("starting", "running", "paused")  # an engine is (or should be) working on it


class RunError(ValueError):
    """A run cannot be created as asked (a bad setting, a missing file): nothing was made."""


def check_paths(config_cls: type, cfg) -> None:
    """Make every path setting absolute (resolved against the current folder, once, here at
    the edge) and check that it names what its schema says: a file or a folder."""
    for spec in specs(config_cls):
        raw = getattr(cfg, spec.name)
        if not spec.path or not str(raw).strip():
            continue
        path = Path(str(raw)).expanduser().absolute()
        if not path.exists():
            raise RunError(f"{spec.name} {raw} does not exist; give {spec.range_text()} that holds your data")
        if spec.path == "file" and not path.is_file():
            raise RunError(f"{spec.name} {raw} is not a file; give the path of {spec.range_text()} ({spec.help})")
        if spec.path == "dir" and not path.is_dir():
            raise RunError(f"{spec.name} {raw} is not a folder; give {spec.range_text()} ({spec.help})")
        setattr(cfg, spec.name, str(path))


def create_run(recipe: str, sets: list[str] | dict, steps: int | None = None, device: str = "auto",
               run_dir: str | Path | None = None, lesson: str | None = None, nproc: int = 1) -> RunDir:
    """Validate everything first, then write the run's config; nothing is created on bad
    input. ``sets`` are "key=value" strings (the CLI's --set) or a dict of values."""
    try:
        entry = get_recipe(recipe)
        if nproc < 1:
            raise ConfigError(f"--nproc must be 1 or more, got {nproc}")
        if nproc > 1 and not entry.distributed:
            from engine.registry import RECIPES

            raise ConfigError(f"{recipe} trains in one process; --nproc works with: "
                              f"{', '.join(n for n, e in RECIPES.items() if e.distributed)}")
        values = dict(sets) if isinstance(sets, dict) else parse_assignments(list(sets))
        if steps is not None:
            values["steps"] = steps
        cfg = validate(entry.config, values)
    except ConfigError as e:
        raise RunError(str(e)) from None
    check_paths(entry.config, cfg)
    if run_dir:
        path = Path(run_dir).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise RunError(f"--run-dir {path} is a file; give a new folder")
        if path.exists() and any(path.iterdir()):
            raise RunError(f"--run-dir {path} exists and is not empty; pick a new folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".genstudio-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise RunError(f"--run-dir {path}: cannot create it or write there ({e.strerror or e})") from None
    else:
        path = new_run_dir(recipe)
    rd = RunDir(path)
    rd.write_config(recipe, asdict(cfg), device=device, lesson=lesson, nproc=nproc)
    index_run(rd.path)  # findable by `genstudio runs` wherever it lives
    return rd


def run_ref(rd: RunDir) -> str:
    """How to name ``rd`` on a command line so that it works from any folder: its name when
    that resolves to it, else its absolute path."""
    try:
        if resolve_run(rd.name).path.resolve() == rd.path.resolve():
            return rd.name
    except (RunDirError, OSError):
        pass
    return str(rd.path.absolute())


def train_command(cfg: dict) -> str:
    """The `genstudio train` command that starts a new run with a run's settings (those that
    differ from the defaults), for advice like "start a new run with ..."."""
    recipe = cfg.get("recipe", "?")
    try:
        entry = get_recipe(recipe)
    except ConfigError:
        return f"genstudio train {recipe}"
    params = cfg.get("params") if isinstance(cfg.get("params"), dict) else {}
    parts = [f"genstudio train {recipe}"]
    if isinstance(params.get("steps"), int):
        parts.append(f"--steps {params['steps']}")
    for spec in specs(entry.config):
        value = params.get(spec.name, spec.default)
        if spec.name not in ("steps",) and value != spec.default:
            text = str(value)
            parts.append(f"--set {spec.name}={text if text and ' ' not in text else repr(text)}")
    return " ".join(parts)


def run_state(rd: RunDir, hist: History, alive: bool | None = None) -> str:
    """The state as a user should see it: a run whose engine died mid-way (it never wrote a
    final state) is "interrupted". ``alive`` overrides the pid-file check (the studio knows
    about the child it started)."""
    if hist.state in TERMINAL_STATES or hist.state == "new":
        return hist.state
    if alive is None:
        alive = rd.engine_alive()
    return hist.state if alive else "interrupted"


@dataclass
class RunSummary:
    """One row of a runs table: what `genstudio runs` prints and the runs screen shows."""

    path: Path
    name: str
    recipe: str
    lesson: str | None
    state: str
    step: int
    total_steps: int | None
    val_loss: float | None
    quality: float | None  # the headline quality score, when the recipe reports one
    created: float
    has_checkpoint: bool
    problem: str = ""  # why the run could not be read ("" when it could)

    @property
    def created_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created)) if self.created else ""

    @property
    def steps_text(self) -> str:
        total = f"{self.total_steps:,}" if self.total_steps is not None else "?"
        return f"{self.step:,}/{total}"


QUALITY_METRIC = "quality/recognisability"  # the headline score of the recipes that draw digits


def summarise(rd: RunDir) -> RunSummary:
    """A run's row; a run whose config cannot be read is listed with the reason, not fatal."""
    try:
        cfg = rd.read_config()
    except RunDirError as e:
        return RunSummary(rd.path, rd.name, "?", None, "damaged", 0, None, None, None, 0.0, False, problem=str(e))
    hist = read_history(rd)
    val = hist.metrics.get("val/loss")
    quality = hist.metrics.get(QUALITY_METRIC)
    total = cfg["params"].get("steps")
    return RunSummary(
        rd.path, rd.name, str(cfg["recipe"]), cfg.get("lesson"), run_state(rd, hist), hist.step,
        total if isinstance(total, int) and not isinstance(total, bool) else None,
        val[-1][1] if val else None, quality[-1][1] if quality else None,
        float(cfg.get("created") or 0.0) if isinstance(cfg.get("created"), (int, float)) else 0.0,
        rd.checkpoint_path.exists(),
    )


def list_summaries(root: Path | None = None) -> list[RunSummary]:
    """Every run under the runs root, newest first."""
    return [summarise(rd) for rd in list_runs(root)]


def newest_run_of(lesson: str, root: Path | None = None) -> tuple[RunDir, str] | None:
    """The newest run of ``lesson`` and its state ("running", "finished", ...), or None when
    the lesson has no run: a reopened lesson shows it again."""
    for rd in list_runs(root):
        try:
            cfg = rd.read_config()
        except RunDirError:
            continue
        if cfg.get("lesson") == lesson:
            return rd, run_state(rd, read_history(rd))
    return None
