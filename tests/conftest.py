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


def stopped_run(path: Path, recipe: str, lesson: str, events=(), image: tuple[str, int, int, str] | None = None):
    """A run of ``recipe``'s defaults for ``lesson`` that ran on the CPU and stopped at step
    10: ``events`` ((type, step, payload), ...) come in between, and ``image`` (name, rows,
    columns, caption) adds a grid of that many random 32-pixel tiles as its newest view."""
    from dataclasses import asdict

    import numpy as np
    from PIL import Image

    from engine.registry import get_config_class
    from engine.rundir import RunDir
    from engine.schema import validate

    rd = RunDir(path)
    rd.path.mkdir(parents=True)
    rd.write_config(recipe, asdict(validate(get_config_class(recipe), {})), device="cpu", lesson=lesson)
    rd.emit("state", 0, {"state": "running", "device": "cpu"})
    for kind, step, payload in events:
        rd.emit(kind, step, payload)
    if image:
        name, rows, cols, caption = image
        rd.samples_dir.mkdir()
        grid = np.random.default_rng(0).random((rows * 34 + 2, cols * 34 + 2, 3)) * 255
        Image.fromarray(grid.astype(np.uint8)).save(rd.samples_dir / f"{name}-00000010.png")
        rd.emit("sample", 10, {"name": name, "kind": "image", "path": f"samples/{name}-00000010.png",
                               "caption": caption})
    rd.emit("state", 10, {"state": "stopped"})
    return rd


async def open_tab(pilot, key: str):
    """Wait for the lesson screen's first snapshot of its run, then press ``key`` (a tab's
    number); returns the screen."""
    screen = pilot.app.screen
    await wait_for(pilot, lambda: getattr(screen, "snapshot", None) is not None, what="snapshot")
    await pilot.press(key)
    return screen


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
