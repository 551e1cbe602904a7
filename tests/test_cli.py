"""The genstudio command: exit codes (0 ok, 1 failed run, 2 bad usage) and messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT, TINY, wait_for_history
from engine.rundir import RunDir, list_runs, read_history
from studio.cli import main

TINY_SETS = [f"--set={k}={v}" for k, v in TINY.items() if k != "steps"]


def test_train_headless_writes_a_run_and_prints_a_summary(tmp_path, capsys):
    run_dir = tmp_path / "r1"
    code = main(["train", "vae", "--steps", "25", "--device", "cpu", "--run-dir", str(run_dir), *TINY_SETS])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "finished" in out and "checkpoint" in out
    hist = read_history(run_dir)
    assert hist.state == "finished" and hist.step == 25
    assert json.loads((run_dir / "config.json").read_text())["params"]["train_size"] == TINY["train_size"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "vea"], "Did you mean 'vae'"),
        (["train", "vae", "--set", "beta=-1"], "beta = -1 is out of range"),
        (["train", "vae", "--set", "lr=fast"], "lr must be a number"),
        (["train", "vae", "--set", "latent=4"], "did you mean 'latent_dim'"),
        (["train", "vae", "--set", "beta"], "expects key=value"),
        (["train", "vae", "--set", "dataset=mnist", "--set", "data_path=/no/such/folder"], "does not exist"),
        (["sample", "no-such-run", "-o", "x.png"], "no run called"),
        (["sample", "whatever", "-o", "x.jpg"], "write a .png file"),
        (["attach", "nothing-here"], "no run called"),
        (["open", "gan-digits"], "unknown lesson"),
    ],
)
def test_bad_usage_exits_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not list_runs()  # nothing was created on bad input


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["train", "vae", "--device", "tpu"])
    assert e.value.code == 2


def test_failed_run_exits_1_and_says_what_to_try(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENSTUDIO_FAULT_NAN_AT", "3")
    code = main(["train", "vae", "--steps", "500", "--device", "cpu", "--run-dir", str(tmp_path / "r"), *TINY_SETS])
    out = capsys.readouterr().out
    assert code == 1
    assert "nan" in out.lower() and "what to try" in out


def test_corrupt_data_folder_fails_the_run_with_exit_1(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not really a png")
    code = main(["train", "vae", "--steps", "5", "--device", "cpu", "--run-dir", str(tmp_path / "r"),
                 "--set", "dataset=folder", "--set", f"data_path={folder}"])
    out = capsys.readouterr().out
    assert code == 1
    assert "error" in out.lower() and str(folder) in out.replace("\n", "")


def test_runs_lessons_and_sample(tmp_path, capsys):
    run_dir = tmp_path / "r"
    assert main(["train", "vae", "--steps", "10", "--device", "cpu", "--run-dir", str(run_dir), *TINY_SETS]) == 0
    capsys.readouterr()
    assert main(["lessons"]) == 0
    assert "vae-digits" in capsys.readouterr().out
    assert main(["resume", str(run_dir)]) == 2  # finished: nothing to continue
    assert "already finished" in capsys.readouterr().out
    out_png = tmp_path / "grid.png"
    assert main(["sample", str(run_dir), "-o", str(out_png), "-n", "16", "--device", "cpu"]) == 0
    img = Image.open(out_png)
    assert img.size == (4 * 30 + 2, 4 * 30 + 2)


def test_runs_lists_runs_under_the_home(capsys):
    from engine.runs import create_run

    rd = create_run("vae", ["steps=5"], None, "cpu", None)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert rd.name[:15] in out and "vae" in out


def test_resume_continues_a_stopped_run_headless(tmp_path, capsys):
    from engine.runner import Runner
    from engine.runs import create_run

    rd = create_run("vae", [f"{k}={v}" for k, v in TINY.items() if k != "steps"], 30, "cpu", str(tmp_path / "s"))
    rd.send("stop")
    assert Runner(rd.path).run() == 0  # stopped at once, with a checkpoint
    assert main(["resume", str(rd.path)]) == 0
    assert "finished" in capsys.readouterr().out
    hist = read_history(rd)
    assert hist.state == "finished" and hist.step == 30


def test_sample_without_checkpoint_exits_1(tmp_path, capsys):
    from engine.runs import create_run

    rd = create_run("vae", [], None, "cpu", str(tmp_path / "fresh"))
    assert main(["sample", str(rd.path), "-o", str(tmp_path / "g.png")]) == 1
    assert "no checkpoint yet" in capsys.readouterr().err


def test_the_tui_refuses_to_start_without_a_terminal(capsys):
    code = subprocess.run([sys.executable, "-m", "studio.cli"], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert code.returncode == 2
    assert "needs a terminal" in code.stderr


def test_engine_survives_sigkill_and_resumes(tmp_path):
    """SIGKILL mid-run: the last checkpoint is intact and a resumed run continues the step
    count, optimiser and RNG state, and the metric history."""
    from engine.checkpoint import load_checkpoint
    from engine.launch import start_engine, wait_for_pid
    from engine.runs import create_run

    rd = create_run("vae", [f"{k}={v}" for k, v in TINY.items() if k != "steps"], 1_000_000, "cpu", str(tmp_path / "k"))
    proc = start_engine(rd.path)
    assert wait_for_pid(rd.path, proc, timeout=60) is not None

    def wait(pred):
        return wait_for_history(rd, pred)

    wait(lambda h: h.step >= 20)
    rd.send("checkpoint")
    wait(lambda h: any(e.type == "checkpoint" for e in rd.events()))
    ck_step = load_checkpoint(rd.checkpoint_path)["step"]
    wait(lambda h: h.step > ck_step + 5)  # it trains on past the checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert not RunDir(rd.path).engine_alive()
    assert load_checkpoint(rd.checkpoint_path)["step"] == ck_step  # intact

    proc2 = start_engine(rd.path)
    try:
        def resumed():
            return [e for e in rd.events() if e.type == "state" and "resumed_from" in e.payload]

        wait(lambda h: resumed())
        from engine.rundir import RunDirError

        with pytest.raises(RunDirError, match="already training"):
            start_engine(rd.path)  # never two engines on one run
        assert resumed()[-1].payload["resumed_from"] == ck_step
        hist = wait(lambda h: h.state == "running" and h.step > ck_step + 2)
        steps = [s for s, _ in hist.metrics["train/loss"]]
        assert steps == sorted(steps)  # the history continues without the lost steps
    finally:
        assert main(["stop", str(rd.path)]) == 0
        proc2.wait(timeout=60)
    assert read_history(rd).state == "stopped"
    assert main(["stop", str(rd.path)]) == 0  # not training any more: says so, exit 0


def test_stop_on_a_finished_run_that_still_serves_its_views_does_not_offer_to_resume(tmp_path, capsys, monkeypatch):
    """The studio's engine answers the views for a while after training; `genstudio stop`
    then ends it, and must not say that `genstudio resume` would continue a finished run."""
    from conftest import make_run

    rd = make_run(tmp_path / "f", steps=5)
    rd.emit("state", 0, {"state": "running"})
    rd.emit("state", 5, {"state": "finished"})
    monkeypatch.setattr(RunDir, "engine_alive", lambda self: True)  # serving its views
    assert main(["stop", str(rd.path)]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "resume" not in out, out
    sent = [json.loads(line)["cmd"] for line in rd.commands_path.read_text().splitlines()]
    assert sent == ["stop"]  # the serving engine is still asked to exit
