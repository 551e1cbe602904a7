"""The run directory's format, as documented at the top of engine/rundir.py, is what the
runner writes: every event of real runs passes check_event, every literal the runner can
emit is documented, and the documentation names every constant."""

from __future__ import annotations

import ast
import json
import threading
import time
from dataclasses import asdict

import pytest

from conftest import ROOT, make_run
from engine import rundir
from engine.rundir import ERROR_KINDS, EVENT_FIELDS, SAMPLE_KINDS, STATES, RunDir, check_event, read_history
from engine.runner import Runner


def events_of(rd: RunDir) -> list[dict]:
    return [json.loads(line) for line in rd.events_path.read_text().splitlines()]


def assert_documented(rd: RunDir) -> list[dict]:
    events = events_of(rd)
    problems = {i: check_event(e) for i, e in enumerate(events)}
    assert not any(problems.values()), {i: (events[i], p) for i, p in problems.items() if p}
    return events


def test_check_event_catches_what_is_not_documented():
    good = {"type": "sample", "step": 3, "time": 1.0,
            "payload": {"name": "x", "kind": "image", "path": "samples/x-r2-00000003.png", "caption": ""}}
    assert check_event(good) == []
    assert check_event({**good, "type": "telemetry"})
    assert check_event({**good, "step": "3"})
    assert check_event({**good, "payload": {**good["payload"], "path": "samples/x-00000004.png"}})  # wrong step
    assert check_event({**good, "payload": {**good["payload"], "path": "../x-00000003.png"}})
    assert check_event({"type": "error", "step": 0, "time": 0.0, "payload": {"kind": "gremlin", "message": "", "hint": ""}})
    assert check_event({"type": "state", "step": 0, "time": 0.0, "payload": {"state": "sleeping"}})
    assert check_event({"type": "metric", "step": 0, "time": 0.0, "payload": {"loss": 1.0}})  # no split
    assert check_event("not an object")


def test_the_documentation_names_every_documented_constant():
    doc = rundir.__doc__
    for name in [*EVENT_FIELDS, *ERROR_KINDS, *STATES, *SAMPLE_KINDS, *rundir.COMMANDS]:
        assert name in doc, name
    for fields in EVENT_FIELDS.values():
        for field in (fields[0] | fields[1]) if fields else ():
            assert f'"{field}"' in doc, field
    assert "-r<request>" in doc and "<name>-<step:08d>" in doc and ".error" in doc


def test_every_literal_the_engine_emits_is_documented():
    """A static pass over the engine: event types, error kinds and states written as literals."""
    types, kinds, states = set(), set(), set()
    for path in (ROOT / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                if node.func.attr == "emit":
                    types.add(node.args[0].value)
                elif node.func.attr == "_fail":
                    kinds.add(node.args[0].value)
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if isinstance(k, ast.Constant) and k.value == "state" and isinstance(v, ast.Constant):
                        states.add(v.value)
    assert {"state", "metric", "sample", "error", "ddp"} <= types  # the pass sees the runner
    assert types <= set(EVENT_FIELDS), types - set(EVENT_FIELDS)
    assert kinds and kinds <= set(ERROR_KINDS), kinds - set(ERROR_KINDS)
    assert states and states <= set(STATES), states - set(STATES)


def _gpt_run(path, **params) -> RunDir:
    from engine.configs.gpt import GPTConfig
    from engine.schema import validate

    cfg = validate(GPTConfig, {"model": "custom", "layers": 1, "heads": 2, "width": 16, "context": 16,
                               "batch_size": 4, "steps": 6, "warmup": 2, "max_new_tokens": 5, **params})
    path.mkdir(parents=True)
    rd = RunDir(path)
    rd.write_config("gpt", asdict(cfg), device="cpu", lesson="gpt-from-scratch")
    return rd


def test_a_served_run_with_requests_writes_only_documented_events(tmp_path):
    rd = _gpt_run(tmp_path / "gpt")

    def drive():
        deadline = time.monotonic() + 90
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            rd.send("set", key="temperature", value=0.5)
            rd.send("set", key="layers", value=3)  # not live: refused with a log line
            rd.send("interact", name="generate", reply="generation", prompt="The ", request=1)
            rd.send("interact", name="generate", reply="generation", prompt="✓", request=2)
            while read_history(rd).samples.get("generation.error") is None and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    events = assert_documented(rd)
    seen = {e["type"] for e in events}
    assert {"state", "metric", "status", "sample", "log", "param", "checkpoint"} <= seen
    paths = [e["payload"]["path"] for e in events if e["type"] == "sample"]
    assert any("-r1-" in p for p in paths) and any(p.startswith("samples/generation.error-r2-") for p in paths)


def test_control_commands_and_failures_write_only_documented_events(tmp_path, monkeypatch):
    controlled = make_run(tmp_path / "controlled", steps=50)
    for cmd in ("pause", "step", "checkpoint", "sample", "resume", "stop"):
        controlled.send(cmd)
    assert Runner(controlled.path).run() == 0
    states = [e["payload"]["state"] for e in assert_documented(controlled) if e["type"] == "state"]
    assert "paused" in states and states[-1] == "stopped"

    empty = tmp_path / "no-images"
    empty.mkdir()
    data = make_run(tmp_path / "data", dataset="folder", data_path=str(empty))
    assert Runner(data.path).run() == 1
    errors = [e["payload"] for e in assert_documented(data) if e["type"] == "error"]
    assert errors[-1]["kind"] == "data" and "data_path" in errors[-1]["hint"]

    damaged = make_run(tmp_path / "damaged", steps=5)
    damaged.checkpoint_path.parent.mkdir(parents=True)
    damaged.checkpoint_path.write_bytes(b"not a checkpoint")
    assert Runner(damaged.path).run() == 1
    assert [e["payload"]["kind"] for e in assert_documented(damaged) if e["type"] == "error"] == ["checkpoint"]

    monkeypatch.setenv("GENSTUDIO_FAULT_NAN_AT", "2")
    nan = make_run(tmp_path / "nan", steps=50)
    assert Runner(nan.path).run() == 1
    assert [e["payload"]["kind"] for e in assert_documented(nan) if e["type"] == "error"] == ["nan"]


@pytest.mark.parametrize("bad", ["paused", "sleeping"])
def test_check_event_knows_the_states(bad):
    ev = {"type": "state", "step": 0, "time": 0.0, "payload": {"state": bad}}
    assert bool(check_event(ev)) == (bad not in STATES)
