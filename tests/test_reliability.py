"""Nothing lost, nothing surprising: each defect found by trying GenStudio as a user and as
an adversary would, reproduced here (these tests failed before their fixes)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TINY, make_run, wait_for_history
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from studio.cli import main

TINY_SETS = [f"--set={k}={v}" for k, v in TINY.items() if k != "steps"]


def stopped_run(path: Path, steps: int = 30) -> RunDir:
    """A run stopped at once, with a checkpoint at step 0."""
    rd = make_run(path, steps=steps)
    rd.send("stop")
    assert Runner(rd.path).run() == 0
    return rd


# -- 1. paths resolved once, at the edge; a command judged by what happened this time --

def test_a_relative_run_dir_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "vae", "--steps", "5", "--device", "cpu", "--run-dir", "relrun", *TINY_SETS]) == 0
    hist = read_history(tmp_path / "relrun")
    assert hist.state == "finished" and hist.step == 5


def test_resume_reports_failure_when_the_engine_dies_at_once(tmp_path, monkeypatch, capsys):
    """The old history said "stopped": resume printed it and exited 0, though nothing ran."""
    stopped_run(tmp_path / "k1")
    import studio.headless as headless

    def dead_engine(run_dir, **kwargs):
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])

    monkeypatch.setattr(headless, "start_engine", dead_engine)
    monkeypatch.chdir(tmp_path)
    code = main(["resume", "k1"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "died" in out and "stopped at step" not in out


def test_stop_and_resume_advice_names_a_path_that_works_from_anywhere(tmp_path, capsys):
    rd = make_run(tmp_path / "t1", steps=1_000_000)
    from engine.launch import start_engine, wait_for_pid

    proc = start_engine(rd.path)
    assert wait_for_pid(rd.path, proc, timeout=60)
    assert main(["stop", str(rd.path)]) == 0
    out = capsys.readouterr().out
    assert f"genstudio resume {rd.path}" in out
    proc.wait(timeout=60)


# -- 2. one engine per run --

def test_two_racing_engines_train_a_run_once(tmp_path):
    rd = stopped_run(tmp_path / "race", steps=60)
    from engine.launch import engine_env

    cmd = [sys.executable, "-m", "engine", "run", str(rd.path), "--commands-from",
           str(rd.commands_path.stat().st_size)]
    procs = [subprocess.Popen(cmd, cwd=str(rd.path), env=engine_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    assert any("already" in (o or "") for o, _ in outs)
    steps = [e.step for e in rd.events() if e.type == "metric" and any(k.startswith("train/") for k in e.payload)]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no step trained twice
    assert read_history(rd).state == "finished"


def test_a_held_lock_means_alive_even_without_a_pid_file(tmp_path):
    rd = make_run(tmp_path / "r", steps=1_000_000)
    from engine.launch import start_engine, wait_for_pid

    proc = start_engine(rd.path)
    assert wait_for_pid(rd.path, proc, timeout=60)
    rd.pid_path.unlink()  # a stray cleanup: the lock still tells
    assert rd.engine_alive()
    from engine.rundir import RunDirError

    with pytest.raises(RunDirError, match="already training"):
        start_engine(rd.path)
    rd.send("stop")
    proc.wait(timeout=60)
    assert not rd.engine_alive()


# -- 3. a terminal that no longer controls its run --

def test_sigterm_asks_a_foreground_run_to_stop_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "fg"
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "train", "vae", "--steps", "1000000", "--device", "cpu",
                             "--run-dir", str(run_dir), *TINY_SETS], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    wait_for_history(RunDir(run_dir), lambda h: h.step > 3)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert "genstudio resume" in out, out
    hist = read_history(run_dir)
    assert hist.state == "stopped"
    assert not RunDir(run_dir).engine_alive()  # nothing keeps training unseen


def test_runs_are_listed_wherever_they_live(tmp_path, capsys):
    elsewhere = tmp_path / "experiments" / "mine"
    assert main(["train", "vae", "--steps", "3", "--device", "cpu", "--run-dir", str(elsewhere), *TINY_SETS]) == 0
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in rows] == [str(elsewhere)]
    assert main(["attach", "mine"]) == 2  # no terminal here, but the name resolves: it says why not
    assert "needs a terminal" in capsys.readouterr().err


def test_detach_starts_the_run_in_the_background_and_says_how_to_attach(tmp_path, capsys):
    code = main(["train", "vae", "--steps", "20", "--device", "cpu", "--detach", "--run-dir", str(tmp_path / "bg"),
                 *TINY_SETS])
    out = capsys.readouterr().out
    assert code == 0 and "genstudio attach" in out and str(tmp_path / "bg") in out
    hist = wait_for_history(RunDir(tmp_path / "bg"), lambda h: h.state == "finished")
    assert hist.step == 20


# -- 4. malformed records are skipped or reported, never a crash --

MALFORMED = [
    {"type": "metric", "step": 1, "time": 0, "payload": "a string"},
    {"type": "sample", "step": 1, "time": 0, "payload": {"name": "samples", "kind": "image"}},
    {"type": "metric", "step": "not a number", "time": 0, "payload": {"train/loss": 1.0}},
    {"type": "state", "step": 1, "time": 0, "payload": {"state": ["running"]}},
    {"type": "param", "step": 1, "time": 0, "payload": {"value": 3}},
    {"type": "sample", "step": 1, "time": 0, "payload": {"name": 7, "path": "samples/x-00000001.png"}},
    {"type": "log", "step": 1, "time": "noon", "payload": {"message": ["not", "text"]}},
    {"type": "error", "step": 1, "time": 0, "payload": ["nan"]},
    {"type": "status", "step": 1, "time": 0, "payload": {"steps_per_s": "fast", "elapsed": None}},
]


def damaged_run(path: Path) -> RunDir:
    rd = make_run(path, steps=100)
    rd.emit("state", 0, {"state": "running", "device": "cpu"})
    rd.emit("metric", 5, {"train/loss": 2.0})
    with open(rd.events_path, "a") as f:
        for bad in MALFORMED:
            f.write(json.dumps(bad) + "\n")
        f.write("{not json at all\n")
        f.write("[1, 2, 3]\n")
    rd.emit("metric", 6, {"train/loss": 1.5})
    rd.emit("state", 6, {"state": "stopped"})
    return rd


def test_history_skips_malformed_events(tmp_path):
    hist = read_history(damaged_run(tmp_path / "d"))
    assert hist.state == "stopped" and hist.step == 6
    assert hist.metrics["train/loss"] == [(5, 2.0), (6, 1.5)]
    assert hist.samples == {}


def test_runs_and_the_runs_screen_survive_malformed_runs(tmp_path, capsys):
    from engine.rundir import runs_root

    damaged_run(runs_root() / "20260101-000000-vae")
    nul = runs_root() / "20260101-000001-vae"
    nul.mkdir(parents=True)
    (nul / "config.json").write_bytes(b"\x00" * 64)
    bad_steps = make_run(runs_root() / "20260101-000002-vae")
    cfg = json.loads(bad_steps.config_path.read_text())
    cfg["params"]["steps"] = "lots"
    bad_steps.config_path.write_text(json.dumps(cfg))
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and "20260101-000000-vae" in out
    for ref in ("20260101-000001-vae", "20260101-000002-vae"):
        assert main(["resume", ref]) == 2, ref
        assert main(["sample", ref, "-o", str(tmp_path / "g.png")]) in (1, 2)
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.strip(), ref


async def test_the_runs_screen_and_its_reload_survive_malformed_runs(tmp_path):
    from engine.rundir import runs_root
    from studio.app import GenStudioApp
    from studio.screens.runs import RunsScreen

    damaged_run(runs_root() / "20260101-000000-vae")
    (runs_root() / "20260101-000001-vae").mkdir()
    (runs_root() / "20260101-000001-vae" / "config.json").write_text('{"recipe": 3, "params": []}')
    app = GenStudioApp(graphics="halfblock")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("f5")
        await pilot.press("R")
        await pilot.pause()
        assert app.screen.query_one("#runs-table").row_count == 2


# -- 5. disk full --

def test_a_full_disk_while_checkpointing_frees_the_partial_file_and_says_so(tmp_path, monkeypatch):
    rd = make_run(tmp_path / "full", steps=20)
    import engine.rundir as rundir_module

    real_replace = os.replace
    calls = {"n": 0}

    def full_after_first(src, dst):
        if str(dst).endswith("last.pt"):
            calls["n"] += 1
            if calls["n"] >= 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(rundir_module.os, "replace", full_after_first)
    rd.send("checkpoint")  # the first save succeeds: step 0
    assert Runner(rd.path).run() == 1
    errors = [e.payload for e in rd.events() if e.type == "error"]
    assert errors and errors[-1]["kind"] == "disk"
    assert "disk full" in errors[-1]["message"] and "step 0" in errors[-1]["message"]
    assert not [p for p in rd.checkpoint_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_stale_temporary_files_of_dead_writers_are_removed_on_start(tmp_path):
    rd = make_run(tmp_path / "stale", steps=2)
    rd.checkpoint_path.parent.mkdir(parents=True)
    stale = rd.checkpoint_path.parent / ".last.pt.999999999.tmp"
    stale.write_bytes(b"x" * 1000)
    assert Runner(rd.path).run() == 0
    assert not stale.exists()


def test_sample_to_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    from engine import sample as sample_module

    rd = make_run(tmp_path / "r", steps=2)
    assert Runner(rd.path).run() == 0

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sample_module, "save_png", full)
    assert sample_module.main(str(rd.path), str(tmp_path / "g.png"), n=4, device="cpu") == 1


# -- 6. the GPT on a large corpus --

def test_validation_windows_stay_inside_a_corpus_of_any_length():
    from engine.recipes.gpt import window_starts

    for n in (1_000, 170_000_123, 199_999_999):
        starts = window_starts(n, count=64, context=256)
        assert starts.dtype.is_floating_point is False
        assert int(starts.max()) + 256 + 1 <= n and int(starts.min()) >= 0


# -- 7. clear errors and exit 2 where tracebacks were --

@pytest.mark.parametrize("make_target", ["file", "folder", "missing"])
def test_sample_output_errors(tmp_path, capsys, make_target):
    rd = make_run(tmp_path / "r", steps=2)
    assert Runner(rd.path).run() == 0
    target = {"file": tmp_path / "x.png", "folder": tmp_path / "dir.png", "missing": tmp_path / "no" / "x.png"}[make_target]
    if make_target == "folder":
        target.mkdir()
    code = main(["sample", str(rd.path), "-o", str(target), "-n", "4", "--device", "cpu"])
    err = capsys.readouterr().err
    if make_target == "file":
        assert code == 0 and target.exists()
    else:
        assert code == 2 and "Traceback" not in err
        assert not (tmp_path / "no").exists()


def test_run_dir_on_a_file_or_an_unwritable_place_exits_2(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["train", "vae", "--run-dir", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert main(["train", "vae", "--run-dir", str(locked / "r")]) == 2
        assert "cannot create" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_a_model_too_big_for_memory_is_refused_with_its_size(tmp_path):
    from dataclasses import asdict

    from engine.configs.gpt import GPTConfig
    from engine.schema import validate

    cfg = validate(GPTConfig, {"model": "custom", "layers": 48, "heads": 64, "width": 4096, "context": 64,
                               "steps": 5})
    (tmp_path / "big").mkdir()
    rd = RunDir(tmp_path / "big")
    rd.write_config("gpt", asdict(cfg), device="cpu")
    assert Runner(rd.path).run() == 1
    err = [e.payload for e in rd.events() if e.type == "error"][-1]
    assert err["kind"] == "oom" and "parameters" in err["message"] and "GB" in err["message"]


def test_a_data_error_names_the_setting_to_change(tmp_path):
    corpus = tmp_path / "c.bin"
    corpus.write_bytes(bytes(range(256)) * 100)
    from dataclasses import asdict

    from engine.configs.gpt import GPTConfig
    from engine.schema import validate

    cfg = validate(GPTConfig, {"corpus": "file", "corpus_path": str(corpus), "steps": 2})
    (tmp_path / "r").mkdir()
    rd = RunDir(tmp_path / "r")
    rd.write_config("gpt", asdict(cfg), device="cpu")
    assert Runner(rd.path).run() == 1
    err = [e.payload for e in rd.events() if e.type == "error"][-1]
    assert err["kind"] == "data" and "corpus_path" in err["hint"] and "data_path" not in err["hint"]


# -- 8. paths read from a run directory stay inside it --

def test_a_sample_path_that_leaves_the_run_is_refused(tmp_path):
    rd = make_run(tmp_path / "evil", steps=10)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not yours")
    rd.emit("sample", 1, {"name": "samples", "kind": "image", "path": "../secret.png", "caption": ""})
    rd.emit("sample", 1, {"name": "recon", "kind": "image", "path": str(outside), "caption": ""})
    rd.samples_dir.mkdir()
    (rd.samples_dir / "link-00000001.png").symlink_to(outside)
    rd.emit("sample", 1, {"name": "latent_walk", "kind": "image", "path": "samples/link-00000001.png", "caption": ""})
    assert rd.artifact_path("../secret.png") is None
    assert rd.artifact_path(str(outside)) is None
    assert rd.artifact_path("samples/link-00000001.png") is None
    from studio.bridge import Bridge

    snaps = []
    bridge = Bridge()
    bridge.attach(rd)
    bridge.follow(snaps.append, lambda: bool(snaps))
    assert snaps and snaps[-1].samples == {}


def test_an_answer_to_a_request_reaches_the_studio_though_a_periodic_view_follows_at_once(tmp_path):
    """A request answered just before the run's periodic view of the same name (both in one
    read of the log) used to be folded away: the studio saw only the periodic one, and the
    learner's Enter seemed to do nothing."""
    rd = make_run(tmp_path / "reply", steps=10)
    rd.samples_dir.mkdir()
    for rel in ("samples/raster-r1-00000000.json", "samples/raster-00000001.json"):
        (rd.path / rel).write_text("{}")
    rd.emit("sample", 0, {"name": "raster", "kind": "data", "path": "samples/raster-r1-00000000.json", "caption": ""})
    rd.emit("sample", 1, {"name": "raster", "kind": "data", "path": "samples/raster-00000001.json", "caption": ""})
    from studio.bridge import Bridge

    snaps = []
    bridge = Bridge()
    bridge.attach(rd)
    deadline = time.monotonic() + 5
    bridge.follow(snaps.append, lambda: len(snaps) >= 2 or time.monotonic() > deadline)
    shown = [s.samples.get("raster", "") for s in snaps]
    assert shown[0].endswith("raster-r1-00000000.json") and shown[-1].endswith("raster-00000001.json")
    assert snaps[0].sample_versions["raster"] != snaps[-1].sample_versions["raster"]


def test_progress_reaches_the_studio_once_a_second_and_what_the_learner_did_at_the_next_poll(tmp_path):
    """Every snapshot costs the training process CPU time (the studio repaints), so metrics
    come at most once per POST_INTERVAL; a pause, a live setting or an error must not wait."""
    import threading

    from studio import bridge as bridge_mod
    from studio.bridge import Bridge

    rd = make_run(tmp_path / "pace", steps=10)
    rd.emit("state", 0, {"state": "running"})
    snaps, times = [], []

    def post(snap):
        snaps.append(snap)
        times.append(time.monotonic())
        if len(snaps) == 1:
            rd.emit("metric", 1, {"train/loss": 1.0})  # progress, right after a post
        elif len(snaps) == 2:
            threading.Timer(0.05, rd.emit, ("state", 1, {"state": "paused"})).start()  # the learner pressed p

    b = Bridge()
    b.attach(rd)
    b.engine_alive = lambda: True
    deadline = time.monotonic() + 10
    b.follow(post, lambda: len(snaps) >= 3 or time.monotonic() > deadline)
    assert [s.step for s in snaps] == [0, 1, 1] and snaps[-1].state == "paused"
    assert times[1] - times[0] >= bridge_mod.POST_INTERVAL * 0.9  # the metric waited its turn
    assert times[2] - times[1] < bridge_mod.POST_INTERVAL / 2  # the pause did not


# -- 9. smaller --

def test_resume_without_a_checkpoint_suggests_the_same_settings(tmp_path, capsys):
    rd = make_run(tmp_path / "nock", steps=50, beta=3.0)
    rd.emit("state", 0, {"state": "running"})
    rd.emit("state", 0, {"state": "stopped"})
    assert main(["resume", str(rd.path)]) == 2
    out = capsys.readouterr().out
    assert "--set beta=3.0" in out and "--steps 50" in out


async def test_shrinking_a_lesson_below_80x24_shows_the_notice_and_growing_brings_it_back():
    from studio.app import GenStudioApp, TooSmall
    from studio.screens.lesson import LessonScreen

    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LessonScreen)
        await pilot.resize_terminal(60, 15)
        await pilot.pause()
        assert isinstance(app.screen, TooSmall)
        assert "60x15" in str(app.screen.query_one("#too-small").render())
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert isinstance(app.screen, LessonScreen)


async def test_a_storm_of_resizes_leaves_the_studio_responsive():
    from studio.app import GenStudioApp, TooSmall
    from studio.screens.lesson import LessonScreen

    app = GenStudioApp(graphics="halfblock", lesson="gpt-from-scratch")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        sizes = [(80 + (i * 37) % 120, 24 + (i * 13) % 40) for i in range(10)] + [(70, 20), (130, 45)]
        for w, h in sizes:
            await pilot.resize_terminal(w, h)
        await pilot.pause(0.5)
        assert isinstance(app.screen, LessonScreen) and not any(isinstance(s, TooSmall) for s in app.screen_stack)
        await pilot.press("3")  # the keys still work
        await pilot.pause()
        assert app.screen.query_one("#tabs").active == "tab-attention"
        start = time.monotonic()
        await pilot.pause(1.0)
        assert time.monotonic() - start < 5  # not starved by a redraw loop


# -- CLI conventions --

def test_train_accepts_a_lesson_id(tmp_path, capsys):
    assert main(["train", "vae-digits", "--steps", "2", "--device", "cpu", "--run-dir", str(tmp_path / "r"),
                 *TINY_SETS]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["recipe"] == "vae" and cfg["lesson"] == "vae-digits"


def test_lessons_and_runs_print_plain_full_rows_to_a_pipe_and_json_on_request():
    env = {**os.environ}
    run = lambda *args: subprocess.run([sys.executable, "-m", "studio.cli", *args], cwd=ROOT, capture_output=True,  # noqa: E731
                                       text=True, env=env, timeout=120)
    out = run("lessons").stdout.splitlines()
    ids = [line.split("\t")[0] for line in out]
    assert "diffusion-digits" in ids and "vae-digits" in ids and all("…" not in line for line in out)
    data = json.loads(run("lessons", "--json").stdout)
    assert {"id", "family", "title", "recipe", "progress"} <= set(data[0])
    make_run(Path(env["GENSTUDIO_HOME"]) / "runs" / "20260101-000000-vae-with-a-long-name", steps=5)
    rows = run("runs").stdout.splitlines()
    assert rows[0].split("\t")[0] == "20260101-000000-vae-with-a-long-name"
    assert json.loads(run("runs", "--json").stdout)[0]["state"] == "new"


def test_train_help_lists_only_that_recipes_hyperparameters_aligned(capsys):
    assert main(["train", "vae", "--help"]) == 0
    out = capsys.readouterr().out
    assert "hyperparameters of vae" in out and "latent_dim" in out
    assert "corpus_path" not in out and "hyperparameters of gpt" not in out
    rows = [line for line in out.splitlines() if line.startswith("  latent_dim") or line.startswith("  beta ")]
    assert len({line.index(line.split()[1]) for line in rows}) == 1  # the defaults line up
    assert main(["train", "--help"]) == 0
    assert "genstudio train RECIPE --help" in capsys.readouterr().out
    assert main(["train", "gpt-from-scratch", "-h"]) == 0
    assert "corpus_path" in capsys.readouterr().out


def test_export_writes_the_metric_history_as_csv(tmp_path, capsys):
    import csv

    rd = make_run(tmp_path / "r", steps=50)
    rd.emit("metric", 10, {"train/loss": 2.5})
    rd.emit("metric", 10, {"val/loss": 2.7, "quality/recognisability": 0.5})
    rd.emit("metric", 20, {"train/loss": 2.0})
    out = tmp_path / "m.csv"
    assert main(["export", str(rd.path), "--csv", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["step", "train/loss", "val/loss", "quality/recognisability"]
    assert rows[1] == ["10", "2.5", "2.7", "0.5"] and rows[2] == ["20", "2.0", "", ""]
    assert main(["export", str(rd.path), "--csv", str(tmp_path / "no" / "m.csv")]) == 2
    assert main(["export", str(rd.path), "--csv", "-"]) == 0
    assert "step,train/loss" in capsys.readouterr().out


# -- 10. an idle studio leaves the cores to training --

async def test_a_scrubber_clock_ticks_only_while_playing():
    """Every scrubber (the denoising timeline, the raster replay) ran a 6-12 Hz clock from
    the moment it was mounted: an idle studio woke several times a second and took slices
    of the cores that training used."""
    from textual.app import App

    from studio.widgets.scrubber import Scrubber

    class Counting(Scrubber):
        ticks = 0

        @property
        def frames(self) -> int:
            return 50

        def _tick(self) -> None:
            Counting.ticks += 1
            super()._tick()

    class Host(App):
        def compose(self):
            yield Counting()

    async with Host().run_test() as pilot:
        view = pilot.app.query_one(Counting)
        await pilot.pause(0.6)
        assert Counting.ticks == 0
        view.action_play()
        await pilot.pause(0.6)
        assert Counting.ticks > 0 and view.frame > 0
        view.action_play()  # pause
        await pilot.pause(0.2)
        ticks = Counting.ticks
        await pilot.pause(0.6)
        assert Counting.ticks == ticks
