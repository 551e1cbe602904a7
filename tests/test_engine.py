"""The runner and the VAE recipe on tiny CPU configs: learning, control, checkpoints,
exact resume, NaN handling, refusing unsafe checkpoints, and the run-directory format."""

from __future__ import annotations

import json
import os
import pickle
import threading
import time

import pytest
import torch

from conftest import TINY, make_run, wait_for_history
from engine.checkpoint import CheckpointError, load_checkpoint
from engine.configs.vae import VAEConfig
from engine.recipes.base import RunContext
from engine.recipes.vae import VAERecipe
from engine.rundir import FORMAT_VERSION, RunDir, read_history
from engine.runner import Runner


def test_vae_loss_falls_on_a_tiny_config():
    torch.manual_seed(0)
    cfg = VAEConfig(**{**TINY, "width": 16, "lr": 3e-3})
    recipe = VAERecipe(RunContext(device=torch.device("cpu"), log=lambda m: None), cfg)
    first = [recipe.train_step()["train/loss"].item() for _ in range(5)]
    for _ in range(150):
        recipe.train_step()
    last = [recipe.train_step()["train/loss"].item() for _ in range(5)]
    assert sum(last) / 5 < 0.7 * sum(first) / 5


def test_one_bad_step_cannot_overflow_the_vae():
    """The VAE lesson's "lr 1e-2 mid-run" once drove logvar so high that exp() overflowed:
    KL 222,778, then NaN, and the run failed. logvar is bounded far outside what training
    reaches, so the loss stays finite and the next steps can bring it back."""
    from engine.models.vae import VAE, VAEArgs, vae_loss

    model = VAE(VAEArgs(latent_dim=4, width=4))
    with torch.no_grad():
        model.encoder.logvar.bias.fill_(200.0)  # where a diverging step had pushed it
    x = torch.rand(2, 1, 28, 28)
    logits, mu, logvar = model(x)
    losses = vae_loss(logits, x, mu, logvar, beta=1.0)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    losses["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_samples_have_the_right_shape_and_range():
    cfg = VAEConfig(**TINY)
    recipe = VAERecipe(RunContext(device=torch.device("cpu"), log=lambda m: None), cfg)
    images = recipe.sample_images(10, torch.Generator().manual_seed(0))
    assert images.shape == (10, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1
    arts = {a.name: a for a in recipe.samples()}
    assert set(arts) == {"samples", "recon", "latent_map", "latent_walk"}
    assert arts["samples"].data.shape == (8 * 30 + 2, 8 * 30 + 2)  # 8x8 grid, 2px padding
    assert len(arts["latent_map"].data["x"]) == len(arts["latent_map"].data["label"])


def test_run_directory_format(tmp_path, monkeypatch):
    import engine.runner

    # Metrics are rate-limited by time; an interval longer than the run makes the count
    # independent of how busy the machine is (a loaded CI machine took over 0.1 s a step).
    monkeypatch.setattr(engine.runner, "METRICS_INTERVAL", 3600.0)
    rd = make_run(tmp_path / "run", steps=30)
    assert Runner(rd.path).run() == 0
    cfg = json.loads(rd.config_path.read_text())
    assert cfg["format"] == FORMAT_VERSION and cfg["recipe"] == "vae" and cfg["params"]["steps"] == 30
    lines = rd.events_path.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert all(set(e) == {"type", "step", "time", "payload"} for e in events)
    states = [e["payload"]["state"] for e in events if e["type"] == "state"]
    assert states[0] == "starting" and states[-1] == "finished"
    hist = read_history(rd)
    assert hist.step == 30
    assert {"train/loss", "train/recon", "train/kl", "val/loss", "quality/recognisability"} <= set(hist.metrics)
    for name, rel in hist.samples.items():
        assert (rd.path / rel).exists(), name
    assert rd.checkpoint_path.exists()
    assert not rd.pid_path.exists()  # removed when the engine exits
    # Metrics are rate-limited: far fewer metric events than steps would be per-step logging.
    assert sum(e["type"] == "metric" for e in events) <= 10


def test_checkpoint_round_trip(tmp_path):
    rd = make_run(tmp_path / "run", steps=12)
    Runner(rd.path).run()
    ck = load_checkpoint(rd.checkpoint_path)
    assert ck["step"] == 12 and ck["recipe"] == "vae"
    cfg = VAEConfig(**{**TINY, "steps": 12})
    recipe = VAERecipe(RunContext(device=torch.device("cpu"), need_data=False), cfg)
    recipe.load_state_dict(ck["state"])
    for k, v in recipe.model.state_dict().items():
        assert torch.equal(v, ck["state"]["model"][k])


def _final_weights(rd: RunDir) -> dict:
    return load_checkpoint(rd.checkpoint_path)["state"]["model"]


def test_resume_continues_exactly(tmp_path):
    straight = make_run(tmp_path / "straight", steps=30)
    assert Runner(straight.path).run() == 0

    split = make_run(tmp_path / "split", steps=15)
    assert Runner(split.path).run() == 0
    cfg = json.loads(split.config_path.read_text())
    cfg["params"]["steps"] = 30
    split.config_path.write_text(json.dumps(cfg))
    assert Runner(split.path).run() == 0

    a, b = _final_weights(straight), _final_weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"
    hist = read_history(split)
    assert hist.step == 30
    steps = [s for s, _ in hist.metrics["train/loss"]]
    assert steps == sorted(steps) and steps[-1] == 30
    resumed = [e for e in split.events() if e.type == "state" and "resumed_from" in e.payload]
    assert resumed and resumed[0].payload["resumed_from"] == 15


def test_history_drops_metrics_after_the_checkpoint_on_resume(tmp_path):
    rd = make_run(tmp_path / "run")
    rd.emit("metric", 10, {"train/loss": 5.0})
    rd.emit("metric", 20, {"train/loss": 4.0})  # logged, then the process was killed
    rd.emit("state", 10, {"state": "running", "resumed_from": 10})
    rd.emit("metric", 11, {"train/loss": 4.9})
    hist = read_history(rd)
    assert hist.metrics["train/loss"] == [(10, 5.0), (11, 4.9)]


def test_nan_loss_stops_the_run_with_an_event(tmp_path, monkeypatch):
    rd = make_run(tmp_path / "run", steps=200)
    monkeypatch.setenv("GENSTUDIO_FAULT_NAN_AT", "5")
    assert Runner(rd.path).run() == 1
    hist = read_history(rd)
    assert hist.state == "failed"
    assert hist.errors and hist.errors[-1]["kind"] == "nan"
    assert "learning rate" in hist.errors[-1]["hint"]
    assert not rd.checkpoint_path.exists()  # a NaN model is never saved


def test_live_learning_rate_change_and_bad_values(tmp_path):
    rd = make_run(tmp_path / "run", steps=20)
    rd.send("set", key="lr", value=0.0005)
    rd.send("set", key="lr", value=5.0)  # out of range: refused, logged
    rd.send("set", key="beta", value=2.0)  # not live: refused, logged
    assert Runner(rd.path).run() == 0
    hist = read_history(rd)
    assert hist.params == {"lr": 0.0005}
    assert any("refused" in m for m in hist.logs)
    assert any("beta cannot change" in m for m in hist.logs)
    assert load_checkpoint(rd.checkpoint_path)["params"]["lr"] == 0.0005


def test_pause_step_and_stop_commands(tmp_path):
    rd = make_run(tmp_path / "run", steps=100_000)
    seen: list[str] = []

    def wait_for(pred):
        return wait_for_history(rd, pred, timeout=60.0)

    def drive():
        try:
            wait_for(lambda h: h.state == "running")
            rd.send("pause")
            h = wait_for(lambda h: h.state == "paused")
            paused_at = h.step
            time.sleep(0.3)
            assert read_history(rd).step == paused_at, "steps ran while paused"
            rd.send("step")
            wait_for(lambda h: h.step == paused_at + 1)
            rd.send("step")
            wait_for(lambda h: h.step == paused_at + 2)
            time.sleep(0.2)
            assert read_history(rd).step == paused_at + 2
            rd.send("resume")
            wait_for(lambda h: h.step > paused_at + 5)
            seen.append("ok")
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path).run() == 0
    thread.join()
    assert seen == ["ok"]
    hist = read_history(rd)
    assert hist.state == "stopped"
    assert load_checkpoint(rd.checkpoint_path)["step"] == hist.step


def test_a_new_process_does_not_replay_earlier_commands(tmp_path):
    rd = make_run(tmp_path / "run", steps=5)
    rd.send("stop")  # meant for an earlier process of this run
    offset = rd.commands_path.stat().st_size
    assert Runner(rd.path, commands_from=offset).run() == 0
    assert read_history(rd).state == "finished"


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/genstudio-pwned",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "state": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused.*posix.system"):
        load_checkpoint(path)
    raw = tmp_path / "raw.pt"  # a bare pickle, not even a torch file
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(CheckpointError, match="not loaded"):
        load_checkpoint(raw)
    assert not os.path.exists("/tmp/genstudio-pwned")


def test_runner_refuses_an_unsafe_checkpoint_and_keeps_it(tmp_path):
    rd = make_run(tmp_path / "run")
    rd.checkpoint_path.parent.mkdir(parents=True)
    torch.save({"format": 1, "state": _Exploit()}, rd.checkpoint_path)
    before = rd.checkpoint_path.read_bytes()
    assert Runner(rd.path).run() == 1
    hist = read_history(rd)
    assert hist.errors[-1]["kind"] == "checkpoint" and "refused" in hist.errors[-1]["message"]
    assert rd.checkpoint_path.read_bytes() == before


def test_a_checkpoint_from_an_older_model_is_a_clear_error(tmp_path):
    """A lesson's network changed shape since the run was saved (a layer whose weights now
    have another size): resuming says so, not a traceback."""
    rd = make_run(tmp_path / "run", steps=3)
    assert Runner(rd.path).run() == 0
    ck = torch.load(rd.checkpoint_path, weights_only=False)
    name = next(k for k, v in ck["state"]["model"].items() if v.dim() == 4)
    ck["state"]["model"][name] = torch.zeros(1, 1, 1, 1)  # as an older layer's weights would be
    torch.save(ck, rd.checkpoint_path)
    before = rd.checkpoint_path.read_bytes()
    cfg = rd.read_config()
    cfg["params"]["steps"] = 6
    rd.write_config(cfg["recipe"], cfg["params"], device="cpu")
    assert Runner(rd.path).run() == 1
    error = read_history(rd).errors[-1]
    assert error["kind"] == "checkpoint" and "earlier version" in error["message"], error
    assert rd.checkpoint_path.read_bytes() == before


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)
    pickle_path = tmp_path / "plain.pt"
    torch.save({"hello": 1}, pickle_path)
    with pytest.raises(CheckpointError, match="not a GenStudio checkpoint"):
        load_checkpoint(pickle_path)


def test_bad_hyperparameter_in_config_fails_with_an_event(tmp_path):
    rd = make_run(tmp_path / "run")
    cfg = json.loads(rd.config_path.read_text())
    cfg["params"]["beta"] = -3
    rd.config_path.write_text(json.dumps(cfg))
    assert Runner(rd.path).run() == 1
    err = read_history(rd).errors[-1]
    assert err["kind"] == "config" and "beta" in err["message"]


def test_missing_data_path_fails_with_an_event(tmp_path):
    rd = make_run(tmp_path / "run", dataset="mnist", data_path=str(tmp_path / "nowhere"))
    assert Runner(rd.path).run() == 1
    err = read_history(rd).errors[-1]
    assert err["kind"] == "data" and "mnist" in err["message"].lower()


def test_a_folder_of_images_trains_without_digit_scores(tmp_path):
    from PIL import Image

    from engine.data.digits import make_digits

    images, _ = make_digits(40, seed=3)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img.numpy()).resize((56, 56)).save(folder / f"{i:03d}.png")
    rd = make_run(tmp_path / "run", steps=10, dataset="folder", data_path=str(folder))
    assert Runner(rd.path).run() == 0
    hist = read_history(rd)
    assert hist.state == "finished" and "val/loss" in hist.metrics
    assert not any(k.startswith("quality/") for k in hist.metrics)  # digits-only scores are not faked


def test_a_second_report_at_the_same_step_keeps_the_speed(tmp_path):
    """Under DDP the metrics summed at an exchange can be reported by the periodic flush and
    again by the final one at the same step: the second status said 0 samples/s (the last
    status of a two-process run, seen in CI). A report with no new steps keeps the rate."""
    from types import SimpleNamespace

    r = Runner(make_run(tmp_path / "run").path)
    r.recipe, r.batch_size, r.device = SimpleNamespace(train_size=100, unit="images"), 4, torch.device("cpu")
    r._window = (time.monotonic() - 1.0, 0)
    for _ in range(2):
        r.step = 10
        r._acc, r._acc_n = {"train/loss": torch.tensor(1.0)}, 1
        r._flush_metrics()
    rates = [e.payload["samples_per_s"] for e in r.rd.events() if e.type == "status"]
    assert len(rates) == 2 and rates[0] > 0 and rates[1] == rates[0], rates
