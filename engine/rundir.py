"""The run directory: the one contract between an engine process and anything watching it.

Format version 1. Everything a run produces is a file here; anyone can ``cat`` it.

    <run>/
      config.json        resolved config, written once at creation (atomic):
                         {"format": 1, "recipe": "vae", "device": "auto", "lesson": "vae-digits",
                          "params": {...every hyperparameter...}, "created": <unix time>}
      events.jsonl       append-only event log, one JSON object per line:
                         {"type": T, "step": int, "time": <unix time>, "payload": {...}}
                         types:
                           state       payload {"state": starting|running|paused|finished|stopped|failed,
                                                 "device": str?, "resumed_from": int?}
                           metric      payload {"train/loss": float, ..., "val/loss": float, ...}
                           status      payload {"epoch": float, "steps_per_s": float,
                                                 "samples_per_s": float, "unit": str (what a sample is),
                                                 "elapsed": float, "total_steps": int}
                           sample      payload {"name": str, "kind": image|points|data, "path": str (relative)}
                                       (an interact error reply is named "<reply>.error")
                           log         payload {"message": str}
                           param       payload {"key": str, "value": any}  (a live change took effect)
                           checkpoint  payload {"path": str (relative)}
                           error       payload {"kind": nan|oom|crash|data|config, "message": str, "hint": str}
      commands.jsonl     append-only command log written by the UI or CLI, polled by the runner
                         between steps: {"id": int, "time": float, "cmd": C, "args": {...}}
                         commands: pause, resume, step, stop, set {key, value}, sample, checkpoint,
                         interact {name, reply, ...} (a learner's request: generate, translate)
      samples/           artifacts, each written to a temp name and renamed:
                         <name>-<step>.png (images) and <name>-<step>.json (points)
      checkpoints/last.pt  model, optimiser, step, RNG; torch.save, loaded with weights_only=True
      engine.pid         pid of the engine process while it runs
      engine.log         the engine's stdout/stderr (tracebacks land here)

A resumed run appends to the same files. Its first state event carries ``resumed_from``:
the step of the checkpoint it continues from. Readers drop metrics logged after that step
by the interrupted process (see :func:`read_history`), so the history continues exactly.

This module is torch-free: the studio imports it.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

FORMAT_VERSION = 1
TERMINAL_STATES = ("finished", "stopped", "failed")
CONTINUABLE = ("stopped", "interrupted", "failed")  # states a run can continue from its checkpoint
COMMANDS = ("pause", "resume", "step", "stop", "set", "sample", "checkpoint", "interact")


class RunDirError(ValueError):
    """The directory is not a GenStudio run, or its files are damaged."""


def genstudio_home() -> Path:
    """Where runs, caches and progress live: $GENSTUDIO_HOME, else ~/.local/share/genstudio."""
    env = os.environ.get("GENSTUDIO_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "genstudio"


def runs_root() -> Path:
    return genstudio_home() / "runs"


def cache_dir() -> Path:
    return genstudio_home() / "cache"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name beside ``path`` and rename over it, so a reader never sees
    half a file and a crash never leaves one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _append_line(path: Path, obj: dict) -> None:
    line = json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n"
    # One write() call of a short line to a file opened with O_APPEND lands whole.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _clean(obj: Any) -> Any:
    """JSON has no NaN/inf: report them as strings so the log stays valid JSON."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


@dataclass
class Event:
    type: str
    step: int
    time: float
    payload: dict = field(default_factory=dict)


def new_run_dir(recipe: str, root: Path | None = None) -> Path:
    """A fresh, uniquely named run directory under the runs root."""
    root = Path(root) if root else runs_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        name = f"{stamp}-{recipe}" + (f"-{i}" if i else "")
        path = root / name
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunDirError(f"could not create a run directory in {root}")


class RunDir:
    """Reading and writing one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- layout --
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def commands_path(self) -> Path:
        return self.path / "commands.jsonl"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def pid_path(self) -> Path:
        return self.path / "engine.pid"

    @property
    def log_path(self) -> Path:
        return self.path / "engine.log"

    @property
    def name(self) -> str:
        return self.path.name

    # -- config --
    def write_config(self, recipe: str, params: dict, device: str = "auto", lesson: str | None = None,
                     nproc: int = 1) -> dict:
        cfg = {
            "format": FORMAT_VERSION,
            "recipe": recipe,
            "device": device,
            "nproc": nproc,  # engine processes training together (torchrun + DDP) when > 1
            "lesson": lesson,
            "params": params,
            "created": time.time(),
        }
        atomic_write_json(self.config_path, cfg)
        return cfg

    def read_config(self) -> dict:
        if not self.path.is_dir():
            raise RunDirError(f"{self.path} does not exist or is not a directory")
        if not self.config_path.exists():
            raise RunDirError(f"{self.path} is not a GenStudio run (no config.json)")
        try:
            cfg = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as e:
            raise RunDirError(f"{self.config_path} is damaged: {e}") from None
        if not isinstance(cfg, dict) or "recipe" not in cfg or "params" not in cfg:
            raise RunDirError(f"{self.config_path} is missing 'recipe' or 'params'")
        if cfg.get("format", 0) > FORMAT_VERSION:
            raise RunDirError(
                f"{self.path} was written by a newer GenStudio (format {cfg.get('format')}); upgrade to read it"
            )
        return cfg

    # -- events --
    def emit(self, type: str, step: int, payload: dict | None = None) -> None:
        _append_line(self.events_path, {"type": type, "step": int(step), "time": time.time(), "payload": _clean(payload or {})})

    def events(self) -> list[Event]:
        return list(EventTail(self.events_path).read_new())

    # -- commands --
    def send(self, cmd: str, **args: Any) -> None:
        if cmd not in COMMANDS:
            raise ValueError(f"unknown command {cmd!r}; known: {', '.join(COMMANDS)}")
        _append_line(self.commands_path, {"id": time.time_ns(), "time": time.time(), "cmd": cmd, "args": _clean(args)})

    # -- artifacts --
    def sample_path(self, name: str, step: int, ext: str) -> Path:
        return self.samples_dir / f"{name}-{step:08d}.{ext}"

    def latest_samples(self) -> dict[str, Path]:
        """The newest artifact of each name, from the event log (falls back to the folder)."""
        out: dict[str, Path] = {}
        for ev in self.events():
            if ev.type == "sample":
                p = self.path / ev.payload["path"]
                if p.exists():
                    out[ev.payload["name"]] = p
        return out

    # -- process --
    def engine_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def engine_alive(self) -> bool:
        pid = self.engine_pid()
        return pid is not None and pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except (OSError, IndexError):
            return True
    return True


class JsonlTail:
    """Reads whole new lines of an append-only JSONL file, remembering its offset. A
    partly written last line is left for the next read; a damaged line is skipped."""

    def __init__(self, path: str | Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset
        self._buf = b""

    def read_objects(self) -> Iterator[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        self.offset += len(chunk)
        data = self._buf + chunk
        lines = data.split(b"\n")
        self._buf = lines.pop()  # b"" when the data ended with a newline
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


class EventTail(JsonlTail):
    """A JsonlTail over an event log, yielding Events."""

    def read_new(self) -> Iterator[Event]:
        for obj in self.read_objects():
            try:
                yield Event(obj["type"], int(obj.get("step", 0)), float(obj.get("time", 0.0)), obj.get("payload", {}))
            except (KeyError, TypeError, ValueError):
                continue


@dataclass
class History:
    """What a run has done so far, folded from its event log."""

    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    state: str = "new"
    device: str = ""
    step: int = 0
    status: dict = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    last_log_time: float = 0.0

    def apply(self, ev: Event) -> None:
        self.step = max(self.step, ev.step)
        if ev.type == "metric":
            for k, v in ev.payload.items():
                if isinstance(v, (int, float)):
                    self.metrics.setdefault(k, []).append((ev.step, float(v)))
        elif ev.type == "state":
            self.state = ev.payload.get("state", self.state)
            self.device = ev.payload.get("device", self.device)
            if "resumed_from" in ev.payload:
                cut = int(ev.payload["resumed_from"])
                self.step = cut
                for k, pts in self.metrics.items():
                    self.metrics[k] = [p for p in pts if p[0] <= cut]
        elif ev.type == "status":
            self.status = ev.payload
        elif ev.type == "sample":
            self.samples[ev.payload["name"]] = ev.payload["path"]
        elif ev.type == "param":
            self.params[ev.payload["key"]] = ev.payload["value"]
        elif ev.type == "error":
            self.errors.append(ev.payload)
        elif ev.type == "log":
            self.logs.append(ev.payload.get("message", ""))
            self.last_log_time = ev.time


def read_history(run: RunDir | str | Path) -> History:
    run = run if isinstance(run, RunDir) else RunDir(run)
    h = History()
    for ev in run.events():
        h.apply(ev)
    return h


_RUN_NAME = re.compile(r"^\d{8}-\d{6}-")


def list_runs(root: Path | None = None) -> list[RunDir]:
    """Every run under the runs root, newest first."""
    root = Path(root) if root else runs_root()
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and (p / "config.json").exists()]
    return sorted(runs, key=lambda r: r.config_path.stat().st_mtime, reverse=True)


def resolve_run(ref: str, root: Path | None = None) -> RunDir:
    """A run given by path, by name, or by a unique prefix of its name; 'last' is the newest."""
    p = Path(ref).expanduser()
    if p.is_dir() and (p / "config.json").exists():
        return RunDir(p)
    runs = list_runs(root)
    if ref == "last" and runs:
        return runs[0]
    matches = [r for r in runs if r.name == ref] or [r for r in runs if r.name.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunDirError(f"no run called {ref!r}; `genstudio runs` lists them")
    raise RunDirError(f"{ref!r} matches {len(matches)} runs ({', '.join(r.name for r in matches[:4])}...); be more specific")
