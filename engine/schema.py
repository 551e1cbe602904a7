"""The hyperparameter schema: how a recipe declares its settings (torch-free).

A recipe's config is a dataclass whose fields are declared with :func:`param`: each has a
type, a default, a range (or a set of choices) and a one-line help text. The studio builds
its form from this, the CLI its ``--set key=value`` parsing, and the engine validates the
resolved config with the same code, so the three can never disagree.

A field that names something on disk is declared with ``path="file"`` or ``path="dir"``:
it is checked and made absolute where a run is created (:mod:`engine.runs`), so no code
needs to know which names are paths.

This module imports nothing of GenStudio's: the UI process imports it.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "ParamSpec", "param", "specs", "validate", "parse_value", "parse_assignments",
           "PATH_KINDS"]

PATH_KINDS = ("file", "dir", "any")  # what a path parameter must name: a file, a folder, or either


class ConfigError(ValueError):
    """A hyperparameter the user gave is unknown, of the wrong type, or out of range."""


@dataclass(frozen=True)
class ParamSpec:
    """Everything the UI and CLI need to know about one hyperparameter."""

    name: str
    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None  # strings, or numbers for an int parameter
    live: bool = False  # True: can change while training runs (applied between steps)
    log: bool = False  # True: the natural scale is logarithmic (learning rates)
    path: str | None = None  # "file", "dir" or "any": the value names something on disk ("" = unset)

    def range_text(self) -> str:
        if self.choices:
            return " | ".join(str(c) for c in self.choices)
        if self.path:
            return {"file": "a file", "dir": "a folder", "any": "a file or folder"}[self.path]
        if self.type is bool:
            return "true | false"
        if self.type is str:
            return "text"
        kind = "whole number" if self.type is int else "number"
        if self.low is None and self.high is None:
            return f"any {kind}"
        if self.high is None:
            return f">= {_fmt(self.low)}"
        if self.low is None:
            return f"<= {_fmt(self.high)}"
        return f"{_fmt(self.low)} .. {_fmt(self.high)}"


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    return f"{x:g}"


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple | None = None,
    live: bool = False,
    log: bool = False,
    path: str | None = None,
) -> Any:
    """Declare a hyperparameter field (use inside a recipe's config dataclass)."""
    if path is not None and path not in PATH_KINDS:
        raise ValueError(f"path must be one of {PATH_KINDS}, got {path!r}")
    meta = {"help": help, "low": low, "high": high, "choices": choices, "live": live, "log": log, "path": path}
    return field(default=default, metadata={"genstudio": meta})


def specs(config_cls: type) -> list[ParamSpec]:
    """The ordered list of parameter specs of a config dataclass."""
    out = []
    hints = {f.name: f.type for f in dataclasses.fields(config_cls)}
    for f in dataclasses.fields(config_cls):
        meta = f.metadata.get("genstudio")
        if meta is None:
            continue
        typ = hints[f.name]
        if isinstance(typ, str):  # from __future__ annotations
            typ = {"int": int, "float": float, "str": str, "bool": bool}[typ]
        out.append(ParamSpec(name=f.name, type=typ, default=f.default, **meta))
    return out


def parse_value(spec: ParamSpec, raw: Any) -> Any:
    """Convert ``raw`` (a string from a form or the command line, or a JSON value) to the
    spec's type and check its range. Raises :class:`ConfigError` with a message a learner
    can act on."""
    name = spec.name
    try:
        if spec.type is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).strip().lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError
        elif spec.type is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            value = int(str(raw).strip().replace("_", "")) if not isinstance(raw, (int, float)) else int(raw)
        elif spec.type is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"{name} must be a finite number, got {raw!r}")
        else:
            if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
                raise ValueError
            value = str(raw)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError):
        kind = {int: "a whole number", float: "a number", bool: "true or false"}.get(spec.type, "text")
        raise ConfigError(f"{name} must be {kind}, got {raw!r} (allowed: {spec.range_text()})") from None
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{name} must be one of {spec.range_text().replace(' | ', ', ')}; got {raw!r}")
    if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
        raise ConfigError(f"{name} = {raw} is out of range; allowed: {spec.range_text()} ({spec.help})")
    return value


def validate(config_cls: type, values: dict[str, Any]) -> Any:
    """Build a config from a dict of (possibly string) values; unknown keys are refused with
    a suggestion, every value is type- and range-checked."""
    by_name = {s.name: s for s in specs(config_cls)}
    kwargs = {}
    for key, raw in values.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown hyperparameter {key!r}{hint} (known: {', '.join(by_name)})")
        kwargs[key] = parse_value(by_name[key], raw)
    return config_cls(**kwargs)


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Turn ``["lr=0.001", "beta=2"]`` into a dict, refusing anything without ``=``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
