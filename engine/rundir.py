"""The run directory: the one contract between an engine process and anything watching it.

Format version 1. Everything a run produces is a file here; anyone can ``cat`` it. The
constants below (:data:`EVENT_FIELDS`, :data:`STATES`, :data:`ERROR_KINDS`,
:data:`SAMPLE_KINDS`, :data:`ARTIFACT_FILE`) say the same as this text, and
:func:`check_event` holds an event to them (the tests run it over what the runner writes).

    <run>/
      config.json        resolved config, written once at creation (atomic):
                         {"format": 1, "recipe": "vae", "device": "auto", "lesson": "vae-digits",
                          "nproc": 1, "params": {...every hyperparameter...}, "created": <unix time>}
                         Path settings (declared path= in the schema) are stored absolute.
      events.jsonl       append-only event log, one JSON object per line:
                         {"type": T, "step": int, "time": <unix time>, "payload": {...}}
                         "step" is the training step the event belongs to (a sample's: the step
                         of the model that drew it). Types and their payloads:
                           state       {"state": starting|running|paused|finished|stopped|failed,
                                        "device": str?, "resumed_from": int?}
                           metric      {"<split>/<name>": float, ...}  (split: train, val, quality)
                           status      {"epoch": float|null, "steps_per_s": float, "samples_per_s": float,
                                        "unit": str (what a sample is), "elapsed": float, "total_steps": int,
                                        "ram_bytes": float? (the engine's resident memory),
                                        "gpu_bytes": float? (tensors on a CUDA device)}
                           sample      {"name": str, "kind": image|points|data, "path": str (relative),
                                        "caption": str}
                                       a request's error reply is named "<reply>.error"
                           log         {"message": str}
                           param       {"key": str, "value": any}  (a live change took effect)
                           checkpoint  {"path": str (relative)}
                           error       {"kind": nan|oom|crash|data|config|checkpoint|disk,
                                        "message": str, "hint": str}
                           ddp         {"world_size": int, "max_param_diff": float}  (end of a DDP run:
                                        0.0 when every process holds the same weights)
                         A float that is NaN or infinite is written as the string "nan"/"inf".
      commands.jsonl     append-only command log written by the UI or CLI, polled by the runner
                         between steps: {"id": int, "time": float, "cmd": C, "args": {...}}
                         commands: pause, resume, step {n?}, stop, set {key, value}, sample,
                         checkpoint, interact {name, reply, request?, ...} (a learner's request:
                         generate, translate, compare; its answers are artifacts named reply)
      samples/           artifacts, each written to a temp name and renamed:
                         <name>-<step:08d>.png (images) or .json (points, data); a request's
                         answers carry its number: <name>-r<request>-<step:08d>.<ext>.
                         Every run has "model" (data): the network's layers, output shapes and
                         parameter counts, from the first step of each engine process (its
                         format: engine/model_summary.py)
      checkpoints/last.pt  model, optimiser, step, RNG; torch.save, loaded with weights_only=True
      engine.pid         pid of the engine process while it runs
      engine.lock        held (fcntl.flock) by the engine for its whole life: one engine per run
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
STATES = ("starting", "running", "paused", *TERMINAL_STATES)
COMMANDS = ("pause", "resume", "step", "stop", "set", "sample", "checkpoint", "interact")
ERROR_KINDS = ("nan", "oom", "crash", "data", "config", "checkpoint", "disk")
SAMPLE_KINDS = ("image", "points", "data")
# Each event type's payload fields: (required, optional). A metric's payload is any
# "<split>/<name>" -> number.
EVENT_FIELDS: dict[str, tuple[frozenset, frozenset] | None] = {
    "state": (frozenset({"state"}), frozenset({"device", "resumed_from"})),
    "metric": None,
    "status": (frozenset({"epoch", "steps_per_s", "samples_per_s", "unit", "elapsed", "total_steps"}),
               frozenset({"ram_bytes", "gpu_bytes"})),
    "sample": (frozenset({"name", "kind", "path", "caption"}), frozenset()),
    "log": (frozenset({"message"}), frozenset()),
    "param": (frozenset({"key", "value"}), frozenset()),
    "checkpoint": (frozenset({"path"}), frozenset()),
    "error": (frozenset({"kind", "message", "hint"}), frozenset()),
    "ddp": (frozenset({"world_size", "max_param_diff"}), frozenset()),
}
ARTIFACT_FILE = re.compile(r"^samples/(?P<name>[\w.\-]+?)(?:-r(?P<request>\d+))?-(?P<step>\d{8})\.(?P<ext>png|json)$")


def artifact_file(name: str, step: int, kind: str, request: int | None = None) -> str:
    """The relative path an artifact is written to (see the format above)."""
    tag = f"-r{int(request)}" if request is not None else ""
    return f"samples/{name}{tag}-{int(step):08d}." + ("png" if kind == "image" else "json")


def check_event(obj: object) -> list[str]:
    """What is wrong with one line of an event log, against the format above ([] if nothing)."""
    if not isinstance(obj, dict):
        return [f"not an object: {obj!r}"]
    problems = []
    if set(obj) != {"type", "step", "time", "payload"}:
        problems.append(f"fields {sorted(obj)}")
    kind, payload = obj.get("type"), obj.get("payload")
    if not isinstance(obj.get("step"), int) or isinstance(obj.get("step"), bool):
        problems.append(f"step {obj.get('step')!r}")
    if kind not in EVENT_FIELDS:
        return problems + [f"undocumented event type {kind!r}"]
    if not isinstance(payload, dict):
        return problems + [f"{kind} payload {payload!r}"]
    fields = EVENT_FIELDS[kind]
    if fields is None:  # metric
        problems += [f"metric {k}={v!r}" for k, v in payload.items()
                     if "/" not in k or not (isinstance(v, (int, float)) or v in ("nan", "inf", "-inf"))]
        return problems
    required, optional = fields
    if not required <= set(payload) <= required | optional:
        problems.append(f"{kind} payload fields {sorted(payload)}")
    if kind == "state" and payload.get("state") not in STATES:
        problems.append(f"undocumented state {payload.get('state')!r}")
    if kind == "error" and payload.get("kind") not in ERROR_KINDS:
        problems.append(f"undocumented error kind {payload.get('kind')!r}")
    if kind == "sample":
        m = ARTIFACT_FILE.match(str(payload.get("path", "")))
        if payload.get("kind") not in SAMPLE_KINDS:
            problems.append(f"undocumented sample kind {payload.get('kind')!r}")
        if not m or not str(payload.get("path")).startswith(f"samples/{payload.get('name')}") \
                or int(m["step"]) != obj.get("step"):
            problems.append(f"sample path {payload.get('path')!r} for {payload.get('name')!r} at step {obj.get('step')}")
    return problems


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
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A full disk (or a kill between write and rename): never leave the partial file
        # behind, or it keeps the disk full for the next attempt too.
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


_TEMP_FILE = re.compile(r"^\..+\.(?P<pid>\d+)\.tmp$")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files that writers which have since died left in ``folder``
    (atomic_write_bytes names them .<name>.<pid>.tmp); returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP_FILE.match(p.name)
        if m and int(m["pid"]) != os.getpid() and not pid_alive(int(m["pid"])):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _append_line(path: Path, obj: dict) -> None:
    _append_text(path, json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")


def _append_text(path: Path, text: str) -> None:
    # One write() call of a short line to a file opened with O_APPEND lands whole.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
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
        if not isinstance(cfg, dict) or not isinstance(cfg.get("recipe"), str) or not isinstance(cfg.get("params"), dict):
            raise RunDirError(f"{self.config_path} is damaged: it needs a 'recipe' name and a 'params' object")
        fmt = cfg.get("format", 0)
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            raise RunDirError(f"{self.config_path} is damaged: format {fmt!r} is not a version number")
        if fmt > FORMAT_VERSION:
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

    # -- process --
    def engine_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def lock_path(self) -> Path:
        return self.path / "engine.lock"

    def engine_alive(self) -> bool:
        """True while an engine holds this run's lock (or, for a run from before the lock,
        while the process in its pid file lives)."""
        held = lock_held(self.lock_path)
        if held is not None:
            return held
        pid = self.engine_pid()
        return pid is not None and pid_alive(pid)

    def artifact_path(self, rel: object) -> Path | None:
        """The file an event names, or None when the name is not a relative path that stays
        inside this run (``../``, an absolute path, a link that points out): the run
        directory is untrusted input."""
        if not isinstance(rel, str) or not rel or os.path.isabs(rel):
            return None
        try:
            base = self.path.resolve()
            target = (base / rel).resolve()
        except (OSError, RuntimeError):
            return None
        return target if target.is_relative_to(base) and target != base else None


def acquire_lock(path: Path) -> int | None:
    """Take the exclusive lock on ``path`` for as long as the returned file descriptor stays
    open (the process's life); None when another process holds it. Atomic: of two engines
    started at the same moment, one gets it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the pid file is the only guard
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def lock_held(path: Path) -> bool | None:
    """Whether some process holds the lock on ``path``; None when there is no lock file (or no
    way to tell), so the caller falls back to the pid file."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


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
        """Events whose frame is well formed (a type, a whole-number step, a numeric time and
        an object payload); anything else is skipped."""
        for obj in self.read_objects():
            kind, step, when, payload = obj.get("type"), obj.get("step", 0), obj.get("time", 0.0), obj.get("payload", {})
            if not isinstance(kind, str) or not isinstance(payload, dict):
                continue
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                continue
            if isinstance(when, bool) or not isinstance(when, (int, float)):
                continue
            yield Event(kind, step, float(when), payload)


@dataclass
class History:
    """What a run has done so far, folded from its event log."""

    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    state: str = "new"
    device: str = ""
    step: int = 0
    status: dict = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)  # name -> relative path of the newest artifact
    sample_steps: dict[str, int] = field(default_factory=dict)  # name -> the step it was drawn at
    captions: dict[str, str] = field(default_factory=dict)  # name -> its caption
    params: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    last_log_time: float = 0.0

    def apply(self, ev: Event) -> None:
        """Fold one event in. A field of the wrong type (a crafted or damaged log) is
        skipped: only what the format documents is kept, in the types it documents."""
        p = ev.payload
        if ev.type == "metric":
            for k, v in p.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.metrics.setdefault(k, []).append((ev.step, float(v)))
        elif ev.type == "state":
            if p.get("state") not in STATES:
                return
            self.state = p["state"]
            if isinstance(p.get("device"), str):
                self.device = p["device"]
            cut = p.get("resumed_from")
            if isinstance(cut, int) and not isinstance(cut, bool):
                self.step = cut
                for k, pts in self.metrics.items():
                    self.metrics[k] = [pt for pt in pts if pt[0] <= cut]
                return
        elif ev.type == "status":
            self.status = {k: v for k, v in p.items()
                           if (isinstance(v, (int, float)) and not isinstance(v, bool)) or (k == "unit" and isinstance(v, str))}
        elif ev.type == "sample":
            name, path = p.get("name"), p.get("path")
            if not (isinstance(name, str) and isinstance(path, str) and _safe_relative(path)):
                return
            self.samples[name] = path
            self.sample_steps[name] = ev.step
            self.captions[name] = p.get("caption") if isinstance(p.get("caption"), str) else ""
        elif ev.type == "param":
            if not isinstance(p.get("key"), str) or "value" not in p:
                return
            self.params[p["key"]] = p["value"]
        elif ev.type == "error":
            self.errors.append({k: str(p.get(k, "")) for k in ("kind", "message", "hint")})
        elif ev.type == "log":
            if not isinstance(p.get("message"), str):
                return
            self.logs.append(p["message"])
            self.last_log_time = ev.time
        self.step = max(self.step, ev.step)


def _safe_relative(path: str) -> bool:
    """A path an event may name: relative, and never climbing out with "..". (Links that
    point out are caught when the file is opened: :meth:`RunDir.artifact_path`.)"""
    return not os.path.isabs(path) and ".." not in Path(path).parts


def read_history(run: RunDir | str | Path) -> History:
    run = run if isinstance(run, RunDir) else RunDir(run)
    h = History()
    for ev in run.events():
        h.apply(ev)
    return h


_RUN_NAME = re.compile(r"^\d{8}-\d{6}-")


def runs_index() -> Path:
    """Runs created outside the runs root (``--run-dir``) are listed here, one path a line,
    so `genstudio runs` finds them wherever they live."""
    return genstudio_home() / "runs.index"


def index_run(path: Path) -> None:
    """Remember a run that lives outside the runs root."""
    path = Path(path).absolute()
    if path.parent == runs_root().absolute():
        return
    index = runs_index()
    index.parent.mkdir(parents=True, exist_ok=True)
    _append_text(index, str(path) + "\n")


def _indexed_runs() -> list[Path]:
    try:
        lines = runs_index().read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [Path(line) for line in lines if line.strip() and os.path.isabs(line.strip())]


def list_runs(root: Path | None = None) -> list[RunDir]:
    """Every run under the runs root (and, for the default root, every run indexed from
    elsewhere that still exists), newest first."""
    folders = []
    base = Path(root) if root else runs_root()
    if base.is_dir():
        folders = [p for p in base.iterdir() if p.is_dir()]
    if root is None:
        folders += _indexed_runs()
    seen, runs = set(), []
    for p in folders:
        try:
            if not (p / "config.json").is_file():
                continue
            key = p.resolve()
            mtime = (p / "config.json").stat().st_mtime
        except OSError:
            continue
        if key not in seen:
            seen.add(key)
            runs.append((mtime, RunDir(p)))
    return [rd for _, rd in sorted(runs, key=lambda pair: pair[0], reverse=True)]


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
