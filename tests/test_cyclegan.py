"""The CycleGAN recipe on tiny CPU configs: finite losses, generator shapes, the cycle views
in triples, the identity and cycle weights (live), the learning-rate decay, export, and a
full run through the runner with exact resume.

The face classifier is never trained here: the scores use an untrained stand-in (the real
one is tested in test_face_classifier.py), so only the plumbing of the scores is checked."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.registry import get_config_class
from engine.schema import validate
from engine.configs.cyclegan import GRID, CycleGANConfig
from engine.metrics import face_classifier as fc
from engine.recipes.base import RunContext
from engine.recipes.cyclegan import N_SHOW, CycleGANRecipe, to_unit
from engine.rundir import RunDir, read_history
from engine.runner import Runner

TINY = {"width": 4, "res_blocks": 1, "batch_size": 2, "train_size": 64}
METRICS = {"train/loss_g", "train/loss_d", "train/adv", "train/cycle", "train/identity"}


@pytest.fixture(autouse=True)
def untrained_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Score with an untrained classifier instead of training the real one (~20 s)."""
    monkeypatch.setattr(fc, "get_face_classifier", lambda device="cpu", size=32, **_: fc.FaceClassifier(size).eval())


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def recipe(need_data: bool = True, **over) -> CycleGANRecipe:
    torch.manual_seed(0)
    ctx = RunContext(device=torch.device("cpu"), need_data=need_data)
    return CycleGANRecipe(ctx, CycleGANConfig(**{**TINY, **over}))


def test_losses_are_finite_and_named_for_the_dashboard():
    r = recipe()
    for _ in range(3):
        m = r.train_step()
    assert set(m) == METRICS
    assert all(torch.isfinite(v) and v.dim() == 0 for v in m.values())
    assert r.steps_done == 3


def test_generators_start_as_the_identity_and_keep_shapes():
    r = recipe()
    x = r.val_a[:4]  # (4, 3, 32, 32) in [-1, 1]
    assert x.shape == (4, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(r.translate(r.G_AB, x), x)  # the last conv starts at zero: G(x) = x
    for _ in range(3):
        r.train_step()
    y = r.translate(r.G_AB, x)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.equal(y, x)
    assert r.D_A(x).shape == (4, 1, 6, 6)  # PatchGAN: one score per patch


def test_cycle_views_are_triples_of_face_there_and_back():
    r = recipe()
    r.train_step()
    views = {a.name: a for a in r.samples()}
    assert set(views) == {"cycle_ab", "cycle_ba"}
    pitch, pad = GRID
    rows = (3 * N_SHOW + 5) // 6  # 6 tiles (2 triples) per row
    for art in views.values():
        assert art.kind == "image" and art.data.dtype.name == "uint8"
        assert art.data.shape == (rows * pitch + pad, 6 * pitch + pad, 3)
    # The first row of cycle_ab: A[0] | G_AB(A[0]) | G_BA(G_AB(A[0])) | A[1] | ...
    a = r.val_a[:2]
    fake = r.translate(r.G_AB, a)
    expected = [a[0], fake[0], r.translate(r.G_BA, fake)[0], a[1]]
    grid = torch.from_numpy(views["cycle_ab"].data).permute(2, 0, 1).float() / 255  # (3, H, W)
    for col, face in enumerate(expected):
        tile = grid[:, pad:pad + 32, pad + col * pitch:pad + col * pitch + 32]
        assert (tile - to_unit(face)).abs().max() <= 1 / 255 + 1e-6, col


def test_identity_weight_zero_removes_the_term_but_still_measures_it():
    r = recipe(lambda_identity=0.0)
    g = r._generator_loss(r.x_a[:2], r.x_b[:2])
    assert torch.allclose(g["loss_g"], g["adv"] + r.cfg.lambda_cycle * g["cycle"])
    assert not g["identity"].requires_grad and g["identity"] >= 0  # measured, not trained
    r.set_live("lambda_identity", 2.0)
    g = r._generator_loss(r.x_a[:2], r.x_b[:2])
    assert g["identity"].requires_grad
    assert torch.allclose(g["loss_g"], g["adv"] + r.cfg.lambda_cycle * g["cycle"] + 2.0 * g["identity"])


def test_live_loss_weights_and_learning_rate():
    r = recipe(lr_decay=0.0)
    r.set_live("lambda_cycle", 0.0)
    r.set_live("lambda_identity", 1.5)
    g = r._generator_loss(r.x_a[:2], r.x_b[:2])
    assert torch.allclose(g["loss_g"], g["adv"] + 1.5 * g["identity"])
    r.set_live("lr", 3e-4)
    r.train_step()
    assert all(gr["lr"] == 3e-4 for opt in (r.opt_g, r.opt_d) for gr in opt.param_groups)
    with pytest.raises(KeyError):
        r.set_live("width", 8)


def test_learning_rate_decays_to_zero_over_the_last_share_of_the_steps():
    r = recipe(steps=100, lr=1e-3, lr_decay=0.5)
    at = {}
    for t in (0, 50, 75, 100):
        r.steps_done = t
        at[t] = r.lr_now()
    assert at == pytest.approx({0: 1e-3, 50: 1e-3, 75: 5e-4, 100: 0.0})


def test_scores_and_export():
    r = recipe()
    scores = r.evaluate()
    assert set(scores) == {"quality/to_black", "quality/to_blond", "quality/cycle_error", "quality/kept"}
    assert all(0 <= v <= 1 for v in scores.values())
    assert scores["quality/cycle_error"] == 0.0  # untrained generators are the identity
    # `genstudio sample` builds the recipe without data: strips of face | there | back.
    bare = recipe(need_data=False)
    bare.load_state_dict(r.state_dict())
    assert bare.samples() == [] and bare.evaluate() == {}
    strips = bare.sample_images(3, torch.Generator().manual_seed(0))
    assert strips.shape == (3, 3, 32, 3 * 32 + 4) and strips.min() >= 0 and strips.max() <= 1


def test_runs_through_the_runner_and_resumes_exactly(tmp_path):
    def new(path, steps):
        path.mkdir()
        rd = RunDir(path)
        # lr_decay 0: the decay is scheduled from `steps`, which this test changes midway.
        params = validate(get_config_class("cyclegan"), {**TINY, "lr_decay": 0.0, "steps": steps})
        rd.write_config("cyclegan", asdict(params), device="cpu")
        return rd

    a = new(tmp_path / "a", 6)
    assert Runner(a.path).run() == 0
    b = new(tmp_path / "b", 3)
    assert Runner(b.path).run() == 0
    cfg = json.loads(b.config_path.read_text())
    cfg["params"]["steps"] = 6
    b.config_path.write_text(json.dumps(cfg))
    assert Runner(b.path).run() == 0
    sa, sb = (load_checkpoint(r.checkpoint_path)["state"] for r in (a, b))
    for net in ("G_AB", "G_BA", "D_A", "D_B"):
        assert all(torch.equal(sa[net][k], sb[net][k]) for k in sa[net]), net
    assert sa["steps_done"] == sb["steps_done"] == 6
    hist = read_history(a)
    assert hist.state == "finished" and {"cycle_ab", "cycle_ba"} <= set(hist.samples)
    assert METRICS | {"quality/to_black", "quality/cycle_error"} <= set(hist.metrics)
