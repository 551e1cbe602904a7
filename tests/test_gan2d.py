"""The 2-D GAN recipe on tiny CPU configs: finite losses, step modes, live changes, the
field view, learning the ring, and a full run through the runner with exact resume."""

from __future__ import annotations

import json

import torch

from engine.checkpoint import load_checkpoint
from engine.configs.gan2d import GAN2DConfig
from engine.metrics.distance2d import reference_scale
from engine.recipes.base import RunContext
from engine.recipes.gan2d import FIELD_PX, GAN2DRecipe
from engine.rundir import read_history
from engine.runner import Runner

TINY = {"hidden": 16, "batch_size": 64}


def recipe(**over) -> GAN2DRecipe:
    torch.manual_seed(0)
    return GAN2DRecipe(RunContext(device=torch.device("cpu")), GAN2DConfig(**{**TINY, **over}))


def test_losses_are_finite_and_d_outputs_are_probabilities():
    r = recipe()
    for _ in range(20):
        m = r.train_step()
    assert set(m) == {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"}
    assert all(torch.isfinite(v) for v in m.values())
    assert 0 <= m["train/d_real"] <= 1 and 0 <= m["train/d_fake"] <= 1


def test_step_modes_train_only_the_chosen_network():
    r = recipe(step_mode="discriminator")
    g_before = [p.clone() for p in r.G.parameters()]
    d_before = [p.clone() for p in r.D.parameters()]
    m = r.train_step()
    assert "train/loss_g" not in m
    assert all(torch.equal(a, b) for a, b in zip(g_before, r.G.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d_before, r.D.parameters()))
    r.set_live("step_mode", "generator")
    d_before = [p.clone() for p in r.D.parameters()]
    m = r.train_step()
    assert set(m) == {"train/loss_g"}
    assert all(torch.equal(a, b) for a, b in zip(d_before, r.D.parameters()))


def test_live_learning_rates():
    r = recipe()
    r.set_live("lr_d", 5e-4)
    r.set_live("lr_g", 2e-4)
    assert r.opt_d.param_groups[0]["lr"] == 5e-4 and r.opt_g.param_groups[0]["lr"] == 2e-4


def test_field_view_shows_both_clouds_on_the_decision_map():
    r = recipe(shape="ring")
    (art,) = r.samples()
    assert art.name == "field" and art.data.shape == (FIELD_PX, FIELD_PX, 3) and art.data.dtype.name == "uint8"
    colours = {tuple(c) for c in art.data.reshape(-1, 3)}
    assert (120, 255, 170) in colours and (255, 120, 230) in colours  # real and generated dots


def test_the_generator_learns_the_ring(one_thread):  # one thread, as the runner does for this recipe
    """Sliced Wasserstein to real points falls from a blob's distance to near the floor."""
    ref = reference_scale("ring")
    r = recipe(shape="ring", hidden=64, lr_g=1e-3, lr_d=1e-3)
    before = r.evaluate()["quality/sliced_wasserstein"]
    for _ in range(1200):
        r.train_step()
    after = r.evaluate()["quality/sliced_wasserstein"]
    threshold = (ref["sw_floor"] * ref["sw_blob"]) ** 0.5  # between the floor and a fitted blob
    assert before > threshold and after < threshold, (before, after, threshold)


def test_runs_through_the_runner_and_resumes_exactly(tmp_path):
    from engine.registry import get_config_class
    from engine.schema import validate
    from dataclasses import asdict
    from engine.rundir import RunDir

    def new(path, steps):
        path.mkdir()
        rd = RunDir(path)
        rd.write_config("gan2d", asdict(validate(get_config_class("gan2d"), {**TINY, "steps": steps})), device="cpu")
        return rd

    a = new(tmp_path / "a", 40)
    assert Runner(a.path).run() == 0
    b = new(tmp_path / "b", 20)
    assert Runner(b.path).run() == 0
    cfg = json.loads(b.config_path.read_text())
    cfg["params"]["steps"] = 40
    b.config_path.write_text(json.dumps(cfg))
    assert Runner(b.path).run() == 0
    wa, wb = (load_checkpoint(r.checkpoint_path)["state"]["G"] for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    hist = read_history(a)
    assert hist.state == "finished" and "quality/sliced_wasserstein" in hist.metrics and "field" in hist.samples
