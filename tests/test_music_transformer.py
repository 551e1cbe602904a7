"""The music Transformer lesson's engine: the GPT reused on music tokens, the loss falls,
continuations stop at bar lines, exact resume, the continue request through a served runner
(bad ones answered with errors), pieces written to files, and a Pilot test of the
continuation panel and the attention viewer on music tokens."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from engine.configs.music_transformer import MusicTransformerConfig
from engine.data.music import BAR, START, token_name, tokens_to_notes
from engine.models.gpt import GPT
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.rundir import RunDir, read_history
from engine.schema import ConfigError, validate
from test_music_data import answers, make_midi_folder, serve_and_send, start_from_the_form, stopped_and_continued

TINY = {"dataset": "midi", "layers": 2, "heads": 2, "width": 32, "context": 32, "batch_size": 8, "steps": 40,
        "lr": 3e-3, "warmup": 5, "dropout": 0.0, "prompt_bars": 2, "new_bars": 2}


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_midi_folder(tmp_path / "midi")


def recipe(folder: Path, **params):
    torch.manual_seed(0)
    return build_recipe("music_transformer", {**TINY, "data_path": str(folder), **params},
                        RunContext(device=torch.device("cpu")))


def write_run(path: Path, folder: Path, **params) -> RunDir:
    cfg = validate(MusicTransformerConfig, {**TINY, "data_path": str(folder), **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("music_transformer", asdict(cfg), device="cpu", lesson="music-transformer")
    return rd


def test_it_is_the_gpt_and_the_loss_falls(folder):
    r = recipe(folder, steps=120)
    assert type(r.model) is GPT and r.model.args.vocab_size == 262
    before = r.evaluate()["val/loss"]
    for _ in range(120):
        r.train_step()
    after = r.evaluate()["val/loss"]
    assert after < 0.5 * before, (before, after)


def test_a_continuation_writes_the_bars_asked_for(folder):
    r = recipe(folder, steps=150)
    for _ in range(150):
        r.train_step()
    name, prompt, real = r.prompt(1, 2)
    assert name == "piece09.mid" and prompt[0] == START and prompt.count(BAR) == 2 and real[0] == BAR
    new = r.continue_tokens(prompt, 2, 1.0, 0, torch.Generator().manual_seed(0))
    assert new.count(BAR) <= 2 and START not in new and len(new) <= 2 * 64
    view, tokens = r.compose(3, seed=1)
    assert view["request"] == 3 and view["prompt"] == 32 and tokens[:len(prompt)] == prompt
    assert view["other"]["label"] == "Bach" and view["steps"] >= 32
    written = (tokens_to_notes(tokens)[1] - 32) / 16  # the label says what was written, not what was asked
    assert f"2 bars given, {written:.2g} written" in view["label"], view["label"]
    assert written >= 1.75 or "of 2 asked" in view["label"]
    # A model this far along writes bars of quarter-note chords: time moves 4 steps at a time.
    shifts = [token_name(t) for t in tokens[len(prompt):] if token_name(t).startswith("+")]
    assert shifts and shifts.count("+4") >= 0.8 * len(shifts), shifts
    att = r.attention(tokens)
    assert att["rows"] == [token_name(t) for t in tokens[-len(att["rows"]):]]
    assert len(att["maps"]) == 2 and len(att["maps"][0]) == 2  # layers, heads


def test_the_continue_tab_has_a_continuation_from_the_first_views(folder):
    """The Continue tab was empty until r: the periodic views fill it too, until the learner
    asks for a continuation of their own (which they then never replace)."""
    r = recipe(folder)
    shown = {a.name: a for a in r.samples()}
    assert shown["continuation"].data == shown["sample"].data and "request" not in shown["continuation"].data
    assert shown["continuation"].caption == shown["sample"].caption
    asked = {a.name: a for a in r.interact("continue", {"request": 1})}
    assert asked["continuation"].data["request"] == 1
    assert "continuation" not in {a.name for a in r.samples()}


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="multiple of heads"):
        validate(MusicTransformerConfig, {"width": 30, "heads": 4})


def test_sample_file_writes_bars_from_nothing(folder, tmp_path):
    r = recipe(folder)
    import mido

    path = r.sample_file(tmp_path / "piece.mid", 2, torch.Generator().manual_seed(0))
    assert len(mido.MidiFile(path).tracks) == 5  # the tempo track and one a voice
    assert r.sample_file(tmp_path / "piece.wav", 1, torch.Generator().manual_seed(0)).exists()
    with pytest.raises(ValueError, match=".mid or .wav"):
        r.sample_file(tmp_path / "piece.txt", 1, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="number of bars"):
        r.sample_file(tmp_path / "piece.mid", 0, torch.Generator().manual_seed(0))


def test_runner_trains_and_resumes_exactly(tmp_path, folder):
    half = write_run(tmp_path / "half", folder, steps=60)
    a, b, stopped_at = stopped_and_continued(write_run(tmp_path / "whole", folder, steps=60), half, 60)
    assert b["steps_done"] == 60
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), f"stopped at {stopped_at}"
    hist = read_history(half)
    assert {"train/loss", "val/loss"} <= set(hist.metrics) and hist.status["unit"] == "tokens"


def test_the_continue_request_through_the_runner_and_its_errors(tmp_path, folder):
    rd = write_run(tmp_path / "run", folder, steps=2)
    serve_and_send(rd, [("set", {"key": "temperature", "value": 0.5}),
                        ("interact", {"name": "continue", "reply": "continuation", "request": 1}),
                        ("set", {"key": "prompt_piece", "value": 7}),  # there is one held-out piece
                        ("interact", {"name": "continue", "reply": "continuation", "request": 2}),
                        ("interact", {"name": "improvise", "reply": "continuation", "request": 3})],
                   until=lambda: len(answers(rd, "continuation.error")) >= 2)
    good = [a for a in answers(rd, "continuation") if a.get("request") == 1]
    assert good and "temperature 0.5" in good[0]["label"] and good[0]["prompt"] == 32
    assert any(a["rows"][0] for a in answers(rd, "attention"))
    errors = {a["request"]: a["error"] for a in answers(rd, "continuation.error")}
    assert "prompt_piece must be 1 to 1" in errors[2] and "no 'improvise' action" in errors[3]


# -- the studio --
async def test_the_continuation_panel_regenerates_at_another_temperature_and_attention_follows(tmp_path):
    from studio.app import GenStudioApp
    from studio.widgets.attention import AttentionView
    from studio.widgets.piano_roll import PianoRoll
    from test_studio import lesson_screen, wait_for

    folder = make_midi_folder(tmp_path / "midi")
    app = GenStudioApp(graphics="halfblock", lesson="music-transformer")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        await start_from_the_form(pilot, screen, {**TINY, "data_path": str(folder), "steps": 1_000_000})
        await wait_for(pilot, lambda: screen.snapshot is not None and "sample" in screen.snapshot.samples,
                       timeout=120, what="the first continuation")
        await pilot.press("2")
        await pilot.pause()
        roll = screen.query_one("#continue-roll", PianoRoll)
        assert app.focused is roll
        screen.query_one("#roll-temperature").value = "9"
        await pilot.press("r")
        await pilot.pause()
        assert "out of range" in roll.note and roll.request == 0  # nothing was sent
        screen.query_one("#roll-temperature").value = "0.3"
        roll.focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: roll.data is not None and roll.data.get("request") == 1,
                       what="the continuation")
        assert "temperature 0.3" in roll.caption and screen.params["temperature"] == 0.3
        screen.query_one("#roll-prompt_piece").value = "5"
        screen.query_one("#roll-prompt_piece").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "prompt_piece must be 1 to 1" in roll.note, what="the error reply")
        await pilot.press("escape")  # out of the box: the keys are the roll's and the studio's again
        assert app.focused is roll
        await pilot.press("3")
        assert screen.query_one("#tabs").active == "tab-attention"
        view = screen.query_one(AttentionView)
        await wait_for(pilot, lambda: view.data is not None and "S:" in "".join(view.data["rows"]),
                       what="attention over music tokens")
        assert "music tokens" in str(screen.query_one("#attn-help").render())
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_the_roll_reads_at_80x24_and_shows_detail_at_200x60(tmp_path, size):
    """A finished run's continuation, attached: at 80x24 the roll has room for the notes
    of its bars; at 200x60 a semitone is half a row."""
    from studio.app import GenStudioApp
    from studio.widgets.piano_roll import PianoRoll
    from test_music_data import roll_data
    from test_studio import lesson_screen

    rd = write_run(tmp_path / "run", make_midi_folder(tmp_path / "midi"), steps=1)
    rd.emit("state", 0, {"state": "starting"})
    rd.samples_dir.mkdir(exist_ok=True)
    (rd.samples_dir / "continuation-00000001.json").write_text(json.dumps({**roll_data(8), "prompt": 32}))
    rd.emit("sample", 1, {"name": "continuation", "kind": "data", "path": "samples/continuation-00000001.json",
                          "caption": "a fixture"})
    rd.emit("state", 1, {"state": "finished"})
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=size) as pilot:
        screen = lesson_screen(app)
        await pilot.press("2")
        await pilot.pause(0.5)
        roll = screen.query_one("#continue-roll", PianoRoll)
        canvas = screen.query_one("#continue-roll #roll-canvas")
        lines = str(canvas.render()).split("\n")
        width, height = canvas.content_size.width, canvas.content_size.height
        assert width >= 60 and height >= 8, (width, height)  # readable
        assert len(lines) == height and lines[-1].split()[:3] == ["1", "2", "3"]
        assert "soprano" in str(screen.query_one("#continue-roll #roll-head").render())
        if size == (200, 60):
            assert roll.data and height >= 40  # 24 semitones of music, each half a row or more


async def test_a_request_with_no_model_says_why_instead_of_composing_forever():
    """Reopened with no run, Enter in the temperature box showed "composing …" for over
    80 s and no error: the roll now says there is no model and how to get one."""
    from studio.app import GenStudioApp
    from studio.widgets.piano_roll import PianoRoll
    from test_studio import lesson_screen, wait_for

    app = GenStudioApp(graphics="halfblock", lesson="music-transformer")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = lesson_screen(app)
        await pilot.press("l")  # the dashboard (at 80 columns the text comes first)
        await pilot.press("2")
        await pilot.pause()
        roll = screen.query_one("#continue-roll", PianoRoll)
        roll.focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: "no model yet" in roll.note, timeout=10, what=f"the refusal, not {roll.note!r}")
        assert "press s" in roll.note and "composing" not in roll.note
