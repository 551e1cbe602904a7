"""The RealNVP lesson on tiny CPU configs: the coupling layer's exact inverse and its log-det
against autograd's Jacobian, the masks, the bounded scales, the exact density of the eight
Gaussians, learning on points and on digits, the views, a NaN that stops the run with a
flow's hint, exact resume through the runner, requests answered while it serves, and the
Flow and Density tabs in the studio."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from conftest import wait_for_history
from engine.checkpoint import load_checkpoint
from engine.configs.realnvp import RealNVPConfig
from engine.data.toy2d import gaussians_log_density, sample_toy
from engine.device import one_thread
from engine.models.realnvp import (Coupling, Logit, PointNet, alternating_masks, checkerboard_masks, image_flow,
                                   point_flow)
from engine.recipes.base import RunContext
from engine.recipes.realnvp import PX, RealNVPRecipe, bits_per_dim
from engine.registry import RECIPES
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import validate

TINY = {"layers": 4, "hidden": 16, "batch_size": 128, "steps": 40}
TINY_DIGITS = {"dataset": "digits", "layers": 2, "channels": 4, "batch_size": 8, "train_size": 256, "steps": 40}


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """As the runner sets it for the points: tiny steps gain nothing from a second thread."""
    with one_thread():
        yield


def recipe(**over) -> RealNVPRecipe:
    torch.manual_seed(0)
    return RealNVPRecipe(RunContext(device=torch.device("cpu")), validate(RealNVPConfig, {**TINY, **over}))


def shaken(flow):
    """A flow whose couplings are not the identity (a fresh one starts as s = t = 0)."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=g))
    return flow.double()


# -- the model --

def test_masks_alternate_and_cover_every_coordinate():
    a, b = alternating_masks(2, 2)
    assert a.tolist() == [1.0, 0.0] and b.tolist() == [0.0, 1.0]
    m0, m1 = checkerboard_masks(4, 2)
    assert m0.shape == (1, 4, 4) and torch.equal(m0 + m1, torch.ones(1, 4, 4))
    assert m0[0, 0, 0] == 1 and m0[0, 0, 1] == 0 and m0[0, 1, 0] == 0  # a kept pixel's neighbours move


def test_a_coupling_keeps_its_kept_half_and_moves_the_other():
    layer = Coupling(torch.tensor([1.0, 0.0]), PointNet(2, 8), scale_bound=2.0)
    shaken(layer)
    x = torch.randn(50, 2, dtype=torch.float64)
    y, log_det = layer(x)
    assert torch.equal(y[:, 0], x[:, 0]) and not torch.allclose(y[:, 1], x[:, 1])
    assert log_det.shape == (50,)


@pytest.mark.parametrize("kind", ["points", "images"])
def test_x_to_z_to_x_is_exact(kind):
    if kind == "points":
        flow = shaken(point_flow(2, 6, 16, 3.0, torch.tensor([0.1, -0.2]), 1.5))
        x = torch.randn(200, 2, dtype=torch.float64) * 2
    else:
        flow = shaken(image_flow(8, 4, 4, 3.0))
        x = torch.rand(6, 1, 8, 8, dtype=torch.float64) * 0.98 + 0.01
    z, _ = flow(x)
    assert not torch.allclose(z, x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-9)
    if kind == "points":  # (an image's logit saturates far out: z -> x -> z is exact only nearby)
        zz = torch.randn_like(z)
        assert torch.allclose(flow(flow.inverse(zz))[0], zz, atol=1e-9)
    # The stages line up: x, the preprocessed x, then one state per coupling.
    pushed, pulled = flow.push_stages(x), flow.pull_stages(z)
    assert len(pushed) == len(pulled) == len(flow.couplings) + 2
    assert all(torch.allclose(p, q, atol=1e-9) for p, q in zip(pushed, pulled))


@pytest.mark.parametrize("kind", ["points", "images"])
def test_log_det_matches_autograds_jacobian(kind):
    """log |det dz/dx| from the layers equals the log-determinant of the full Jacobian that
    autograd builds column by column (images: 4x4, so the Jacobian is 16 x 16)."""
    if kind == "points":
        flow = shaken(point_flow(2, 6, 16, 3.0, torch.zeros(2), 1.7))
        xs = torch.randn(4, 2, dtype=torch.float64)
    else:
        flow = shaken(image_flow(4, 3, 4, 3.0))
        xs = torch.rand(3, 1, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    _, log_det = flow(xs)
    for x, expected in zip(xs, log_det):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], x)  # (*shape, *shape)
        d = x.numel()
        sign, logabs = torch.linalg.slogdet(jac.reshape(d, d))
        assert sign != 0
        assert logabs.item() == pytest.approx(expected.item(), abs=1e-8)


def test_the_logit_preprocessing_is_a_bijection_with_its_slope():
    logit = Logit(0.05)
    x = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)[None]  # the ends included
    y, log_det = logit(x)
    assert torch.isfinite(y).all() and torch.allclose(logit.inverse(y), x, atol=1e-12)
    slopes = torch.autograd.functional.jacobian(lambda v: logit(v)[0], x).reshape(11, 11).diagonal()
    assert log_det.item() == pytest.approx(slopes.log().sum().item(), abs=1e-9)


def test_scales_are_bounded_so_nothing_overflows():
    layer = Coupling(torch.tensor([1.0, 0.0]), PointNet(2, 8), scale_bound=2.0)
    with torch.no_grad():
        layer.net.net[-1].bias.fill_(1e6)  # a network gone wild: raw scales and shifts of a million
    s, _ = layer.scale_shift(torch.tensor([[0.3, 0.0]]))
    assert s[0, 1].item() == pytest.approx(2.0) and s[0, 0] == 0
    y, log_det = layer(torch.tensor([[0.3, 0.5]]))
    assert torch.isfinite(y).all() and log_det.item() == pytest.approx(2.0)


def test_a_fresh_flow_is_the_base_gaussian_on_rescaled_data():
    flow = point_flow(2, 4, 8, 3.0, torch.zeros(2), 2.0)
    x = torch.randn(10, 2)
    expected = -0.5 * (x / 2).square().sum(1) - math.log(2 * math.pi) - 2 * math.log(2.0)
    assert torch.allclose(flow.log_prob(x), expected, atol=1e-5)
    g = torch.Generator().manual_seed(0)
    assert flow.sample(7, g, temperature=0.5).shape == (7, 2)


# -- the known density --

def test_the_mixture_density_integrates_to_one_and_is_exact_at_a_centre():
    for noise in (0.1, 0.35):
        step = 0.02
        axis = torch.arange(-4, 4, step, dtype=torch.float64) + step / 2
        gy, gx = torch.meshgrid(axis, axis, indexing="ij")
        grid = torch.stack([gx.flatten(), gy.flatten()], 1)
        total = gaussians_log_density(grid, noise).exp().sum().item() * step**2
        assert total == pytest.approx(1.0, abs=1e-4), noise
    # At a centre, with clusters far apart, only one Gaussian counts: 1/8 of its peak.
    peak = gaussians_log_density(torch.tensor([[2.0, 0.0]]), 0.05).item()
    assert peak == pytest.approx(math.log(1 / 8 / (2 * math.pi * 0.05**2)), abs=1e-9)
    assert gaussians_log_density(torch.tensor([[2.0, 0.0]])).item() == pytest.approx(
        math.log(1 / 8 / (2 * math.pi * 0.1**2)), abs=1e-6)  # the shape's own noise by default
    with pytest.raises(ValueError, match="noise > 0"):
        gaussians_log_density(torch.zeros(1, 2), 0.0)


def test_the_mixture_density_is_the_one_sample_toy_draws_from():
    """Monte Carlo: the share of samples in a box matches the density's integral over it, and
    their mean -log p matches the entropy integral -sum p log p over a fine grid."""
    noise = 0.35
    pts = sample_toy("gaussians", 200_000, torch.Generator().manual_seed(0), noise=noise)
    box = (pts[:, 0] > 1.5) & (pts[:, 0] < 2.5) & (pts[:, 1] > -0.5) & (pts[:, 1] < 0.5)
    step = 0.01
    axis = torch.arange(-0.5, 0.5, step, dtype=torch.float64) + step / 2
    gy, gx = torch.meshgrid(axis, axis + 2.0, indexing="ij")
    inside = gaussians_log_density(torch.stack([gx.flatten(), gy.flatten()], 1), noise).exp().sum().item() * step**2
    assert box.double().mean().item() == pytest.approx(inside, abs=0.003)
    axis = torch.arange(-4, 4, 0.02, dtype=torch.float64) + 0.01
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    logp = gaussians_log_density(torch.stack([gx.flatten(), gy.flatten()], 1), noise)
    entropy = -(logp.exp() * logp).sum().item() * 0.02**2
    assert -gaussians_log_density(pts, noise).mean().item() == pytest.approx(entropy, abs=0.01)


# -- the recipe --

def test_config_picks_a_batch_per_dataset():
    assert RealNVPConfig().batch() == 1024 and RealNVPConfig(dataset="digits").batch() == 64
    assert RealNVPConfig(batch_size=12).batch() == 12
    assert RECIPES["realnvp"] == (RealNVPConfig, "engine.recipes.realnvp")


def test_the_nll_falls_toward_the_true_density():
    r = recipe(layers=4, hidden=32, batch_size=512, steps=300, lr=5e-3)
    before = r.evaluate()
    assert before["val/true_nll"] == pytest.approx(-gaussians_log_density(r.x_val, r.cfg.noise).mean().item())
    losses = [r.train_step()["train/nll"].item() for _ in range(300)]
    after = r.evaluate()
    assert all(np.isfinite(losses))
    assert after["val/nll"] < before["val/nll"] - 0.3, (before, after)
    assert after["val/nll"] > after["val/true_nll"] - 0.05  # no model beats the truth (beyond noise)
    assert after["val/gap"] == pytest.approx(after["val/nll"] - after["val/true_nll"])  # the lesson's bar
    assert r.steps_done == 300


def test_bits_per_dim_counts_the_bins():
    # A uniform density on [0, 1] per pixel (nll 0) spends exactly 8 bits on each 8-bit pixel.
    assert bits_per_dim(torch.tensor(0.0), 784).item() == pytest.approx(8.0)
    assert bits_per_dim(torch.tensor(-784 * math.log(2)), 784).item() == pytest.approx(7.0)


def test_digits_learn_and_report_bits_per_dim():
    r = recipe(**TINY_DIGITS, lr=1e-2)
    assert r.x_val.shape == (256, 1, 28, 28) and 0 <= r.x_val.min() and r.x_val.max() < 1
    before = r.evaluate()["val/bits_per_dim"]
    for _ in range(40):
        metrics = r.train_step()
    after = r.evaluate()["val/bits_per_dim"]
    assert set(metrics) == {"train/bits_per_dim"}
    assert after < before - 0.3, (before, after)
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "flow", "flow-meta", "density"}
    assert arts["samples"].data.shape == (8 * 30 + 2, 8 * 30 + 2)
    meta = arts["flow-meta"].data
    assert meta["frames"] == 3 and arts["flow"].data.shape[1] == 3 * (2 * (4 * 30 + 2) + 4)
    assert arts["density"].data.shape == (2 * 30 + 2, 8 * 30 + 2) and "bits/pixel" in arts["density"].caption
    images = r.sample_images(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_point_views_have_their_formats_and_leave_the_training_stream_alone():
    r = recipe()
    r.train_step()
    state = r.data_gen.get_state()
    arts = {a.name: a for a in r.samples()}
    assert torch.equal(r.data_gen.get_state(), state)
    assert set(arts) == {"samples", "flow", "flow-meta", "density"}
    assert arts["samples"].data.shape == (PX, PX, 3)
    meta = arts["flow-meta"].data
    assert meta["frames"] == TINY["layers"] + 1 and meta["t"] == []
    assert arts["flow"].data.shape == (PX, meta["frames"] * (2 * PX + 4), 3)
    assert arts["density"].data.shape[2] == 3 and "true density" in arts["density"].caption
    again = {a.name: a for a in r.samples()}
    assert all((again[k].data == arts[k].data).all() for k in ("samples", "flow", "density"))
    ring = recipe(shape="ring")
    assert "val/true_nll" not in ring.evaluate()
    assert "data histogram" in {a.name: a for a in ring.samples()}["density"].caption
    assert r.sample_images(50, torch.Generator().manual_seed(0)).shape == (1, 3, PX, PX)


def test_live_settings():
    r = recipe()
    r.set_live("lr", 1e-3)
    r.set_live("temperature", 0.5)
    r.train_step()
    assert r.cfg.temperature == 0.5 and r.opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 50)  # warming up
    with pytest.raises(KeyError):
        r.set_live("layers", 3)


# -- through the runner --

def write_run(path, **params) -> RunDir:
    cfg = validate(RealNVPConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("realnvp", asdict(cfg), device="cpu", lesson="realnvp-flows")
    return rd


def test_runner_trains_and_resumes_exactly(tmp_path):
    """Stopped part-way and continued (the learning-rate schedule follows the total steps,
    so both runs keep the same total): the same weights as a run never stopped."""
    whole = write_run(tmp_path / "whole", steps=120)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=120)
    thread = threading.Thread(target=lambda: (wait_for_history(half, lambda h: h.step >= 3), half.send("stop")))
    thread.start()
    assert Runner(half.path).run() == 0
    thread.join(timeout=10)
    stopped_at = read_history(half).step
    assert read_history(half).state == "stopped" and 3 <= stopped_at < 120
    assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
    a, b = (load_checkpoint(rd.checkpoint_path)["state"] for rd in (whole, half))
    assert b["steps_done"] == 120
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), f"stopped at {stopped_at}"
    hist = read_history(half)
    assert hist.state == "finished" and {"train/nll", "val/nll", "val/true_nll"} <= set(hist.metrics)
    assert {"samples", "flow", "flow-meta", "density"} <= set(hist.samples) and hist.status["unit"] == "points"


def test_a_nan_stops_the_run_with_a_flows_hint(tmp_path, monkeypatch):
    rd = write_run(tmp_path / "run", steps=200)
    monkeypatch.setenv("GENSTUDIO_FAULT_NAN_AT", "5")
    assert Runner(rd.path).run() == 1
    hist = read_history(rd)
    assert hist.state == "failed" and hist.errors[-1]["kind"] == "nan"
    assert "train/nll" in hist.errors[-1]["message"]
    assert "scale_bound" in hist.errors[-1]["hint"] and "lr" in hist.errors[-1]["hint"]


def test_requests_while_serving_settings_apply_and_unknown_actions_come_back_as_errors(tmp_path):
    rd = write_run(tmp_path / "run", steps=2)

    def drive():
        try:
            wait_for_history(rd, lambda h: h.state == "finished")
            rd.send("set", key="temperature", value=0.5)
            rd.send("sample")
            rd.send("interact", name="dance", reply="flow", request=1)
            wait_for_history(rd, lambda h: "flow.error" in h.samples)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    hist = read_history(rd)
    assert hist.params == {"temperature": 0.5}
    samples = [e.payload for e in rd.events() if e.type == "sample"]
    assert any(p["name"] == "samples" and "T = 0.5" in p["caption"] for p in samples)
    error = next(p for p in samples if p["name"] == "flow.error")
    assert "no 'dance' action" in json.loads((rd.path / error["path"]).read_text())["error"]


# -- the studio --

async def test_the_flow_and_density_tabs_show_the_run():
    from studio.app import GenStudioApp
    from studio.screens.lesson import LessonScreen
    from studio.widgets.diffusion_views import TimelineView
    from studio.widgets.image_view import ImageView

    app = GenStudioApp(graphics="halfblock", lesson="realnvp-flows")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, LessonScreen)
        assert [p.id for p in screen.query("TabPane")][:3] == ["tab-train", "tab-flow", "tab-density"]
        screen.query_one("#tabs").active = "tab-settings"
        await pilot.pause()
        for key, value in {**TINY, "steps": 1_000_000}.items():
            screen.query_one(f"#hp-{key}").value = str(value)
        await pilot.pause()
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        deadline = time.monotonic() + 120
        while not (screen.snapshot is not None and {"flow", "flow-meta", "density"} <= set(screen.snapshot.samples)):
            assert time.monotonic() < deadline, "timed out waiting for the flow views"
            await pilot.pause(0.1)
        await pilot.press("2")
        await pilot.pause()
        view = screen.query_one(TimelineView)
        assert app.focused is view
        while not (view.strip is not None and view.frames == TINY["layers"] + 1):
            assert time.monotonic() < deadline, "timed out waiting for the frames"
            await pilot.pause(0.1)
        await pilot.press("end")
        assert view.frame == TINY["layers"]
        await pilot.press("left", "left")
        assert view.frame == TINY["layers"] - 2
        assert "couplings" in str(screen.query_one("#timeline-bar").render())
        await pilot.press("3")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-density"
        assert screen.query_one("#density", ImageView).path == screen.snapshot.samples["density"]
        await pilot.press("x")
        while screen.snapshot.state != "stopped":
            assert time.monotonic() < deadline + 30, "timed out waiting for the stop"
            await pilot.pause(0.1)
