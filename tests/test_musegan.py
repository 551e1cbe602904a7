"""The MuseGAN lesson's engine: shapes, what each input controls, the WGAN-GP penalty, the
critic learning, exact resume, the picker and requests through a served runner, pieces
written to files, and a Pilot test of the picker and its piano roll."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.configs.musegan import MuseGANConfig
from engine.data.music import PITCHES, read_midi_notes
from engine.models.cwgan import gradient_penalty
from engine.models.musegan import Critic, Generator, MuseGANArgs, TemporalNetwork, draw_inputs
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import validate
from test_music_data import answers, make_midi_folder, serve_and_send, start_from_the_form, stopped_and_continued

TINY = {"dataset": "midi", "z_dim": 8, "width": 32, "batch_size": 16, "critic_steps": 2, "steps": 30}
ARGS = MuseGANArgs(classes=PITCHES + 1, bars=2, z_dim=8, width=32)


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_midi_folder(tmp_path / "midi")


def recipe(folder: Path, **params):
    torch.manual_seed(0)
    return build_recipe("musegan", {**TINY, "data_path": str(folder), **params}, RunContext(device=torch.device("cpu")))


def write_run(path: Path, folder: Path, **params) -> RunDir:
    cfg = validate(MuseGANConfig, {**TINY, "data_path": str(folder), **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("musegan", asdict(cfg), device="cpu", lesson="musegan-chorales")
    return rd


# -- the model --
def test_shapes():
    torch.manual_seed(0)
    G, D = Generator(ARGS), Critic(ARGS)
    z = draw_inputs(5, ARGS)
    assert z["chords"].shape == (5, 8) and z["melody"].shape == (5, 4, 8)
    assert TemporalNetwork(ARGS)(z["chords"]).shape == (5, 2, 8)
    x = G.probabilities(**z)
    assert x.shape == (5, 4, 2, 16, PITCHES + 1)
    assert torch.allclose(x.sum(-1), torch.ones(5, 4, 2, 16))
    assert D(x).shape == (5,)


def test_each_input_controls_what_it_should():
    """A voice's melody and groove reach only that voice's bar generator; chords and style
    reach every voice."""
    torch.manual_seed(0)
    G = Generator(ARGS).eval()  # batch norm from its running statistics: no mixing of samples
    z = draw_inputs(1, ARGS, torch.Generator().manual_seed(0))
    base = G(**z)
    for name, voice in (("melody", 1), ("groove", 3)):
        changed = {k: v.clone() for k, v in z.items()}
        changed[name][0, voice] = torch.randn(8)
        moved = (G(**changed) - base).abs().flatten(2).amax(2)[0]  # per voice
        assert moved[voice] > 0 and torch.all(moved[torch.arange(4) != voice] == 0), (name, moved)
    for name in ("chords", "style"):
        changed = {k: v.clone() for k, v in z.items()}
        changed[name][0] = torch.randn(8)
        assert torch.all((G(**changed) - base).abs().flatten(2).amax(2)[0] > 0), name


def test_the_gradient_penalty_of_a_linear_critic_is_exact():
    """For critic(x) = w . x the gradient is w everywhere, so the penalty is (|w| - 1)^2
    whatever the mix of real and fake: 5-D phrases and no condition work."""
    w = torch.randn(4, 2, 16, 7)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.rand(6, 4, 2, 16, 7), torch.rand(6, 4, 2, 16, 7)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    assert gradient_penalty(lambda x: (x * w / w.norm()).flatten(1).sum(1), real, fake).item() < 1e-10


# -- the recipe --
def test_the_critic_learns_and_the_phrases_move_into_the_voices_ranges(folder):
    r = recipe(folder)
    assert r.train_size == 9 * 3  # 2-bar windows of 9 training pieces of 4 bars
    before = r.evaluate()
    first = r.train_step()
    for _ in range(60):
        last = r.train_step()
    after = r.evaluate()
    assert last["train/wasserstein"] > first["train/wasserstein"] + 0.5  # the critic tells real from fake
    assert after["quality/in_range"] > before["quality/in_range"] + 0.2, (before, after)
    assert set(after) == {f"quality/{k}" for k in ("scale", "four_voices", "empty_bars", "in_range", "chords",
                                                   "tonal_distance")}


def test_sample_file_writes_the_phrases_as_midi_and_wav(folder, tmp_path):
    r = recipe(folder)
    path = r.sample_file(tmp_path / "piece.mid", 3, torch.Generator().manual_seed(0))
    notes = read_midi_notes(path)
    assert notes[:, 2].max() <= 3 * 2 * 16 and len(notes) > 0  # three phrases of two bars
    assert r.sample_file(tmp_path / "piece.wav", 1, torch.Generator().manual_seed(0)).stat().st_size > 1000
    for bad in ("piece.png", "piece"):
        with pytest.raises(ValueError, match=".mid or .wav"):
            r.sample_file(tmp_path / bad, 1, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="number of phrases"):
        r.sample_file(tmp_path / "piece.mid", 0, torch.Generator().manual_seed(0))


def test_genstudio_sample_writes_a_piece_and_refuses_a_png(tmp_path, folder, capsys):
    """`genstudio sample RUN -o piece.mid` (the engine's sample tool, in a process of its
    own): the piece is read back; a PNG is refused with what to write instead."""
    from engine.sample import main as sample_main

    rd = write_run(tmp_path / "run", folder, steps=2)
    assert Runner(rd.path).run() == 0
    assert sample_main(str(rd.path), str(tmp_path / "piece.mid"), n=2) == 0
    assert len(read_midi_notes(tmp_path / "piece.mid")) > 0
    assert sample_main(str(rd.path), str(tmp_path / "piece.wav"), n=1) == 0
    assert (tmp_path / "piece.wav").stat().st_size > 1000
    capsys.readouterr()
    assert sample_main(str(rd.path), str(tmp_path / "grid.png"), n=4) == 1
    assert "does not draw images; write a .mid or .wav file" in capsys.readouterr().err
    assert sample_main(str(rd.path), str(tmp_path / "piece.mp3"), n=1) == 1
    assert ".png (images) or a .mid or .wav file (music)" in capsys.readouterr().err


def test_runner_trains_and_resumes_exactly(tmp_path, folder):
    a, b, stopped_at = stopped_and_continued(write_run(tmp_path / "whole", folder, steps=40),
                                             write_run(tmp_path / "half", folder, steps=40), 40)
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), f"{net}, stopped at {stopped_at}"


def test_the_picker_redraws_through_a_served_runner_and_bad_requests_answer(tmp_path, folder):
    rd = write_run(tmp_path / "run", folder, steps=2)

    def captions(name):
        return [e.payload["caption"] for e in rd.events() if e.type == "sample" and e.payload["name"] == name]

    serve_and_send(rd, [("set", {"key": "pick_input", "value": "melody: tenor"}),
                        ("set", {"key": "pick_draw", "value": 3}),
                        ("set", {"key": "pick_input", "value": "melody: nobody"}),  # not a choice: refused
                        ("sample", {}),
                        ("interact", {"name": "compose", "reply": "picked", "request": 1})],
                   until=lambda: "melody: tenor" in "".join(captions("picked")[-1:])
                   and answers(rd, "picked.error"))
    assert "melody: tenor drawn anew (draw 3)" in captions("picked")[-1]
    data = answers(rd, "picked")[-1]
    assert data["other"]["label"] == "before" and data["voices"] == ["soprano", "alto", "tenor", "bass"]
    before, after = np.array(data["other"]["notes"]), np.array(data["notes"])
    assert len(after) and len(before)
    # Only the tenor's line can change when the tenor's melody is drawn anew.
    for v in (0, 1, 3):
        assert before[before[:, 3] == v].tolist() == after[after[:, 3] == v].tolist()
    assert any("refused" in line for line in read_history(rd).logs)
    assert "no 'compose' action" in answers(rd, "picked.error")[0]["error"]


# -- the studio --
async def test_the_picker_redraws_a_voice_and_the_roll_plays_and_exports(tmp_path, monkeypatch):
    from studio.app import GenStudioApp
    from studio.widgets import piano_roll
    from studio.widgets.piano_roll import PianoRoll
    from test_studio import lesson_screen, wait_for

    folder = make_midi_folder(tmp_path / "midi")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.setattr(piano_roll, "PLAYERS", ())  # no audio player here: the cursor plays silently
    app = GenStudioApp(graphics="halfblock", lesson="musegan-chorales")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        assert [p.id for p in screen.query("TabPane")][:2] == ["tab-train", "tab-picker"]
        await start_from_the_form(pilot, screen, {**TINY, "data_path": str(folder), "steps": 1_000_000})
        await wait_for(pilot, lambda: screen.snapshot is not None and "picked" in screen.snapshot.samples,
                       timeout=120, what="the picked phrase")
        train_head = lambda: str(screen.query_one("#train-roll #roll-head").render())  # noqa: E731
        await wait_for(pilot, lambda: "space plays" in train_head(), what="the Train tab's roll drawn")
        assert "Tab here: space plays" in train_head()  # the charts have the keys: say how to reach the roll
        await pilot.press("2")
        await pilot.pause()
        roll = screen.query_one("#picked-roll", PianoRoll)
        assert app.focused is roll  # the roll takes the keys: space, e, b
        await wait_for(pilot, lambda: roll.data is not None, what="the roll drawn")
        assert "melody: alto drawn anew" in roll.caption
        assert "Tab here" not in str(roll.query_one("#roll-head").render())  # it has the keys
        screen.query_one("#ctl-pick_input").value = "chords"
        await wait_for(pilot, lambda: "chords drawn anew" in roll.caption, what="the phrase redrawn")
        canvas = str(screen.query_one("#picked-roll #roll-canvas").render())
        assert "▀" in canvas
        roll.focus()
        await pilot.press("b")
        assert roll.swapped and "b: back" in str(screen.query_one("#picked-roll #roll-head").render())
        await pilot.press("e")
        await wait_for(pilot, lambda: list(tmp_path.glob("genstudio-*-picked-*-before.mid")), what="MIDI written")
        assert list(tmp_path.glob("genstudio-*-picked-*-before.wav"))
        await pilot.press("space")
        await wait_for(pilot, lambda: "cursor plays silently (no audio player found)" in roll.note
                       and "wrote" in roll.note,
                       what="the silent play and where the files went")
        assert roll.cursor is not None
        assert any("wrote" in n.message and str(tmp_path) in n.message for n in app._notifications)
        assert f"wrote to {tmp_path}" in str(screen.query_one("#picked-roll #roll-head").render())
        await pilot.press("space")
        assert roll.cursor is None
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")
