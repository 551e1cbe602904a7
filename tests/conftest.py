"""Shared fixtures. Every test runs with GENSTUDIO_HOME in a temporary folder; the cache
(embedded digits, the digit classifier) is shared by the whole session so it is built once."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def home(tmp_path, shared_cache, monkeypatch) -> Path:
    """A fresh GenStudio home per test, whose cache/ links to the session's shared cache."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").symlink_to(shared_cache, target_is_directory=True)
    monkeypatch.setenv("GENSTUDIO_HOME", str(home))
    monkeypatch.delenv("GENSTUDIO_FAULT_NAN_AT", raising=False)
    yield home
    # No engine a test started outlives it, whatever the test did.
    from engine.launch import LAUNCHED

    for proc in LAUNCHED:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    LAUNCHED.clear()


@pytest.fixture
def one_thread():
    """Tiny models run faster on one CPU thread, far faster when the cores are busy (two
    threads then wait on each other). A test module takes it for every test with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def untrained_judge(monkeypatch):
    """An untrained digit classifier in place of the cached one (scores in milliseconds),
    for tests that train in this process: an engine process started by a test fits the
    real one in the session's cache."""
    from engine.metrics import digit_classifier

    monkeypatch.setattr(digit_classifier, "get_digit_classifier",
                        lambda *a, **k: digit_classifier.DigitClassifier().eval())


TINY = {"train_size": 512, "batch_size": 32, "width": 8, "latent_dim": 2, "steps": 40}


def make_run(path: Path, recipe: str = "vae", **params) -> "object":
    from engine.registry import get_config_class
    from engine.schema import validate
    from dataclasses import asdict
    from engine.rundir import RunDir

    cfg = validate(get_config_class(recipe), {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config(recipe, asdict(cfg), device="cpu", lesson="vae-digits")
    return rd


def wait_for_history(rd, predicate, timeout: float = 90.0):
    """Poll a run's history until ``predicate(history)`` holds; fail with the engine log."""
    import time

    from engine.rundir import read_history

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hist = read_history(rd)
        if predicate(hist):
            return hist
        time.sleep(0.02)
    log = rd.log_path.read_text() if rd.log_path.exists() else "(no engine log)"
    raise AssertionError(f"timed out waiting for the run; engine log:\n{log}")


def stop_part_way(rd, after: int = 3, timeout: float = 60.0) -> int:
    """Train ``rd`` in this process and ask it to stop once it has done ``after`` steps; the
    step it stopped at. An exact-resume test then continues it with
    ``Runner(rd.path, commands_from=rd.commands_path.stat().st_size).run()`` and compares
    it with a run never stopped."""
    import threading
    import time

    from engine.rundir import read_history
    from engine.runner import Runner

    def stop():
        deadline = time.monotonic() + timeout
        while read_history(rd).step < after and time.monotonic() < deadline:
            time.sleep(0.01)
        rd.send("stop")

    thread = threading.Thread(target=stop)
    thread.start()
    code = Runner(rd.path).run()
    thread.join(timeout=10)
    hist = read_history(rd)
    assert code == 0 and hist.state == "stopped", (code, hist.state)
    return hist.step


def stop_at(rd, step: int) -> None:
    """Train ``rd`` in this process and stop it at exactly ``step`` (step it that far while
    paused, then ask it to stop)."""
    rd.send("step", n=step)
    assert stop_part_way(rd, after=step) == step


async def wait_for(pilot, predicate, timeout: float = 90.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` holds (a studio test's only way to wait)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def settle(pilot, quiet: float = 0.5, timeout: float = 30.0) -> None:
    """Wait until the screen has not changed for ``quiet`` seconds: a snapshot taken
    sooner depends on how loaded the machine is (a throttled chart redraw, an image
    still fitting its pane, a scroll hint that appears after the first layout)."""
    import time

    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        await pilot.pause(0.1)
        shot = pilot.app.export_screenshot()
        if shot != last:
            last, since = shot, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError(f"the screen kept changing for {timeout} s")
