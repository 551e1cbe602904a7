"""The energy-based model lesson's engine: energies are finite and one per input, Langevin
dynamics walks downhill on a known quadratic energy (and samples it with the right noise),
the replay buffer restarts and stores chains, the loss separates real from sampled energies,
the presets follow the dataset, live settings apply, the views have the right shapes, a
resumed run continues exactly (the buffer's chains included), and the served run answers
setting changes and refuses requests it does not have."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict

import pytest
import torch
import torch.nn as nn

from engine.checkpoint import load_checkpoint
from engine.configs.ebm import PRESETS, EBMConfig
from engine.metrics.distance2d import reference_scale
from engine.models.ebm import (DigitEnergy, PointEnergy, ReplayBuffer, contrastive_divergence, energy_grad,
                               langevin)
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.runner import Runner
from engine.rundir import RunDir, read_history
from engine.schema import validate

CPU = RunContext(device=torch.device("cpu"))
TINY = {"hidden": 32, "batch_size": 64, "buffer_size": 256, "langevin_steps": 10, "sample_steps": 20, "steps": 40}
TINY_DIGITS = {"dataset": "digits", "width": 4, "batch_size": 8, "buffer_size": 64, "langevin_steps": 3,
               "sample_steps": 4, "train_size": 256, "steps": 4}


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


class Quadratic(nn.Module):
    """E(x) = |x - centre|^2 / 2: its density exp(-E) is a unit Gaussian around centre."""

    def __init__(self, centre: torch.Tensor):
        super().__init__()
        self.centre = centre

    def forward(self, x):
        return 0.5 * (x - self.centre).square().sum(1)


def recipe(**params):
    torch.manual_seed(0)
    return build_recipe("ebm", {**TINY, **params}, CPU)


def write_run(path, **params) -> RunDir:
    cfg = validate(EBMConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("ebm", asdict(cfg), device="cpu", lesson="ebm-langevin")
    return rd


# -- the model --
def test_energy_networks_give_one_finite_energy_per_input():
    torch.manual_seed(0)
    points, images = torch.randn(5, 2), torch.rand(3, 1, 28, 28) * 2 - 1
    for net, x in ((PointEnergy(16), points), (DigitEnergy(4), images)):
        e = net(x)
        assert e.shape == (len(x),) and torch.isfinite(e).all()
        # One input's energy does not depend on the others in its batch (no batch norm).
        assert torch.allclose(net(x[:1]), e[:1], atol=1e-6)
        assert energy_grad(net, x).shape == x.shape
        assert all(p.grad is None for p in net.parameters())  # sampling trains nothing


def test_langevin_walks_downhill_on_a_known_quadratic():
    centre = torch.tensor([1.0, -2.0])
    energy = Quadratic(centre)
    start = torch.tensor([[-2.0, 2.0]])
    # Without noise, each step moves the point a share step_size of the way to the centre:
    # x - centre shrinks by (1 - step_size) per step, and the energy falls at every step.
    seen = []
    x = langevin(energy, start, 10, 0.1, 0.0, (-10.0, 10.0), on_step=lambda k, x: seen.append(energy(x).item()))
    assert torch.allclose(x - centre, (start - centre) * 0.9 ** 10, atol=1e-5)
    assert len(seen) == 11 and all(b < a for a, b in zip(seen, seen[1:]))
    # A capped gradient moves each coordinate at most step_size * grad_clip per step.
    clipped = langevin(energy, start, 1, 0.1, 0.0, (-10.0, 10.0), grad_clip=0.5)
    assert torch.allclose(clipped - start, torch.tensor([[0.05, -0.05]]))
    # The bounds hold whatever the step.
    assert langevin(energy, start, 1, 100.0, 0.0, (-3.0, 3.0)).abs().max() <= 3.0
    # With noise sqrt(2 step_size) the chains sample exp(-E): mean at the centre, spread 1
    # (the discrete chain's variance is 1 / (1 - step_size / 2), a little above).
    g = torch.Generator().manual_seed(0)
    chains = langevin(energy, torch.zeros(4000, 2), 200, 0.1, math.sqrt(0.2), (-10.0, 10.0), generator=g)
    assert torch.allclose(chains.mean(0), centre, atol=0.06)
    assert torch.allclose(chains.var(0), torch.full((2,), 1 / 0.95), atol=0.08)


def test_the_replay_buffer_restarts_draws_and_stores_chains():
    buf = ReplayBuffer(100, (2,), (-3.0, 3.0), torch.Generator().manual_seed(0))
    assert buf.items.shape == (100, 2) and buf.items.abs().max() <= 3.0
    buf.items.fill_(7.0)  # outside the noise's range: a stored chain is told apart from noise
    g = torch.Generator().manual_seed(1)
    kept, slots = buf.draw(50, 0.0, g)
    assert (kept == 7.0).all() and slots.shape == (50,)
    fresh, _ = buf.draw(50, 1.0, g)
    assert fresh.abs().max() <= 3.0
    mixed, _ = buf.draw(2000, 0.05, g)
    assert 0.02 < (mixed[:, 0] != 7.0).float().mean() < 0.08
    buf.store(torch.zeros(50, 2), slots)
    assert (buf.items[slots] == 0).all() and (buf.items == 7.0).sum() >= 100 - 50
    assert "items" in buf.state_dict()  # saved with the checkpoint


def test_contrastive_divergence_lowers_real_and_raises_sampled_energy():
    e_real, e_fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    loss, cd, reg = contrastive_divergence(e_real, e_fake, 0.5)
    assert cd.item() == pytest.approx(2.0 - (-1.0))
    assert reg.item() == pytest.approx(0.5 * (5.0 + 2.0))
    assert loss.item() == pytest.approx(cd.item() + reg.item())
    er, ef = e_real.clone().requires_grad_(), e_fake.clone().requires_grad_()
    contrastive_divergence(er, ef, 0.0)[0].backward()
    assert (er.grad > 0).all() and (ef.grad < 0).all()  # descent lowers E(real), raises E(sample)


# -- the config --
def test_each_dataset_gets_its_own_langevin_preset_unless_the_learner_chose():
    toy = validate(EBMConfig, {})
    assert all(getattr(toy, k) == v for k, v in PRESETS["toy2d"].items())
    digits = validate(EBMConfig, {"dataset": "digits"})
    assert all(getattr(digits, k) == v for k, v in PRESETS["digits"].items())
    assert validate(EBMConfig, {"dataset": "digits", "step_size": 5}).step_size == 5  # a choice is kept
    # The form sends every value: switching back to toy2d takes the toy preset again.
    back = validate(EBMConfig, {**asdict(digits), "dataset": "toy2d"})
    assert all(getattr(back, k) == v for k, v in PRESETS["toy2d"].items())


# -- the recipe --
def test_real_energy_falls_below_sample_and_noise_energy():
    r = recipe()
    first = r.train_step()
    for _ in range(60):
        m = r.train_step()
        assert all(torch.isfinite(v) and not v.requires_grad for v in m.values())
    # Averaged over a few steps (one step is noisy): real examples lie lower than the chains
    # the loss pushes up, and far lower than noise, which the untrained network could not
    # tell apart from them.
    mean = {k: sum(r.train_step()[k].item() for _ in range(10)) / 10 for k in first}
    assert abs(first["train/e_noise"] - first["train/e_real"]) < 0.1
    assert mean["train/e_real"] < mean["train/e_sample"] and mean["train/e_real"] < mean["train/e_noise"] - 0.2, mean


def test_the_energy_learns_the_ring():
    """Chains from noise end on the ring: sliced Wasserstein to real points falls from far
    above the threshold the GAN lesson uses (between a fitted blob and the floor) to below it."""
    ref = reference_scale("ring")
    threshold = (ref["sw_floor"] * ref["sw_blob"]) ** 0.5
    r = recipe(hidden=64, batch_size=128, buffer_size=2048, langevin_steps=20, sample_steps=100)
    before = r.evaluate()["quality/sliced_wasserstein"]
    after = []
    for step in range(1, 301):
        r.train_step()
        if step % 50 == 0:
            after.append(r.evaluate()["quality/sliced_wasserstein"])
    # The score wobbles as the landscape moves from step to step: judge the last three.
    assert before > 2 * threshold and sorted(after[-3:])[1] < threshold, (before, after, threshold)


def test_live_settings_apply_to_the_next_chains():
    r = recipe()
    r.train_step()
    a, _ = r.fixed_chains()
    r.set_live("noise", 0.0)
    r.set_live("step_size", 0.02)
    b, frames = r.fixed_chains()
    assert not torch.equal(a, b) and "step 0.02, noise 0" in r.samples()[0].caption
    r.set_live("sample_steps", 6)
    _, frames = r.fixed_chains()
    assert [step for step, _ in frames] == list(range(7))
    r.set_live("lr", 1e-4)
    assert r.opt.param_groups[0]["lr"] == 1e-4
    r.set_live("langevin_steps", 1)
    r.set_live("fresh", 1.0)
    r.set_live("grad_clip", 0.01)
    assert (r.cfg.langevin_steps, r.cfg.fresh, r.cfg.grad_clip) == (1, 1.0, 0.01)
    r.train_step()
    with pytest.raises(KeyError):
        r.set_live("hidden", 8)


def test_views_have_the_right_shapes():
    r = recipe()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "buffer", "chains", "chains-meta"}
    meta = arts["chains-meta"].data
    assert meta["frames"] == 21 and meta["t"][0] == 0 and meta["t"][-1] == TINY["sample_steps"]
    h, w, _ = arts["chains"].data.shape
    assert w == meta["frames"] * h and arts["samples"].data.shape == (h, h, 3)
    d = build_recipe("ebm", TINY_DIGITS, CPU)
    d.train_step()
    arts = {a.name: a for a in d.samples()}
    assert arts["samples"].data.shape == (8 * 30 + 2, 8 * 30 + 2)  # 64 digits, 8 by 8
    assert arts["buffer"].data.shape == (8 * 30 + 2, 8 * 30 + 2)
    meta = arts["chains-meta"].data
    assert meta["frames"] == TINY_DIGITS["sample_steps"] + 1
    assert arts["chains"].data.shape == (4 * 30 + 2, meta["frames"] * (4 * 30 + 2))
    from engine.metrics.digit_classifier import DigitClassifier

    d.classifier = DigitClassifier().eval()  # an untrained judge: the scoring path, without training one
    scores = d.evaluate()
    assert 0.0 < scores["quality/recognisability"] <= 1.0 and 0.0 < scores["quality/coverage"] <= 1.0
    images = d.sample_images(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


def test_views_do_not_touch_the_training_random_streams():
    r = recipe()
    r.train_step()
    state, data = torch.get_rng_state(), r.data_gen.get_state()
    r.samples()
    r.evaluate()
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(r.data_gen.get_state(), data)


# -- through the runner --
def test_runner_trains_and_resumes_exactly_buffer_included(tmp_path):
    whole = write_run(tmp_path / "whole", steps=60)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=60)

    def stop_early():
        deadline = time.monotonic() + 60
        while read_history(half).step < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        half.send("stop")

    thread = threading.Thread(target=stop_early)
    thread.start()
    assert Runner(half.path).run() == 0
    thread.join(timeout=10)
    stopped_at = read_history(half).step
    assert read_history(half).state == "stopped" and 3 <= stopped_at < 60
    assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
    a = load_checkpoint(whole.checkpoint_path)["state"]
    b = load_checkpoint(half.checkpoint_path)["state"]
    assert torch.equal(a["buffer"]["items"], b["buffer"]["items"]), f"stopped at {stopped_at}"
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), f"stopped at {stopped_at}"
    hist = read_history(half)
    assert {"train/loss", "train/e_real", "train/e_sample", "train/e_noise",
            "quality/sliced_wasserstein"} <= set(hist.metrics)


def test_a_served_run_applies_settings_and_refuses_unknown_requests(tmp_path):
    rd = write_run(tmp_path / "run", steps=2)

    def answers(name):
        return [(e, json.loads((rd.path / e.payload["path"]).read_text()) if e.payload["kind"] == "data" else None)
                for e in rd.events() if e.type == "sample" and e.payload["name"] == name]

    def drive():
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            rd.send("set", key="noise", value=0)
            rd.send("set", key="hidden", value=8)  # not live: refused with a log line
            rd.send("sample")
            rd.send("interact", name="compare", reply="compare", request=1)
            while not answers("compare.error") and time.monotonic() < deadline:
                time.sleep(0.05)
            while "noise 0)" not in answers("chains-meta")[-1][1]["label"] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    (_, err), = answers("compare.error")
    assert err["request"] == 1 and "no 'compare' action" in err["error"]
    assert "noise 0)" in answers("chains-meta")[-1][1]["label"]
    assert any("cannot change while training" in e.payload.get("message", "") for e in rd.events() if e.type == "log")


# -- the studio --
async def test_the_lesson_trains_and_its_chains_play_in_the_studio():
    from studio.app import GenStudioApp
    from studio.widgets.diffusion_views import TimelineView
    from studio.widgets.image_view import ImageView
    from test_studio import lesson_screen, start_tiny, wait_for

    app = GenStudioApp(graphics="halfblock", lesson="ebm-langevin")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        assert [p.id for p in screen.query("TabPane")][:3] == ["tab-train", "tab-chains", "tab-buffer"]
        await start_tiny(pilot, screen, {"hidden": 16, "buffer_size": 128, "sample_steps": 10, "steps": 1_000_000})
        await wait_for(pilot, lambda: screen.snapshot is not None and "chains" in screen.snapshot.samples
                       and "buffer" in screen.snapshot.samples and "train/e_real" in screen.snapshot.series,
                       what="chains, buffer and energies")
        await pilot.press("2")
        await pilot.pause()
        view = screen.query_one(TimelineView)
        assert app.focused is view
        await wait_for(pilot, lambda: view.strip is not None and view.frames == 11, what="frames")
        await pilot.press("end")
        bar = str(screen.query_one("#timeline-bar").render())
        assert view.frame == 10 and "t = 10" in bar
        assert bar.startswith("noise ") and " points   frame" in bar  # not "image": these are 2-D points
        assert "Langevin steps from fixed noise (step" in bar.splitlines()[1]  # the settings, not cut off
        await pilot.press("3")
        await pilot.pause()
        assert screen.query_one("#buffer", ImageView).path == screen.snapshot.samples["buffer"]
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")
