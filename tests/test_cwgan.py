"""The conditional WGAN-GP recipe on tiny CPU configs: losses, shapes and ranges, the
gradient penalty, live critic steps, the picker and explorer inputs, the generator obeying
its labels after a short run, and a full run through the runner with exact resume."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict

import pytest
import torch
import torch.nn as nn

from engine.checkpoint import load_checkpoint
from engine.schema import ConfigError, validate
from engine.configs.cwgan import CWGANConfig
from engine.data.faces import HAIR_COLOURS
from engine.models.cwgan import LABEL_DIM, Critic, CWGANArgs, Generator, encode_labels, gradient_penalty
from engine.recipes.base import RunContext
from engine.recipes.cwgan import EXPLORE_ALPHAS, EXPLORE_ROWS, N_PICKED, CWGANRecipe
from engine.rundir import RunDir, read_history
from engine.runner import Runner

TINY = {"width": 8, "noise_dim": 8, "batch_size": 16, "train_size": 256}


def recipe(**over) -> CWGANRecipe:
    torch.manual_seed(0)
    return CWGANRecipe(RunContext(device=torch.device("cpu")), CWGANConfig(**{**TINY, **over}))


@pytest.fixture(scope="module")
def face_classifier(shared_cache):
    """The real classifier, trained once in the session's shared cache, where the recipes
    under test find it too (a module fixture is set up before the test's home exists: with
    no cache_dir it trained a second one in the user's own home)."""
    from engine.metrics.face_classifier import get_face_classifier

    return get_face_classifier("cpu", cache_dir=shared_cache)


def test_losses_are_finite_and_named():
    r = recipe()
    for _ in range(3):
        m = r.train_step()
    assert set(m) == {"train/loss_critic", "train/wasserstein", "train/gp", "train/loss_g"}
    assert all(torch.isfinite(v) for v in m.values())


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_and_ranges(size):
    a = CWGANArgs(size=size, noise_dim=8, width=8)
    G, D = Generator(a).eval(), Critic(a)
    c = encode_labels({"glasses": torch.tensor([0, 1]), "hair": torch.tensor([3, 1]),
                       "smiling": torch.tensor([1, 0]), "hat": torch.tensor([0, 0])})
    x = G(torch.randn(2, 8), c)
    assert x.shape == (2, 3, size, size) and x.min() >= -1 and x.max() <= 1
    assert D(x, c).shape == (2,)


def test_labels_are_one_hot_blocks():
    c = encode_labels({"glasses": torch.tensor([1]), "hair": torch.tensor([2]),
                       "smiling": torch.tensor([0]), "hat": torch.tensor([1])})
    assert c.shape == (1, LABEL_DIM)
    assert c[0].tolist() == [0, 1, 0, 0, 1, 0, 1, 0, 0, 1]


def test_gradient_penalty_is_zero_for_a_unit_slope_and_grows_with_the_slope():
    class Linear(nn.Module):  # critic(x) = k * (w . x), with |w| = 1: slope k everywhere
        def __init__(self, k):
            super().__init__()
            w = torch.randn(3 * 4 * 4)
            self.w, self.k = w / w.norm(), k

        def forward(self, x, c):
            return self.k * x.flatten(1) @ self.w

    real, fake, c = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4), torch.zeros(8, LABEL_DIM)
    assert gradient_penalty(Linear(1.0), real, fake, c).item() == pytest.approx(0.0, abs=1e-10)
    assert gradient_penalty(Linear(3.0), real, fake, c).item() == pytest.approx(4.0, rel=1e-5)  # (3 - 1)^2


def test_critic_steps_apply_live():
    r = recipe(critic_steps=1)
    r.train_step()
    steps = lambda opt: int(next(iter(opt.state.values()))["step"])  # noqa: E731
    assert (steps(r.opt_d), steps(r.opt_g)) == (1, 1)
    r.set_live("critic_steps", 3)
    r.train_step()
    assert (steps(r.opt_d), steps(r.opt_g)) == (4, 2)
    r.set_live("lr", 1e-3)
    assert r.opt_d.param_groups[0]["lr"] == r.opt_g.param_groups[0]["lr"] == 1e-3


def test_picker_labels_follow_the_choices_and_keep_the_rest():
    r = recipe()
    free = r.picked_labels()
    r.set_live("pick_hair", "black")
    r.set_live("pick_glasses", "no")
    picked = r.picked_labels()
    assert picked["hair"].tolist() == [HAIR_COLOURS.index("black")] * N_PICKED
    assert picked["glasses"].tolist() == [0] * N_PICKED
    assert torch.equal(picked["smiling"], free["smiling"]) and torch.equal(picked["hat"], free["hat"])
    with pytest.raises(ConfigError):
        validate(CWGANConfig, {"pick_hair": "green"})


def test_explorer_adds_the_direction_in_growing_amounts():
    r = recipe()
    z, c, base = r.explore_inputs("glasses")
    a = len(EXPLORE_ALPHAS)
    z, c = z.view(EXPLORE_ROWS, a, -1), c.view(EXPLORE_ROWS, a, -1)
    assert torch.equal(z, z[:, :1].expand_as(z))  # one face (z) per row
    assert torch.equal(c[:, 0], base) and base[:, 0].eq(1).all()  # alpha 0: no glasses
    one = EXPLORE_ALPHAS.index(1.0)
    assert c[:, one, :2].tolist() == [[0.0, 1.0]] * EXPLORE_ROWS  # alpha 1: exactly "glasses"
    assert torch.equal(c[:, one, 2:], base[:, 2:])  # the other attributes untouched
    hair = r.explore_inputs("blond to black")[2][:, 2:6]
    assert hair.argmax(1).eq(HAIR_COLOURS.index("blond")).all()


@pytest.mark.parametrize("size", [32, 64])
def test_views_are_images_of_the_right_layout(face_classifier, size):
    r = recipe(size=size)  # 64-pixel faces are shown at 32 pixels, in the same layout
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "picked", "explore"}
    assert arts["samples"].data.shape == (8 * 34 + 2, 8 * 34 + 2, 3)
    assert arts["picked"].data.shape == (4 * 34 + 2, 8 * 34 + 2, 3)
    assert arts["explore"].data.shape == (EXPLORE_ROWS * 34 + 2, len(EXPLORE_ALPHAS) * 34 + 2, 3)
    assert "P(glasses) by α" in arts["explore"].caption
    r.set_live("pick_hat", "yes")
    picked = r._picked()
    assert "hat yes" in picked.caption and "agrees on the generated: hat" in picked.caption
    assert "generated (left) | real with the same labels (right)" in picked.caption


def test_the_picker_shows_real_faces_with_the_same_labels_under_the_generated():
    """Cartoon-GAN faces after the full preset were a 'noisy pastel blur' with nothing to
    compare them with: each generated face has a real one with its labels on its right."""
    from engine.data.faces import draw_faces
    from engine.recipes.cwgan import PICKED_ROW

    r = recipe()
    r.set_live("pick_hair", "red")
    grid = r._picked().data  # (rows * 34 + 2, 8 * 34 + 2, 3) uint8

    def tile(row, col):
        return grid[2 + row * 34:2 + row * 34 + 32, 2 + col * 34:2 + col * 34 + 32]

    labels = r.picked_labels()
    real = draw_faces(labels, r.cfg.seed + 3).permute(0, 2, 3, 1).numpy()
    per_row = PICKED_ROW // 2  # pairs per row
    for i in (0, per_row - 1, per_row, N_PICKED - 1):
        row, col = i // per_row, 2 * (i % per_row) + 1
        assert abs(tile(row, col).astype(int) - real[i].astype(int)).max() <= 1  # the real face, in place
    assert (labels["hair"] == HAIR_COLOURS.index("red")).all()


def test_the_generator_respects_its_labels_after_a_short_run(face_classifier, one_thread):
    """Better than chance on the attributes the classifier reads, after 200 steps (at 150 the
    glasses score sat at 0.695 on an x86 CPU, on the bar)."""
    r = recipe(width=16, noise_dim=32, batch_size=32, train_size=4000)
    before = r.evaluate()
    for _ in range(200):
        r.train_step()
    after = r.evaluate()
    assert after["quality/hat"] > 0.8 and after["quality/glasses"] > 0.7, (before, after)
    assert sum(after.values()) > sum(before.values()) + 0.5, (before, after)


def write_run(path, **params) -> RunDir:
    cfg = validate(CWGANConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("cwgan", asdict(cfg), device="cpu", lesson="cgan-faces")
    return rd


def test_runner_trains_and_resumes_exactly(tmp_path, face_classifier):
    whole = write_run(tmp_path / "whole", steps=12)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=6)
    assert Runner(half.path).run() == 0
    cfg = half.read_config()
    cfg["params"]["steps"] = 12
    half.write_config("cwgan", cfg["params"], device="cpu", lesson="cgan-faces")
    assert Runner(half.path).run() == 0
    a = load_checkpoint(whole.checkpoint_path)["state"]["G"]
    b = load_checkpoint(half.checkpoint_path)["state"]["G"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist = read_history(half)
    assert hist.state == "finished" and "quality/hair" in hist.metrics


def test_a_finished_run_serves_its_views_until_stopped(tmp_path, face_classifier):
    """--serve: after training the model stays loaded; set + sample redraw the picker, and
    the engine leaves on stop."""
    rd = write_run(tmp_path / "run", steps=3)
    seen: list[str] = []

    def picked_captions() -> list[str]:
        return [e.payload["caption"] for e in rd.events() if e.type == "sample" and e.payload["name"] == "picked"]

    def drive() -> None:  # the studio's part, from a second thread
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            rd.send("set", key="pick_hair", value="red")
            rd.send("sample")
            while not any("hair red" in c for c in picked_captions()) and time.monotonic() < deadline:
                time.sleep(0.05)
            seen.extend(picked_captions())
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0  # returns only once stopped
    thread.join(timeout=10)
    assert any("hair red" in c for c in seen), seen


async def test_the_picker_keeps_generated_and_real_faces_in_pairs_at_80x24(tmp_path, monkeypatch):
    """At 80x24 the Picker showed "3 of 32" tiles: three generated faces and no real one.
    And `e` on the Picker saved the Train tab's grid, not the pairs on screen."""
    from conftest import open_tab, stopped_run, wait_for
    from studio.app import GenStudioApp
    from studio.widgets.image_view import ImageView

    rd = stopped_run(tmp_path / "faces", "cwgan", "cgan-faces",
                     image=("picked", 4, 8, "any attributes: 16 pairs, generated (left) | real (right)"))
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_tab(pilot, "2")
        view = screen.query_one("#picked", ImageView)
        await wait_for(pilot, lambda: view._tiles is not None and view._tiles[0] > 0, timeout=10,
                       what="the faces drawn")
        shown, total = view._tiles
        assert total == 32 and shown >= 2 and shown % 2 == 0  # whole (generated | real) pairs
        monkeypatch.chdir(tmp_path)
        await pilot.press("e")
        await pilot.pause()
        assert [p.name for p in tmp_path.glob("genstudio-*.png")] == ["genstudio-faces-picked-00000010.png"]


async def test_a_reopened_run_shows_the_picks_it_was_left_with(tmp_path):
    """A run whose picker was set to red hair, glasses and a hat, opened again, showed "any"
    in every menu above faces drawn with red hair, glasses and a hat (and its Settings form
    showed the values the run was created with)."""
    from textual.widgets import Select

    from conftest import open_tab, stopped_run
    from studio.app import GenStudioApp
    from studio.widgets.hyperparams import HyperparamForm

    picks = [("param", 5, {"key": key, "value": value})
             for key, value in (("pick_hair", "red"), ("pick_glasses", "yes"), ("lr", 0.0002))]
    rd = stopped_run(tmp_path / "faces", "cwgan", "cgan-faces", events=picks)
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_tab(pilot, "2")
        await pilot.pause()
        menus = {name: screen.query_one(f"#ctl-pick_{name}", Select).value for name in ("hair", "glasses", "hat")}
        assert menus == {"hair": "red", "glasses": "yes", "hat": "any"}
        assert screen.params["lr"] == 0.0002 and screen.query_one(HyperparamForm).values["lr"] == 0.0002

