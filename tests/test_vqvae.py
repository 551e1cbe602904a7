"""The VQ-VAE lesson on tiny CPU configs: shapes, quantisation picks the nearest code, the
straight-through gradient reaches the encoder, each loss term trains what it should, the
codebook is seeded from encoder vectors and idle codes are moved, both losses fall, the
two phases and the switch between them, exact resume in either phase and across the
switch, the views, and the lesson's tabs in the studio."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.configs.vqvae import VQVAEConfig
from engine.models.gpt import GPT, GPTArgs
from engine.models.vqvae import GRID, VQVAE, Quantiser, VQVAEArgs, prior_batch, sample_codes, vq_loss
from engine.recipes.base import RunContext
from engine.recipes.vqvae import VQVAERecipe, code_colours, usage
from engine.registry import RECIPES
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import ConfigError, validate

from conftest import stop_at

TINY = {"train_size": 256, "batch_size": 16, "width": 8, "codes": 16, "code_dim": 4, "prior_width": 16,
        "prior_layers": 1, "prior_heads": 2, "ae_steps": 6, "steps": 12, "restart_after": 3}


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def model(**kw) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(VQVAEArgs(**{"codes": 8, "code_dim": 4, "width": 8, **kw}))


def recipe(**over) -> VQVAERecipe:
    torch.manual_seed(0)
    return VQVAERecipe(RunContext(device=torch.device("cpu")), validate(VQVAEConfig, {**TINY, **over}))


# -- the model --

def test_shapes():
    m = model(channels=3)
    x = torch.rand(5, 3, 28, 28)
    x_hat, z_e, z_q, idx = m(x)
    assert x_hat.shape == (5, 3, 28, 28)
    assert z_e.shape == z_q.shape == (5, 4, GRID, GRID) and idx.shape == (5, GRID, GRID)
    assert idx.dtype == torch.long and 0 <= idx.min() and idx.max() < 8
    assert torch.equal(m.encode(x), idx)
    images = m.decode(idx)
    assert images.shape == (5, 3, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_quantisation_picks_the_nearest_code():
    q = Quantiser(VQVAEArgs(codes=10, code_dim=3))
    z = torch.randn(4, 3, 5, 5)
    idx = q.nearest(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    brute = torch.cdist(flat, q.codebook.detach()).argmin(1).view(4, 5, 5)  # every distance, the slow way
    assert torch.equal(idx, brute)
    z_st, z_q, again = q(z)
    assert torch.equal(again, idx)
    assert torch.allclose(z_q, q.codebook.detach()[idx].permute(0, 3, 1, 2))
    assert torch.allclose(z_st, z_q)  # the decoder sees the codes themselves
    # A vector that is exactly a code is quantised to that code.
    on = q.codebook.detach()[[7, 2]].view(2, 3, 1, 1)
    assert q.nearest(on).flatten().tolist() == [7, 2]


def test_the_straight_through_gradient_reaches_the_encoder():
    m = model()
    x = torch.rand(3, 1, 28, 28)
    x_hat, z_e, z_q, idx = m(x)
    z_e.retain_grad()
    x_hat.square().sum().backward()  # anything that depends on the decoder's output
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    # The gradient at z_e is the decoder's gradient at its input, copied unchanged.
    z_in = m.quantiser.lookup(idx).detach().requires_grad_(True)
    m.decoder(z_in).square().sum().backward()
    assert torch.allclose(z_e.grad, z_in.grad)
    # Without the trick, argmin would have cut the encoder off.
    m.zero_grad()
    m.decoder(m.quantiser.lookup(m.encode(x))).square().sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.encoder.parameters())


def test_the_codebook_term_trains_the_codes_and_the_commitment_term_the_encoder():
    m = model()
    x = torch.rand(3, 1, 28, 28)
    x_hat, z_e, z_q, _ = m(x)
    losses = vq_loss(x_hat, x, z_e, z_q, beta=0.25)
    assert losses["codebook"].item() == pytest.approx(losses["commit"].item())  # the same distance
    assert losses["codebook"].item() == pytest.approx((z_e - z_q).square().sum().item() / 3, rel=1e-5)
    assert losses["recon"].item() == pytest.approx((x_hat - x).square().sum().item() / 3, rel=1e-5)
    assert losses["loss"].item() == pytest.approx(
        losses["recon"].item() + losses["codebook"].item() + 0.25 * losses["commit"].item(), rel=1e-5)

    def grads(term):
        m.zero_grad()
        _, z_e, z_q, _ = m(x)
        vq_loss(torch.zeros_like(x), x, z_e, z_q, beta=0.25)[term].backward()
        book = m.quantiser.codebook.grad
        enc = [p.grad for p in m.encoder.parameters()]
        return (book is not None and book.abs().sum() > 0), any(g is not None and g.abs().sum() > 0 for g in enc)

    assert grads("codebook") == (True, False)
    assert grads("commit") == (False, True)


def test_the_codebook_is_seeded_from_encoder_vectors():
    q = Quantiser(VQVAEArgs(codes=6, code_dim=3))
    z = torch.randn(2, 3, 4, 4)
    assert not q.ready
    q.seed(z, torch.Generator().manual_seed(0))
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    assert q.ready
    assert all((flat == code).all(1).any() for code in q.codebook.detach())


def test_an_idle_code_is_moved_onto_an_encoder_vector():
    q = Quantiser(VQVAEArgs(codes=4, code_dim=2))
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0]]))  # code 3: far away
    g = torch.Generator().manual_seed(0)
    near = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])[torch.arange(18) % 3]  # each of codes 0-2 in use
    z = (near + 0.1 * torch.rand(18, 2)).view(2, 3, 3, 2).permute(0, 3, 1, 2)  # (2, 2, 3, 3)
    far = q.codebook.detach()[3].clone()
    for step in range(3):
        moved = q.restart_idle(z, q.nearest(z), after=3, generator=g)
        assert moved == (1 if step == 2 else 0)  # idle for 3 steps: moved on the third
    code = q.codebook.detach()[3]
    assert not torch.equal(code, far)
    assert (z.permute(0, 2, 3, 1).reshape(-1, 2) == code).all(1).any()  # onto one of this batch's vectors
    assert q.idle[3] == 0 and (q.nearest(z) == 3).any()  # and now something is nearest to it
    # Codes in use are never moved, and after = 0 moves nothing.
    before = q.codebook.detach().clone()
    for _ in range(10):
        assert q.restart_idle(z, torch.zeros(2, 3, 3, dtype=torch.long), after=0, generator=g) == 0
    assert torch.equal(q.codebook.detach(), before)


def test_the_prior_reads_a_start_token_then_the_grid_in_raster_order():
    grids = torch.arange(2 * 49).view(2, 7, 7) % 5
    inputs, targets = prior_batch(grids, start=5)
    assert inputs.shape == targets.shape == (2, 49)
    assert (inputs[:, 0] == 5).all() and torch.equal(inputs[:, 1:], targets[:, :-1])
    assert torch.equal(targets[0, :7], grids[0, 0]) and torch.equal(targets[0, 7:14], grids[0, 1])  # row by row
    torch.manual_seed(0)
    prior = GPT(GPTArgs(vocab_size=6, context=49, width=16, layers=1, heads=2)).eval()
    with torch.no_grad():
        prior.head.weight[5] += 10.0  # the start token made the likeliest output: it must still never be drawn
    drawn = sample_codes(prior, 8, 5, torch.Generator().manual_seed(0))
    assert drawn.shape == (8, 7, 7) and drawn.max() < 5
    again = sample_codes(prior, 8, 5, torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again)
    cold = sample_codes(prior, 4, 5, torch.Generator().manual_seed(1), temperature=0.0)  # greedy
    assert (cold == cold[0]).all()


def test_usage_and_colours():
    idx = torch.tensor([[0, 0, 1, 1]])
    u = usage(idx, 4)
    assert u["codes_in_use"] == 0.5 and u["perplexity"] == pytest.approx(2.0)
    assert usage(torch.arange(8), 8)["perplexity"] == pytest.approx(8.0)
    colours = code_colours(64)
    assert colours.shape == (64, 3) and colours.dtype == np.uint8
    assert len({tuple(c) for c in colours}) == 64  # every code its own colour


def test_config_errors():
    with pytest.raises(ConfigError, match="ae_steps"):
        validate(VQVAEConfig, {"ae_steps": 3000, "steps": 3000})
    with pytest.raises(ConfigError, match="multiple of prior_heads"):
        validate(VQVAEConfig, {"prior_width": 30, "prior_heads": 4})


# -- the recipe --

def test_both_losses_fall_and_the_autoencoder_freezes_at_the_switch():
    r = recipe(batch_size=32, width=16, ae_steps=150, steps=300, restart_after=20)
    ae = [r.train_step()["train/loss_ae"].item() for _ in range(150)]
    assert np.mean(ae[-10:]) < 0.5 * np.mean(ae[:10])
    assert r.codes.shape == (256, 7, 7) and r.val_codes.shape == (2000, 7, 7)  # encoded once, at the last step
    assert torch.equal(r.codes.long(), r.model.encode(r.x_train))
    frozen = {k: v.clone() for k, v in r.model.state_dict().items()}
    prior = [r.train_step() for _ in range(150)]
    assert set(prior[0]) == {"train/loss_prior"}
    nll = [m["train/loss_prior"].item() for m in prior]
    assert nll[0] == pytest.approx(np.log(17), abs=0.3)  # an untrained prior: about uniform over K + 1 ids
    assert np.mean(nll[-10:]) < np.mean(nll[:10]) - 0.5
    assert all(torch.equal(v, r.model.state_dict()[k]) for k, v in frozen.items())


def test_views_and_scores(untrained_judge):
    r = recipe()
    r.train_step()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "prior_codes", "recon", "usage"}
    assert arts["samples"].data.shape == (8 * 30 + 2, 8 * 30 + 2)
    assert arts["prior_codes"].data.shape == (8 * 30 + 2, 8 * 30 + 2, 3)
    assert arts["recon"].data.shape == (4 * 30 + 2, 9 * 30 + 2, 3)  # 12 triples, three to a row
    bars = arts["usage"].data
    assert bars.shape == (12, 16 * 4, 3)  # 16 codes, 4 pixels each
    scores = r.evaluate()
    assert set(scores) == {"val/recon", "val/codes_in_use", "val/perplexity", "quality/recognisability",
                           "quality/coverage"}
    used = round(scores["val/codes_in_use"] * 16)
    stubs = sum(bool((bars[-1, 4 * i] == 90).all()) for i in range(16))
    assert stubs == 16 - used and f"{used} of 16," in arts["usage"].caption
    assert "untrained" in arts["samples"].caption
    # A code map paints each cell in its code's colour.
    grids = r.fixed_grids()[:1]
    painted = r.paint(grids)[0]
    assert torch.equal((painted[:, 5, 9] * 255).round().byte(), torch.from_numpy(code_colours(16)[grids[0, 1, 2]]))
    for _ in range(TINY["steps"] - 1):
        r.train_step()
    assert "val/loss_prior" in r.evaluate() and "temperature 1" in r.samples()[0].caption
    images = r.sample_images(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_faces_are_coded_in_colour():
    r = recipe(dataset="faces")
    assert r.x_train.shape[1:] == (3, 28, 28)
    assert torch.isfinite(r.train_step()["train/loss_ae"])
    assert not r.digits and "quality/recognisability" not in r.evaluate()


def test_live_settings():
    r = recipe()
    r.set_live("lr", 5e-4)
    r.set_live("prior_lr", 1e-4)
    r.set_live("temperature", 0.5)
    assert r.opt.param_groups[0]["lr"] == 5e-4 and r.cfg.prior_lr == 1e-4 and r.temperature == 0.5
    with pytest.raises(KeyError):
        r.set_live("codes", 8)


# -- through the runner --

def write_run(path, **params) -> RunDir:
    cfg = validate(VQVAEConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("vqvae", asdict(cfg), device="cpu", lesson="vqvae-digits")
    return rd


def test_registered():
    assert RECIPES["vqvae"] == (VQVAEConfig, "engine.recipes.vqvae")


def test_resume_is_exact_in_either_phase_and_across_the_switch(tmp_path, untrained_judge):
    whole = write_run(tmp_path / "whole")
    assert Runner(whole.path).run() == 0
    a = load_checkpoint(whole.checkpoint_path)["state"]
    hist = read_history(whole)
    assert hist.state == "finished" and hist.step == 12
    assert {"train/loss_ae", "train/recon", "train/codebook", "train/loss_prior", "val/recon", "val/codes_in_use",
            "val/perplexity", "val/loss_prior", "quality/recognisability", "quality/coverage"} <= set(hist.metrics)
    assert {"samples", "prior_codes", "recon", "usage", "model"} <= set(hist.samples)
    for at in (3, 6, 9):  # in the autoencoder's phase, at the switch, in the prior's
        half = write_run(tmp_path / f"stopped-at-{at}")
        stop_at(half, at)
        saved = load_checkpoint(half.checkpoint_path)["state"]
        assert saved["steps_done"] == at and (len(saved["codes"]) > 0) == (at >= 6)
        assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
        b = load_checkpoint(half.checkpoint_path)["state"]
        assert b["steps_done"] == 12
        for part in ("model", "prior"):
            assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), (at, part)
        assert torch.equal(a["codes"], b["codes"]) and torch.equal(a["val_codes"], b["val_codes"])


# -- the lesson's tabs, in the studio --

async def test_the_codes_and_prior_tabs_show_their_views():
    from test_studio import lesson_screen, start_tiny, wait_for

    from studio.app import GenStudioApp
    from studio.widgets.image_view import ImageView

    app = GenStudioApp(graphics="halfblock", lesson="vqvae-digits")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        assert [p.id for p in screen.query("TabPane")][:3] == ["tab-train", "tab-codes", "tab-prior"]
        # Faces: no digit classifier to fit first (a fresh test cache has none), so the views come at once.
        await start_tiny(pilot, screen, {**TINY, "ae_steps": 30, "steps": 1_000_000}, {"dataset": "faces"})
        await wait_for(pilot, lambda: screen.snapshot is not None and "recon" in screen.snapshot.samples
                       and "usage" in screen.snapshot.samples and "train/loss_ae" in screen.snapshot.series,
                       timeout=120, what="the codes and the first losses")
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-codes"
        await wait_for(pilot, lambda: screen.query_one("#recon", ImageView).path == screen.snapshot.samples["recon"]
                       and screen.query_one("#usage", ImageView).path == screen.snapshot.samples["usage"],
                       what="the Codes tab's images")
        await wait_for(pilot, lambda: "train/loss_prior" in screen.snapshot.series, timeout=120,
                       what="the prior's phase")
        await pilot.press("3")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-prior"
        await wait_for(pilot, lambda: screen.query_one("#prior-samples", ImageView).path
                       == screen.snapshot.samples["samples"]
                       and screen.query_one("#prior-codes", ImageView).path == screen.snapshot.samples["prior_codes"],
                       what="the Prior tab's images")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")
