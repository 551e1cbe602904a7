"""The diffusion lesson on tiny CPU configs: the forward process against its closed form,
both schedules, deterministic DDIM, DDPM with a perfect noise oracle, the U-Net's shapes,
training on digits and on 2-D points, the views and their formats, live settings, and the
runner: exact resume and the sampler comparison requested while it serves."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.registry import RECIPES
from engine.schema import validate
from engine.configs.diffusion import DiffusionConfig
from engine.data.images import DataError
from engine.models.diffusion import NoiseSchedule
from engine.models.unet import PointDenoiser, UNet, UNetArgs
from engine.recipes.base import RunContext
from engine.recipes.diffusion import FORWARD_COLS, FORWARD_ROWS, DiffusionRecipe
from engine.rundir import RunDir, read_history
from engine.runner import Runner

TINY = {"base": 4, "batch_size": 16, "train_size": 256, "timesteps": 50, "sampler_steps": 10}


def recipe(**over) -> DiffusionRecipe:
    torch.manual_seed(0)
    return DiffusionRecipe(RunContext(device=torch.device("cpu")), DiffusionConfig(**{**TINY, **over}))


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


@pytest.fixture
def untrained_judge(monkeypatch):
    """An untrained digit classifier in place of the cached one: scoring runs in
    milliseconds instead of training the real judge first."""
    from engine.metrics import digit_classifier

    monkeypatch.setattr(digit_classifier, "get_digit_classifier",
                        lambda *a, **k: digit_classifier.DigitClassifier().eval())


# -- the forward process --

@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_q_sample_has_the_closed_form_mean_and_variance(kind):
    s = NoiseSchedule(kind, 100)
    x0 = torch.tensor([0.9, -0.5, 0.0])
    g = torch.Generator().manual_seed(0)
    for t in (1, 30, 70, 100):
        noise = torch.randn(100_000, 3, generator=g)
        x_t = s.q_sample(x0.expand(100_000, 3), torch.full((100_000,), t), noise)
        ab = s.alpha_bar[t]
        assert torch.allclose(x_t.mean(0), ab.sqrt() * x0, atol=0.015), t
        assert torch.allclose(x_t.var(0), (1 - ab).expand(3), rtol=0.03, atol=1e-4), t
    assert torch.equal(s.q_sample(x0, 0, torch.randn(3)), x0)  # t = 0 is the clean image


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_many_single_steps_equal_the_closed_form_in_distribution(kind):
    s = NoiseSchedule(kind, 60)
    g = torch.Generator().manual_seed(1)
    x0 = torch.tensor([1.0, -1.0]).expand(50_000, 2)
    x = x0.clone()
    for t in range(1, 41):  # x_{t-1} -> x_t, one small step at a time
        x = s.q_step(x, t, torch.randn(x.shape, generator=g))
        if t in (5, 20, 40):
            direct = s.q_sample(x0, t, torch.randn(x.shape, generator=g))
            assert torch.allclose(x.mean(0), direct.mean(0), atol=0.02), t
            assert torch.allclose(x.var(0), direct.var(0), rtol=0.04), t
            assert torch.allclose(x.var(0), 1 - s.alpha_bar[t].expand(2), rtol=0.04), t


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [50, 1000])
def test_schedules_are_monotone_and_in_range(kind, steps):
    s = NoiseSchedule(kind, steps)
    assert s.betas.shape == s.alpha_bar.shape == (steps + 1,)
    betas, ab = s.betas[1:], s.alpha_bar
    assert ((betas > 0) & (betas < 1)).all()
    assert ab[0] == 1 and ((ab[1:] > 0) & (ab[1:] < 1)).all()
    assert (ab[1:] < ab[:-1]).all()  # strictly less signal at every step
    assert ab[-1] < 0.01  # pure noise at t = T
    t = torch.arange(steps + 1)
    assert torch.allclose(s.signal_level(t) ** 2 + s.noise_level(t) ** 2, torch.ones(steps + 1), atol=1e-5)
    if kind == "linear":
        assert s.betas[1] == pytest.approx(1e-4 * 1000 / steps) and s.betas[-1] == pytest.approx(min(0.02 * 1000 / steps, 0.999))


def test_cosine_keeps_more_signal_in_the_middle_than_linear():
    lin, cos = NoiseSchedule("linear", 1000), NoiseSchedule("cosine", 1000)
    assert cos.signal_level(500) > 2 * lin.signal_level(500)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule("quadratic", 10)


# -- sampling --

def test_ddim_with_eta_zero_is_deterministic():
    s = NoiseSchedule("linear", 50)
    x, eps = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    assert torch.equal(s.ddim_step(eps, x, 40, 30), s.ddim_step(eps, x, 40, 30))
    net = UNet(UNetArgs(base=4, mults=(1, 2)))
    torch.nn.init.normal_(net.out.weight, std=0.1)  # not the all-zero prediction of a fresh net
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a = s.ddim_sample(net, x_T, 10)
    b = s.ddim_sample(net, x_T.clone(), 10)
    assert torch.equal(a, b)
    # With eta > 0 the fresh noise comes from the generator: same seed, same sample.
    c = s.ddim_sample(net, x_T, 10, eta=1.0, generator=torch.Generator().manual_seed(3))
    d = s.ddim_sample(net, x_T, 10, eta=1.0, generator=torch.Generator().manual_seed(3))
    e = s.ddim_sample(net, x_T, 10, eta=1.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(c, d) and not torch.equal(c, e) and not torch.equal(a, c)


def test_ddim_calls_on_step_from_noise_to_the_sample():
    s = NoiseSchedule("cosine", 100)
    seen = []
    s.ddim_sample(lambda x, t: torch.zeros_like(x), torch.randn(2, 3), 10, on_step=lambda i, t, x: seen.append((i, t)))
    assert seen[0] == (0, 100) and seen[-1] == (10, 0) and len(seen) == 11
    assert [t for _, t in seen] == sorted((t for _, t in seen), reverse=True)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_a_perfect_noise_oracle_recovers_the_image(kind):
    """If eps_fn knew the true noise in x_t, every step's guess of x_0 would be exact, and
    both samplers would end on x_0 whatever noise they started from."""
    s = NoiseSchedule(kind, 200)
    x0 = torch.rand(1, 1, 6, 6) * 2 - 1

    def oracle(x, t):
        ab = s.alpha_bar[t].view(-1, 1, 1, 1)
        return (x - ab.sqrt() * x0) / (1 - ab).sqrt()

    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, 1, 6, 6, generator=g)
    assert torch.allclose(s.ddpm_sample(oracle, x_T, g), x0.expand(2, -1, -1, -1), atol=1e-3)
    assert torch.allclose(s.ddim_sample(oracle, x_T, 10), x0.expand(2, -1, -1, -1), atol=1e-3)


def test_ddpm_step_adds_no_noise_on_the_last_step():
    s = NoiseSchedule("linear", 20)
    x, eps = torch.randn(2, 4), torch.randn(2, 4)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    assert torch.equal(s.ddpm_step(eps, x, 1, g1), s.ddpm_step(eps, x, 1, g2))
    assert not torch.equal(s.ddpm_step(eps, x, 5, g1), s.ddpm_step(eps, x, 5, g2))
    with pytest.raises(ValueError):
        s.ddpm_step(eps, x, 0, g1)


# -- the networks --

@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_unet_output_has_the_input_shape(size, channels):
    net = UNet(UNetArgs(channels=channels, base=8))
    x = torch.randn(2, channels, size, size)
    assert net(x, torch.tensor([1, 999])).shape == x.shape
    cnet = UNet(UNetArgs(channels=channels, base=8, cond_dim=5))
    assert cnet(x, torch.tensor([3, 4]), torch.randn(2, 5)).shape == x.shape
    assert cnet(x, torch.tensor([3, 4]), None).shape == x.shape  # unconditional branch


def test_unet_condition_changes_the_prediction_and_is_checked():
    torch.manual_seed(0)
    net = UNet(UNetArgs(base=8, cond_dim=3))
    for p in net.parameters():  # a fresh net's residual branches start at zero: wake them up
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 10])
    assert not torch.allclose(net(x, t, torch.zeros(2, 3)), net(x, t, torch.ones(2, 3)))
    with pytest.raises(ValueError, match="cond must be"):
        net(x, t, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="cond_dim = 0"):
        UNet(UNetArgs(base=8))(x, t, torch.zeros(2, 3))


def test_point_denoiser_shape():
    net = PointDenoiser()
    assert net(torch.randn(7, 2), torch.randint(1, 100, (7,))).shape == (7, 2)


# -- the recipe --

def test_the_loss_falls_on_tiny_digits():
    r = recipe(base=8, batch_size=32, lr=3e-3)
    losses = [r.train_step()["train/loss"].item() for _ in range(80)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-15:]) < 0.6 * np.mean(losses[:5]), (losses[:5], losses[-15:])


def test_digit_views_have_their_formats(untrained_judge):
    r = recipe()
    r.train_step()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "schedule", "forward", "timeline", "timeline-meta"}
    assert arts["samples"].data.shape == (8 * 30 + 2, 8 * 30 + 2) and arts["samples"].data.dtype == np.uint8
    assert arts["forward"].data.shape == (FORWARD_ROWS * 30 + 2, FORWARD_COLS * 30 + 2)
    assert "t = 0, 7, 14" in arts["forward"].caption
    sched = arts["schedule"].data
    assert set(sched) == {"title", "x", "xlabel", "series"} and sched["xlabel"] == "t"
    assert sched["x"][0] == 0 and sched["x"][-1] == TINY["timesteps"]
    for ys in sched["series"].values():
        assert len(ys) == len(sched["x"]) and all(0 <= y <= 1 for y in ys)
    meta, strip = arts["timeline-meta"].data, arts["timeline"].data
    assert meta["frames"] == 11 and len(meta["t"]) == 11  # 10 DDIM steps: the start and 10 states
    assert meta["t"][0] == TINY["timesteps"] and meta["t"][-1] == 0 and meta["label"] == "DDIM 10 steps, seed 0"
    assert strip.shape[1] == meta["frames"] * (4 * 30 + 2) and strip.shape[0] == 4 * 30 + 2
    # Views draw from fixed noise: twice gives the same picture.
    again = {a.name: a for a in r.samples()}
    assert (again["samples"].data == arts["samples"].data).all()
    scores = r.evaluate()
    assert set(scores) == {"val/loss", "quality/recognisability", "quality/coverage"}
    images = r.sample_images(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_timeline_keeps_twenty_equal_frames_for_long_samplers():
    r = recipe(sampler_steps=50, timesteps=100)
    arts = {a.name: a for a in r.samples()}
    meta = arts["timeline-meta"].data
    assert meta["frames"] == 20 and meta["t"][0] == 100 and meta["t"][-1] == 0
    assert arts["timeline"].data.shape[1] == 20 * (4 * 30 + 2)


def test_toy2d_trains_and_its_views_render():
    r = recipe(dataset="toy2d", toy_shape="ring", batch_size=128, lr=3e-3)
    assert r.train_size == 0
    losses = [r.train_step()["train/loss"].item() for _ in range(40)]
    assert np.mean(losses[-10:]) < np.mean(losses[:3])
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "schedule", "forward", "timeline", "timeline-meta"}
    assert arts["samples"].data.ndim == 3 and arts["samples"].data.shape[2] == 3
    w = arts["samples"].data.shape[1]
    assert arts["forward"].data.shape[1] == FORWARD_COLS * w
    assert arts["timeline"].data.shape[1] == arts["timeline-meta"].data["frames"] * w
    assert set(r.evaluate()) == {"val/loss", "quality/sliced_wasserstein"}
    assert r.sample_images(50, torch.Generator().manual_seed(0)).shape[:2] == (1, 3)


def test_live_settings():
    r = recipe()
    r.set_live("lr", 5e-4)
    r.set_live("sampler_steps", 25)
    assert r.opt.param_groups[0]["lr"] == 5e-4 and r.cfg.sampler_steps == 25
    with pytest.raises(KeyError):
        r.set_live("base", 8)


def test_compare_answers_with_both_samplers_and_refuses_bad_steps(untrained_judge):
    r = recipe()
    parts = list(r.interact("compare", {"ddim_steps": 10}))
    final = parts[-1]
    assert final.name == "compare" and final.kind == "image"
    assert "DDPM 50 steps" in final.caption and "DDIM 10 steps" in final.caption
    assert final.caption.count("recognisability") == 2
    assert final.data.shape == (4 * 30 + 2, 2 * (4 * 30 + 2) + 6)
    for bad in (7, "ten", True, None):
        with pytest.raises(ValueError, match="ddim_steps must be one of 10, 25, 50, 100"):
            list(r.interact("compare", {"ddim_steps": bad}))
    with pytest.raises(ValueError, match="no 'dance' action"):
        list(r.interact("dance", {}))


def test_folder_needs_a_path_and_enough_images(tmp_path):
    with pytest.raises(DataError, match="needs data_path"):
        recipe(dataset="folder")
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(22):
        Image.new("RGB", (40, 36), (10 * i, 100, 200)).save(folder / f"p{i}.png")
    r = recipe(dataset="folder", data_path=str(folder))
    assert r.x_train.shape[1:] == (3, 32, 32)
    assert torch.isfinite(r.train_step()["train/loss"])
    for f in sorted(folder.iterdir())[5:]:
        f.unlink()
    with pytest.raises(DataError, match="only 5 readable images"):
        recipe(dataset="folder", data_path=str(folder))


# -- through the runner --

def write_run(path, **params) -> RunDir:
    cfg = validate(DiffusionConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("diffusion", asdict(cfg), device="cpu", lesson="diffusion-digits")
    return rd


def test_registered():
    assert RECIPES["diffusion"] == (DiffusionConfig, "engine.recipes.diffusion")


def test_runner_trains_and_resumes_exactly(tmp_path, untrained_judge):
    whole = write_run(tmp_path / "whole", steps=12)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=6)
    assert Runner(half.path).run() == 0
    cfg = half.read_config()
    cfg["params"]["steps"] = 12
    half.write_config("diffusion", cfg["params"], device="cpu", lesson="diffusion-digits")
    assert Runner(half.path).run() == 0
    a, b = (load_checkpoint(rd.checkpoint_path)["state"] for rd in (whole, half))
    for part in ("model", "ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert int(b["ema"]["updates"]) == 12
    hist = read_history(half)
    assert hist.state == "finished"
    assert {"train/loss", "val/loss", "quality/recognisability", "quality/coverage"} <= set(hist.metrics)
    assert {"samples", "schedule", "forward", "timeline", "timeline-meta"} <= set(hist.samples)


def test_compare_through_the_runner_and_errors_come_back(tmp_path, untrained_judge):
    rd = write_run(tmp_path / "run", steps=2)

    def answers():
        return [e.payload for e in rd.events() if e.type == "sample" and e.payload["name"] in ("compare", "compare.error")]

    def drive():
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            rd.send("interact", name="compare", reply="compare", ddim_steps=10, request=1)
            rd.send("interact", name="compare", reply="compare", ddim_steps=12, request=2)
            while not any("-r2-" in a["path"] for a in answers()) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    first = [a for a in answers() if "-r1-" in a["path"]]
    assert first and first[-1]["kind"] == "image" and "DDPM 50 steps" in first[-1]["caption"]
    assert "DDIM 10 steps" in first[-1]["caption"] and "faster" in first[-1]["caption"]
    err = [a for a in answers() if "-r2-" in a["path"]]
    assert err and err[-1]["kind"] == "data"
    assert "ddim_steps must be one of" in json.loads((rd.path / err[-1]["path"]).read_text())["error"]


def test_v_prediction_converts_to_the_noise_exactly():
    """v = a eps - s x0 and eps = s x_t + a v: a network that outputs the true v gives the
    true noise at every t, so the samplers work unchanged."""
    from engine.models.diffusion import NoiseSchedule

    for kind in ("linear", "cosine"):
        sch = NoiseSchedule(kind, 100)
        x0, noise = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
        t = torch.tensor([1, 10, 40, 70, 99, 100])
        x_t = sch.q_sample(x0, t, noise)
        v = sch.v_target(x0, t, noise)
        assert torch.allclose(sch.v_to_eps(v, x_t, t), noise, atol=1e-4)
        assert torch.allclose(sch.v_to_eps(sch.v_target(x0, 50, noise), sch.q_sample(x0, 50, noise), 50), noise,
                              atol=1e-4)


def test_both_predictions_train():
    for prediction in ("eps", "v"):
        r = recipe(prediction=prediction)
        first = r.train_step()["train/loss"].item()
        for _ in range(30):
            last = r.train_step()["train/loss"].item()
        assert last < first, (prediction, first, last)
