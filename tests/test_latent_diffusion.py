"""The latent diffusion lesson on tiny CPU configs: the autoencoder's shapes and loss, the
scaler brings latents to unit variance, the two phases and the freeze between them, the
U-Net learns the latents, exact resume across the switch, a borrowed autoencoder (a VQ-VAE
run, or an earlier latent diffusion run) and every way a wrong one is refused, the views,
and the lesson's tabs in the studio."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.configs.latent_diffusion import LatentDiffusionConfig
from engine.configs.vqvae import VQVAEConfig
from engine.models.latent_diffusion import LatentAEArgs, LatentAutoencoder, LatentScaler, VQLatents, ae_loss
from engine.recipes.base import RunContext
from engine.recipes.latent_diffusion import LatentDiffusionRecipe, paint_latents
from engine.registry import RECIPES
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import ConfigError, validate

from conftest import stop_at

TINY = {"train_size": 256, "batch_size": 16, "ae_width": 8, "latent_channels": 2, "base": 8, "ae_steps": 6,
        "steps": 12, "sampler_steps": 10}
TINY_VQ = {"train_size": 256, "batch_size": 16, "width": 8, "codes": 16, "code_dim": 4, "prior_width": 16,
           "prior_layers": 1, "prior_heads": 2, "ae_steps": 6, "steps": 8}

pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def recipe(**over) -> LatentDiffusionRecipe:
    torch.manual_seed(0)
    return LatentDiffusionRecipe(RunContext(device=torch.device("cpu")),
                                 validate(LatentDiffusionConfig, {**TINY, **over}))


def write_run(path, recipe_name: str = "latent_diffusion", config=LatentDiffusionConfig, base=TINY,
              **params) -> RunDir:
    cfg = validate(config, {**base, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config(recipe_name, asdict(cfg), device="cpu")
    return rd


# -- the model --

def test_the_autoencoder_maps_images_to_a_grid_and_back():
    torch.manual_seed(0)
    ae = LatentAutoencoder(LatentAEArgs(latent_channels=3, width=8, channels=1))
    x = torch.rand(5, 1, 28, 28)
    logits, mu, logvar = ae(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (5, 3, 7, 7)
    assert ae.latent_shape == (3, 7, 7) and torch.equal(ae.encode(x), mu)
    images = ae.decode(mu)
    assert images.shape == x.shape and 0 <= images.min() and images.max() <= 1
    losses = ae_loss(logits, x, mu, logvar, kl_weight=0.01)
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / 5
    assert losses["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert losses["loss"].item() == pytest.approx(losses["recon"].item() + 0.01 * kl.item(), rel=1e-5)


def test_the_scaler_brings_latents_to_unit_variance_and_back():
    z = torch.randn(500, 4, 7, 7) * torch.tensor([3.0, 0.5, 1.0, 2.0]).view(1, 4, 1, 1) + 5.0
    s = LatentScaler(4)
    s.fit(z)
    u = s(z)
    assert u.mean(dim=(0, 2, 3)).abs().max() < 1e-4  # every channel centred
    assert u.std().item() == pytest.approx(1.0, abs=1e-3)  # one scale for all: their relative sizes kept
    assert u[:, 0].std() / u[:, 1].std() == pytest.approx(6.0, rel=0.05)
    assert torch.allclose(s.inverse(u), z, atol=1e-4)
    assert bool(s.fitted) and set(s.state_dict()) == {"shift", "scale", "fitted"}  # saved in checkpoints


def test_painted_latents_show_each_channel_and_its_sign():
    u = torch.zeros(2, 4, 7, 7)
    u[0, 0] = 2.5  # channel 0 (top left) strongly positive
    u[0, 3] = -2.5  # channel 3 (bottom right) strongly negative
    p = paint_latents(u)
    assert p.shape == (2, 3, 28, 28) and 0 <= p.min() and p.max() <= 1
    assert p[0, :, 3, 3].tolist() == pytest.approx([1.0, 0.55, 0.0])  # orange
    assert p[0, :, 24, 24].tolist() == pytest.approx([0.0, 0.45, 1.0])  # blue
    assert p[0, :, 3, 24].abs().sum() == 0 and p[1].abs().sum() == 0  # zero is black
    assert paint_latents(torch.ones(1, 8, 7, 7)).shape == (1, 3, 28, 28)  # 8 channels: 3x3 squares, centred


def test_config_errors():
    with pytest.raises(ConfigError, match="ae_steps"):
        validate(LatentDiffusionConfig, {"ae_steps": 3000, "steps": 3000})


def test_registered():
    assert RECIPES["latent_diffusion"] == (LatentDiffusionConfig, "engine.recipes.latent_diffusion")


# -- the recipe --

def test_both_losses_fall_and_the_autoencoder_freezes_at_the_switch():
    r = recipe(batch_size=32, ae_width=16, latent_channels=4, base=16, ae_steps=120, steps=320, lr=3e-3)
    ae = [r.train_step()["train/loss_ae"].item() for _ in range(120)]
    assert np.mean(ae[-10:]) < 0.5 * np.mean(ae[:10])
    assert r.phase == "diffusion" and r.latents.shape == (256, 4, 7, 7) and r.val_latents.shape == (2000, 4, 7, 7)
    assert torch.allclose(r.latents, r.scaler(r.ae.encode(r.x_train)))  # encoded once, scaled
    assert r.latents.std().item() == pytest.approx(1.0, abs=0.01)
    frozen = {k: v.clone() for k, v in r.ae.state_dict().items()}
    steps = [r.train_step() for _ in range(200)]
    assert set(steps[0]) == {"train/loss"}
    loss = [m["train/loss"].item() for m in steps]
    assert np.mean(loss[-20:]) < 0.8 * np.mean(loss[:20])
    assert all(torch.equal(v, r.ae.state_dict()[k]) for k, v in frozen.items())
    assert r.opt.param_groups[0]["lr"] < 3e-3  # the cosine decay has begun


def test_views_and_scores_in_both_phases(untrained_judge):
    r = recipe()
    r.train_step()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "recon"}  # phase 1: reconstructions; the U-Net has drawn nothing yet
    assert "U-Net trains from step 7" in arts["samples"].caption
    assert arts["recon"].data.shape == (4 * 30 + 2, 9 * 30 + 2, 3)  # 12 triples, three to a row
    assert set(r.evaluate()) == {"val/recon"}
    for _ in range(TINY["steps"] - 1):
        r.train_step()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "drawn", "recon", "timeline", "timeline-meta"}
    assert arts["samples"].data.shape == (8 * 30 + 2, 8 * 30 + 2)
    assert arts["drawn"].data.shape == (4 * 30 + 2, 6 * 30 + 2, 3)  # 12 pairs, three to a row
    meta = arts["timeline-meta"].data
    assert meta["frames"] == 11 and meta["t"][0] == 1000 and meta["t"][-1] == 0  # DDIM 10: 11 states
    assert arts["timeline"].data.shape == (4 * 30 + 2, 11 * (4 * 30 + 2))  # every frame decoded, 4x4 digits
    scores = r.evaluate()
    assert set(scores) == {"val/recon", "val/loss", "quality/recognisability", "quality/coverage"}
    r.set_live("sampler_steps", 25)
    assert {a.name: a for a in r.samples()}["timeline-meta"].data["frames"] == 20
    images = r.sample_images(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_live_settings():
    r = recipe()
    r.set_live("ae_lr", 5e-4)
    r.set_live("lr", 1e-4)
    assert r.ae_opt.param_groups[0]["lr"] == 5e-4 and r.cfg.lr == 1e-4
    with pytest.raises(KeyError):
        r.set_live("base", 8)


# -- through the runner --

def test_resume_is_exact_in_either_phase_and_across_the_switch(tmp_path, untrained_judge):
    whole = write_run(tmp_path / "whole")
    assert Runner(whole.path).run() == 0
    a = load_checkpoint(whole.checkpoint_path)["state"]
    hist = read_history(whole)
    assert hist.state == "finished" and hist.step == 12
    assert {"train/loss_ae", "train/recon", "train/kl", "train/loss", "val/recon", "val/loss",
            "quality/recognisability", "quality/coverage"} <= set(hist.metrics)
    assert {"samples", "drawn", "recon", "timeline", "timeline-meta"} <= set(hist.samples)
    for at in (3, 6, 9):  # in the autoencoder's phase, at the switch, in the U-Net's
        half = write_run(tmp_path / f"stopped-at-{at}")
        stop_at(half, at)
        assert load_checkpoint(half.checkpoint_path)["state"]["steps_done"] == at
        assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
        b = load_checkpoint(half.checkpoint_path)["state"]
        assert b["steps_done"] == 12
        for part in ("ae", "scaler", "unet", "ema"):
            assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), (at, part)


@pytest.fixture
def vqvae_run(tmp_path, untrained_judge) -> RunDir:
    """A finished tiny VQ-VAE run (its autoencoder trained for 6 steps, its prior for 2)."""
    rd = write_run(tmp_path / "vq", "vqvae", VQVAEConfig, TINY_VQ)
    assert Runner(rd.path).run() == 0
    return rd


def test_a_vqvae_runs_autoencoder_is_borrowed_and_phase_1_skipped(tmp_path, vqvae_run):
    rd = write_run(tmp_path / "ld", autoencoder_run=str(vqvae_run.path), ae_steps=5000, steps=4)
    assert Runner(rd.path).run() == 0
    hist = read_history(rd)
    assert hist.state == "finished" and "train/loss_ae" not in hist.metrics and "train/loss" in hist.metrics
    logs = [e.payload.get("message", "") for e in rd.events() if e.type == "log"]
    assert any("phase 1 is skipped" in m and "VQ-VAE" in m for m in logs), logs
    r = LatentDiffusionRecipe(RunContext(device=torch.device("cpu")),
                              validate(LatentDiffusionConfig, {**TINY, "autoencoder_run": str(vqvae_run.path)}))
    assert isinstance(r.ae, VQLatents) and r.latent_shape == (4, 7, 7) and r.ae_steps == 0
    vq = r.ae.vqvae
    saved = load_checkpoint(vqvae_run.checkpoint_path)["state"]["model"]
    assert all(torch.equal(v, saved[k]) for k, v in vq.state_dict().items())
    r.train_step()
    # Decoding snaps a drawn latent to the nearest codes: the decoder sees what it was trained on.
    z = torch.randn(3, 4, 7, 7)
    assert torch.allclose(r.ae.decode(z), vq.decode(vq.quantiser.nearest(z)))


def test_a_latent_diffusion_runs_autoencoder_is_borrowed(tmp_path, untrained_judge):
    first = write_run(tmp_path / "first")
    assert Runner(first.path).run() == 0
    r = recipe(autoencoder_run=str(first.path))
    saved = load_checkpoint(first.checkpoint_path)["state"]["ae"]
    assert isinstance(r.ae, LatentAutoencoder) and r.ae_steps == 0 and r.phase == "diffusion"
    assert all(torch.equal(v, saved[k]) for k, v in r.ae.state_dict().items())


def test_a_wrong_autoencoder_run_is_refused_with_a_reason(tmp_path, vqvae_run):
    def refused(path, match):
        with pytest.raises(ConfigError, match=match):
            recipe(autoencoder_run=str(path))

    refused(tmp_path / "nowhere", "does not exist")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "not a GenStudio run")
    from engine.configs.vae import VAEConfig

    vae = write_run(tmp_path / "vae", "vae", VAEConfig, {})
    refused(vae.path, "vae run, whose latent is one vector")
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text(json.dumps({"format": 1, "recipe": "gpt", "params": {}}))
    refused(gpt, "is a gpt run; it needs a vqvae or latent_diffusion run")
    bad = write_run(tmp_path / "bad-params", "vqvae", VQVAEConfig, TINY_VQ)
    cfg = json.loads(bad.config_path.read_text())
    cfg["params"]["codes"] = "many"
    bad.config_path.write_text(json.dumps(cfg))
    refused(bad.path, "autoencoder_run: .*codes")
    refused(write_run(tmp_path / "no-ckpt", "vqvae", VQVAEConfig, TINY_VQ).path, "no checkpoint")
    damaged = write_run(tmp_path / "damaged", "vqvae", VQVAEConfig, TINY_VQ)
    damaged.checkpoint_path.parent.mkdir()
    damaged.checkpoint_path.write_bytes(b"not a checkpoint")
    refused(damaged.path, "damaged")
    # A run stopped before its autoencoder finished.
    early = write_run(tmp_path / "early", "vqvae", VQVAEConfig, TINY_VQ)
    stop_at(early, 3)
    refused(early.path, "has not finished training its autoencoder")
    # Weights that do not match the run's own config.
    swapped = write_run(tmp_path / "swapped", "vqvae", VQVAEConfig, {**TINY_VQ, "code_dim": 6})
    swapped.checkpoint_path.parent.mkdir()
    swapped.checkpoint_path.write_bytes(vqvae_run.checkpoint_path.read_bytes())
    refused(swapped.path, "do not fit its own config")
    # Another number of image channels than this run's data.
    with pytest.raises(ConfigError, match="trained on digits"):
        recipe(autoencoder_run=str(vqvae_run.path), dataset="faces")


# -- the lesson's tabs, in the studio --

async def test_the_latents_and_timeline_tabs_show_their_views():
    from test_studio import lesson_screen, start_tiny, wait_for

    from studio.app import GenStudioApp
    from studio.widgets.image_view import ImageView

    app = GenStudioApp(graphics="halfblock", lesson="latent-diffusion")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        assert [p.id for p in screen.query("TabPane")][:3] == ["tab-train", "tab-latents", "tab-timeline"]
        # Faces: no digit classifier to fit first (a fresh test cache has none), so the views come at once.
        menus = {"dataset": "faces", "sampler_steps": TINY["sampler_steps"]}  # menus: set by value
        await start_tiny(pilot, screen, {**{k: v for k, v in TINY.items() if k not in menus}, "ae_steps": 30,
                                         "steps": 1_000_000}, menus)
        await wait_for(pilot, lambda: screen.snapshot is not None and "recon" in screen.snapshot.samples
                       and "train/loss_ae" in screen.snapshot.series, timeout=120, what="the latents")
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-latents"
        await wait_for(pilot, lambda: screen.query_one("#recon", ImageView).path == screen.snapshot.samples["recon"],
                       what="the Latents tab's triples")
        await wait_for(pilot, lambda: "drawn" in screen.snapshot.samples and "timeline" in screen.snapshot.samples,
                       timeout=120, what="the U-Net's phase")
        await wait_for(pilot, lambda: screen.query_one("#drawn", ImageView).path == screen.snapshot.samples["drawn"],
                       what="the drawn latents")
        await pilot.press("3")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-timeline"
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")
