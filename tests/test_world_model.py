"""The world-model lesson on tiny CPU configs: the game is deterministic by seed and keeps
its rules, the MDN's likelihood matches a hand computation, temperature widens M's draws,
the evolution strategy improves a toy objective, V's and M's losses fall, the dream plays
a controller, the three phases and the switches between them, exact resume in each phase,
the views, and the lesson's tabs in the studio."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.configs.world_model import WorldModelConfig
from engine.data.dodge import MAX_STEPS, PADDLE_W, SIZE, Dodge, collect
from engine.models.world_model import (ES, MDNOut, MDNRNN, MDNRNNArgs, act, controller_size, dream, mdn_nll,
                                       sample_next, world_loss)
from engine.recipes.base import RunContext
from engine.recipes.world_model import WorldModelRecipe, random_return
from engine.registry import RECIPES
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import ConfigError, validate

from conftest import stop_at

TINY = {"episodes": 24, "z_dim": 4, "width": 4, "hidden": 8, "mixtures": 2, "vae_steps": 6, "rnn_steps": 6,
        "steps": 16, "batch_size": 16, "rnn_batch": 4, "seq_len": 8, "popsize": 4, "dreams": 2, "max_steps": 30}

pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def recipe(**over) -> WorldModelRecipe:
    torch.manual_seed(0)
    return WorldModelRecipe(RunContext(device=torch.device("cpu")), validate(WorldModelConfig, {**TINY, **over}))


# -- the game --

def test_the_game_is_deterministic_by_seed():
    def play(seed):
        env, rng, frames = Dodge(5, seed), np.random.default_rng(7), []
        while not env.done.all():
            frames.append(env.frames())
            env.step(rng.integers(0, 3, 5))
        return np.stack(frames), env.steps_alive.copy()

    a, b, c = play(3), play(3), play(4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape[1:] == (5, SIZE, SIZE) and a[0].dtype == np.uint8
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])
    one, two = collect(6, 11), collect(6, 11)
    assert all(np.array_equal(one[k], two[k]) for k in one)


def test_the_rules():
    env = Dodge(4, 0, max_steps=MAX_STEPS)
    frame = env.frames()[0]
    assert (frame[-3:-1] == 255).sum() == 2 * PADDLE_W  # the paddle, on the bottom rows
    total = np.zeros(4)
    while not env.done.all():
        was_done = env.done.copy()
        reward, done = env.step(np.ones(4, dtype=int))  # never move
        assert (reward[was_done] == 0).all()  # an episode that is over earns nothing more
        assert (reward[env.crashed] == 0).all()  # nor does the step that hits
        total += reward
    assert np.array_equal(total, env.steps_alive)
    # Standing still is a poor policy: half of the rocks are aimed at the paddle.
    assert env.steps_alive.mean() < 30
    # A paddle cannot leave the screen.
    env = Dodge(3, 1)
    for _ in range(10):
        env.step(np.full(3, 2))
    assert ((env.paddle == SIZE - PADDLE_W) | env.done).all() and (env.paddle <= SIZE - PADDLE_W).all()
    # The random baseline is a fixed number for a seed.
    assert random_return(20, 5, 50).mean() == random_return(20, 5, 50).mean()


# -- M --

def test_the_mdn_likelihood_of_one_gaussian_is_the_hand_computed_one():
    # One component, mean 1, sigma 2, at z = 3: -log N(3; 1, 2) = log 2 + log sqrt(2 pi) + (3 - 1)^2 / (2 * 4).
    pred = MDNOut(torch.zeros(1, 1, 1), torch.ones(1, 1, 1), torch.full((1, 1, 1), math.log(2.0)), torch.zeros(1))
    by_hand = math.log(2.0) + 0.5 * math.log(2 * math.pi) + 4 / 8
    assert mdn_nll(pred, torch.tensor([[3.0]])).item() == pytest.approx(by_hand, rel=1e-6)
    # Two equal components at -1 and 1 (sigma 1), at z = 0: both densities are N(1), so the
    # mixture's is N(1) too; and over two dimensions the NLLs add.
    log_pi = torch.log(torch.full((1, 2, 2), 0.5))
    mu = torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]])
    pred = MDNOut(log_pi, mu, torch.zeros(1, 2, 2), torch.zeros(1))
    one = 0.5 * math.log(2 * math.pi) + 0.5
    assert mdn_nll(pred, torch.zeros(1, 2)).item() == pytest.approx(2 * one, rel=1e-6)


def test_shapes_and_world_loss():
    torch.manual_seed(0)
    m = MDNRNN(MDNRNNArgs(z_dim=3, hidden=8, mixtures=4))
    z, move = torch.randn(2, 5, 3), torch.randint(-1, 2, (2, 5)).float()
    pred, state, h = m(z, move)
    assert pred.log_pi.shape == pred.mu.shape == pred.log_sigma.shape == (2, 5, 4, 3)
    assert pred.done_logit.shape == (2, 5) and h.shape == (2, 5, 8)
    assert torch.allclose(pred.log_pi.exp().sum(-2), torch.ones(2, 5, 3))  # the weights sum to one
    # Step by step with the state gives what the whole sequence gives.
    out, s = [], None
    for t in range(5):
        p, s, _ = m(z[:, t:t + 1], move[:, t:t + 1], s)
        out.append(p.mu)
    assert torch.allclose(torch.cat(out, 1), pred.mu, atol=1e-6)
    mask = torch.tensor([[1.0] * 5, [1.0] * 2 + [0.0] * 3])
    losses = world_loss(pred, torch.randn(2, 5, 3), torch.zeros(2, 5), mask)
    assert set(losses) == {"loss", "nll", "done"} and torch.isfinite(losses["loss"])
    assert losses["loss"].item() == pytest.approx(losses["nll"].item() + losses["done"].item(), rel=1e-5)
    # Masked steps do not count, whatever they hold.
    again = world_loss(pred, torch.cat([torch.randn(2, 5, 3)[:1], torch.randn(1, 5, 3)]), torch.zeros(2, 5), mask)
    assert torch.isfinite(again["loss"])


def test_temperature_widens_the_draws():
    pred = MDNOut(torch.log(torch.tensor([[[0.9], [0.1]]])).expand(1000, 2, 1),
                  torch.tensor([[[0.0], [10.0]]]).expand(1000, 2, 1),
                  torch.full((1000, 2, 1), math.log(0.5)), torch.zeros(1000))
    cold = sample_next(pred, 0.3, torch.Generator().manual_seed(0))
    warm = sample_next(pred, 2.0, torch.Generator().manual_seed(0))
    assert cold.shape == (1000, 1)
    assert (cold > 5).float().mean() < 0.01 < 0.1 < (warm > 5).float().mean()  # the rare mode comes up more
    near = warm[warm < 5]
    assert near.std() == pytest.approx(0.5 * math.sqrt(2.0), rel=0.15)  # sigma * sqrt(tau)
    assert torch.equal(sample_next(pred, 1.0, torch.Generator().manual_seed(3)),
                       sample_next(pred, 1.0, torch.Generator().manual_seed(3)))


# -- C and the evolution strategy --

def test_the_controller_reads_tanh_in_three_bands():
    theta = torch.zeros(3, controller_size(2, 1))
    theta[:, -1] = torch.tensor([-2.0, 0.0, 2.0])  # biases: tanh = -0.96, 0, 0.96
    assert act(theta, torch.zeros(3, 2), torch.zeros(3, 1)).tolist() == [0, 1, 2]
    theta = torch.zeros(1, 4)
    theta[0, 0] = 1.0  # follows the first input
    assert act(theta.expand(2, -1), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), torch.zeros(2, 1)).tolist() == [0, 2]


def test_the_evolution_strategy_improves_a_toy_objective():
    target = torch.linspace(-2, 2, 10)
    es = ES(10, 16, 0.5, torch.Generator().manual_seed(0))
    start = -(es.mean - target).square().sum().item()
    for _ in range(150):
        x = es.ask()
        assert x.shape == (16, 10)
        es.tell(-(x - target).square().sum(1))  # higher is better: closer to the target
    end = -(es.mean - target).square().sum().item()
    assert end > 0.01 * start  # (both negative) from -13.9 to near zero
    assert es.sigma < 0.5  # and the steps shrank as it closed in
    saved = es.state_dict()
    es.load_state_dict({k: v * 0 for k, v in saved.items()})
    es.load_state_dict(saved)
    assert torch.equal(es.mean, saved["mean"])


def test_a_dream_plays_the_controller():
    torch.manual_seed(0)
    m = MDNRNN(MDNRNNArgs(z_dim=3, hidden=8, mixtures=2)).eval()
    theta = torch.randn(6, controller_size(3, 8))
    out = dream(m, theta, torch.randn(6, 3), 12, 1.0, torch.Generator().manual_seed(0), record=True)
    assert out["return"].shape == (6,) and (out["return"] >= 0).all() and (out["return"] <= 12).all()
    assert out["z"].shape == (6, 13, 3) and out["actions"].shape == (6, 12)
    with torch.no_grad():
        m.head.bias[-1] = 50.0  # M is sure every step ends the episode: no step is survived
        assert dream(m, theta, torch.randn(6, 3), 12, 1.0, torch.Generator())["return"].sum() == 0
        m.head.bias[-1] = -50.0  # ... sure none does: every dream lasts to the end
        assert (dream(m, theta, torch.randn(6, 3), 12, 1.0, torch.Generator())["return"] == 12).all()


def test_config_errors():
    with pytest.raises(ConfigError, match="rnn_steps"):
        validate(WorldModelConfig, {"vae_steps": 100, "rnn_steps": 100, "steps": 150})
    with pytest.raises(ConfigError, match="even"):
        validate(WorldModelConfig, {"popsize": 7})


# -- the recipe --

def test_the_losses_fall_and_the_phases_follow_each_other():
    r = recipe(width=8, z_dim=4, hidden=16, episodes=48, vae_steps=80, rnn_steps=80, steps=170, batch_size=32,
               rnn_batch=16)
    assert r.phase == "V"
    v = [r.train_step()["train/loss_v"].item() for _ in range(80)]
    assert np.mean(v[-10:]) < 0.5 * np.mean(v[:10])
    assert r.phase == "M" and r.z_mu is None
    frozen = {k: t.clone() for k, t in r.vae.state_dict().items()}
    m = [r.train_step() for _ in range(80)]
    assert r.z_mu.shape == (48, 31, 4)
    assert torch.allclose(r.z_mu[0, 0], r.vae.encoder(r.x_train[:1])[0][0], atol=1e-5)
    nll = [x["train/loss_m"].item() for x in m]
    assert np.mean(nll[-10:]) < np.mean(nll[:10]) - 1.0
    assert r.phase == "C"
    scores = r.evaluate()
    assert set(scores) == {"quality/dream_return", "quality/real_return", "quality/random_return",
                           "quality/return_ratio"}
    assert scores["quality/return_ratio"] == pytest.approx(scores["quality/real_return"] / r.baseline.mean())
    mean = r.es.mean.clone()
    c = [r.train_step() for _ in range(10)]
    assert set(c[0]) == {"train/dream_return", "train/sigma"} and not torch.equal(r.es.mean, mean)
    assert all(torch.equal(t, r.vae.state_dict()[k]) for k, t in frozen.items())


def test_views():
    r = recipe()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"frames", "rollout"}
    assert arts["frames"].data.shape == (2 * 30 + 2, 8 * 30 + 2)  # 8 pairs, four to a row
    assert "untrained" in arts["frames"].caption and "M untrained" in arts["rollout"].caption
    rows = arts["rollout"].data.shape[0] // 30
    assert arts["rollout"].data.shape[1] == 8 * 30 + 2 and 1 <= rows <= 4
    assert set(r.evaluate()) == {"val/recon"}
    for _ in range(TINY["steps"] - 1):
        r.train_step()
    assert "M trained" in {a.name: a for a in r.samples()}["rollout"].caption
    assert "quality/real_return" in r.evaluate()
    dreamed = r.sample_images(5, torch.Generator().manual_seed(0))  # `genstudio sample`: one dream, frame by frame
    assert dreamed.shape == (5, 1, 28, 28) and dreamed.min() >= 0 and dreamed.max() <= 1


def test_live_settings():
    r = recipe()
    r.set_live("lr", 5e-4)
    r.set_live("rnn_lr", 1e-4)
    r.set_live("temperature", 1.5)
    assert r.opt.param_groups[0]["lr"] == 5e-4 and r.rnn_opt.param_groups[0]["lr"] == 1e-4 and r.temperature == 1.5
    with pytest.raises(KeyError):
        r.set_live("z_dim", 3)


# -- through the runner --

def write_run(path, **params) -> RunDir:
    cfg = validate(WorldModelConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("world_model", asdict(cfg), device="cpu", lesson="world-model-dodge")
    return rd


def test_registered():
    assert RECIPES["world_model"] == (WorldModelConfig, "engine.recipes.world_model")


def test_resume_is_exact_in_every_phase_and_across_the_switches(tmp_path):
    whole = write_run(tmp_path / "whole")
    assert Runner(whole.path).run() == 0
    a = load_checkpoint(whole.checkpoint_path)["state"]
    hist = read_history(whole)
    assert hist.state == "finished" and hist.step == 16
    assert {"train/loss_v", "train/recon", "train/kl", "train/loss_m", "train/nll", "train/done",
            "train/dream_return", "train/sigma", "quality/real_return", "quality/return_ratio"} <= set(hist.metrics)
    assert {"frames", "rollout", "model"} <= set(hist.samples)
    for at in (3, 6, 9, 12, 14):  # in V's phase, at V's end, in M's, at M's end, in C's
        half = write_run(tmp_path / f"stopped-at-{at}")
        stop_at(half, at)
        saved = load_checkpoint(half.checkpoint_path)["state"]
        assert saved["steps_done"] == at and (len(saved["z_mu"]) > 0) == (at > 6)
        assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
        b = load_checkpoint(half.checkpoint_path)["state"]
        assert b["steps_done"] == 16
        for part in ("vae", "rnn", "es"):
            assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), (at, part)
        assert torch.equal(a["z_mu"], b["z_mu"])


# -- the lesson's tabs, in the studio --

async def test_the_train_and_dream_tabs_show_their_views():
    from test_studio import lesson_screen, start_tiny, wait_for

    from studio.app import GenStudioApp
    from studio.widgets.image_view import ImageView

    app = GenStudioApp(graphics="halfblock", lesson="world-model-dodge")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        assert [p.id for p in screen.query("TabPane")][:2] == ["tab-train", "tab-dream"]
        await start_tiny(pilot, screen, {**TINY, "vae_steps": 20, "rnn_steps": 20, "steps": 1_000_000})
        await wait_for(pilot, lambda: screen.snapshot is not None and "rollout" in screen.snapshot.samples
                       and "train/loss_v" in screen.snapshot.series, timeout=120, what="the views and V's loss")
        await wait_for(pilot, lambda: screen.query_one("#wm-frames", ImageView).path
                       == screen.snapshot.samples["frames"], what="the Train tab's frames")
        await wait_for(pilot, lambda: "quality/return_ratio" in screen.snapshot.series, timeout=120,
                       what="the controller's phase")
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-dream"
        await wait_for(pilot, lambda: screen.query_one("#wm-rollout", ImageView).path
                       == screen.snapshot.samples["rollout"]
                       and screen.query_one("#wm-recon", ImageView).path == screen.snapshot.samples["frames"],
                       what="the Dream tab's images")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


def test_a_finished_run_serves_its_views_and_answers_a_bad_request_with_an_error(tmp_path):
    """In serve mode (as the studio keeps it after training) a request the lesson does not
    have gets an error reply, and "sample" draws the views again from the trained model."""
    import json
    import threading
    import time

    rd = write_run(tmp_path / "serve")

    def answers(name):
        return [e.payload for e in rd.events() if e.type == "sample" and e.payload["name"] == name]

    def drive():
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            before = len(answers("rollout"))
            rd.send("interact", name="dream", reply="rollout", request=1)
            rd.send("sample")
            while (not answers("rollout.error") or len(answers("rollout")) <= before) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    error = json.loads((rd.path / answers("rollout.error")[-1]["path"]).read_text())["error"]
    assert "dream" in error
    assert len(answers("rollout")) >= 2  # the run's last views, then the ones asked for


def test_every_metric_group_gets_a_chart_of_its_own(tmp_path):
    """Seven groups of metrics: the curves widget held six, so the returns and their ratio
    shared one chart titled "more" (a walkthrough at 80x24)."""
    from studio.bridge import downsample
    from studio.widgets.curves import MAX_PANELS, group_series

    rd = write_run(tmp_path / "charts")
    assert Runner(rd.path).run() == 0
    series = {name: downsample(points) for name, points in read_history(rd).metrics.items()}
    panels = group_series(list(series), series)
    assert len(panels) <= MAX_PANELS and all(title != "more" for title, _ in panels), panels
    assert any(names == ["quality/return_ratio"] for _, names in panels)  # the bar's figure on its own axis
