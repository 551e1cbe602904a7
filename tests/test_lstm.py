"""The LSTM lesson's engine and views: the cell's equations against nn.LSTM, the carried state,
the strips read chunk by chunk, learning (characters and words), exact resume with the
carried state, the hidden-state artifact and the tracked-unit finder, requests through the
runner with error replies, and the Hidden state and Sample tabs driven by a Pilot."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.configs.lstm import LSTMConfig
from engine.device import one_thread
from engine.metrics.text_units import text_features, tracked_unit
from engine.models.lstm import LSTMArgs, LSTMLanguageModel
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.runner import Runner
from engine.rundir import RunDir, read_history
from engine.schema import ConfigError, validate
from studio.app import GenStudioApp
from studio.widgets.hidden_state import MARK, HiddenStateView
from studio.widgets.sampler import SamplerPanel
from conftest import stop_part_way
from test_studio import lesson_screen, start_tiny, wait_for

TINY = {"embed": 16, "hidden": 32, "layers": 2, "batch_size": 8, "bptt": 16, "steps": 40, "lr": 1e-2, "warmup": 5,
        "max_new_tokens": 30}
CPU = RunContext(device=torch.device("cpu"))
TEXT = 'the cat sat on the mat. "the dog" sat on the log.\n    x = f(y)\n' * 120


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """As the runner sets it for this recipe: tiny steps gain nothing from a second thread,
    and lose much when other programs share the cores."""
    with one_thread():
        yield


def tiny_model(**kw) -> LSTMLanguageModel:
    torch.manual_seed(0)
    return LSTMLanguageModel(LSTMArgs(**{"vocab_size": 20, "embed": 8, "hidden": 12, "layers": 2, **kw})).eval()


def corpus(tmp_path: Path, text: str = TEXT) -> str:
    path = tmp_path / "c.txt"
    path.write_text(text)
    return str(path)


def write_run(path: Path, **params) -> RunDir:
    cfg = validate(LSTMConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("lstm", asdict(cfg), device="cpu", lesson="lstm-text")
    return rd


# -- the model --
def test_shapes_and_the_written_out_cell_computes_what_nn_lstm_does():
    model = tiny_model()
    x = torch.randint(0, 20, (3, 9))
    with torch.no_grad():
        logits, loss, (h, c) = model(x, None, x)
        outs, _ = model.layer_outputs(x)
        read = model.read(x[1])
    assert logits.shape == (3, 9, 20) and loss.ndim == 0
    assert h.shape == c.shape == (2, 3, 12)
    assert [o.shape for o in outs] == [(3, 9, 12), (3, 9, 12)]
    for layer in range(2):  # lstm_cell, one token at a time, matches the fused kernel
        assert torch.allclose(read["h"][layer], outs[layer][1], atol=1e-5)
    assert torch.allclose(read["c"][1][-1], c[1, 1], atol=1e-5)
    assert torch.allclose(outs[1][:, -1], h[1], atol=1e-6)  # the state is the last h


def test_reading_in_chunks_with_the_state_carried_equals_reading_at_once():
    model = tiny_model()
    x = torch.randint(0, 20, (2, 20))
    with torch.no_grad():
        whole, _, end = model(x)
        a, _, state = model(x[:, :7])
        b, _, end2 = model(x[:, 7:], state)
        cold, _, _ = model(x[:, 7:])
    assert torch.allclose(torch.cat([a, b], 1), whole, atol=1e-5)
    assert torch.allclose(end2[0], end[0], atol=1e-5) and torch.allclose(end2[1], end[1], atol=1e-5)
    assert not torch.allclose(cold, b, atol=1e-3)  # without the state it forgets the first part


def test_forget_gates_start_open():
    model = tiny_model()
    n = 12
    bias = model.layers[0].bias_ih_l0 + model.layers[0].bias_hh_l0
    assert torch.all(bias[n:2 * n] == 1.0)


# -- the strips, chunk by chunk --
def test_each_strip_is_read_on_where_the_last_chunk_ended(tmp_path):
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefghijklmnopqrst \n"), 6000))  # no chunk repeats
    r = build_recipe("lstm", {**TINY, "corpus": "file", "corpus_path": corpus(tmp_path, text)}, CPU)
    x0, y0, first0 = r._batch()
    r.steps_done = 1
    x1, _, first1 = r._batch()
    assert first0 and not first1
    assert x0.shape == (8, 16) and torch.equal(y0[:, :-1], x0[:, 1:])
    ids = r.train_ids.tolist()
    for row0, row1 in zip(x0.tolist(), x1.tolist()):
        start = next(i for i in range(len(ids)) if ids[i:i + 16] == row0)
        assert ids[start + 16:start + 32] == row1  # contiguous: the carried state belongs to it
    r.steps_done = r.chunks  # the next pass: a new first chunk, shifted strips
    assert r._batch()[2]


def test_config_errors():
    with pytest.raises(ConfigError, match="corpus_path"):
        validate(LSTMConfig, {"corpus": "file"})
    with pytest.raises(ConfigError, match="out of range"):
        validate(LSTMConfig, {"bptt": 1})


# -- learning --
@pytest.mark.parametrize("tokenizer", ["char", "word"])
def test_loss_falls(tmp_path, tokenizer):
    torch.manual_seed(0)
    r = build_recipe("lstm", {**TINY, "corpus": "file", "corpus_path": corpus(tmp_path), "tokenizer": tokenizer,
                              "steps": 80}, CPU)
    before = r.evaluate()
    for _ in range(80):
        metrics = r.train_step()
    after = r.evaluate()
    assert after["val/loss"] < 0.5 * before["val/loss"], (before, after)
    assert after["val/bpc"] == pytest.approx(after["val/loss"] / np.log(2) / r.chars_per_token["val"])
    assert set(metrics) == {"train/loss", "train/bpc", "train/grad_norm"}
    assert all(v.grad_fn is None for v in metrics.values())
    if tokenizer == "word":
        assert len(r.tok.vocab) < 30 and r.chars_per_token["val"] > 1.5


def test_the_cold_start_ablation_reads_every_chunk_from_zeros(tmp_path):
    r = build_recipe("lstm", {**TINY, "corpus": "file", "corpus_path": corpus(tmp_path), "carry_state": False}, CPU)
    r.train_step()
    r.train_step()
    x, y, _ = r._batch()
    torch.manual_seed(1)
    with torch.no_grad():
        expect = r.model(x, None, y)[1]
    loss = r.train_step()["train/loss"]
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)


# -- the hidden state --
def test_the_finder_names_the_unit_that_tracks_a_feature():
    pieces = list('say "hello there" and\n    then "more" (x)\n' * 20)
    f = text_features(pieces)
    assert f["quotes"][4] == 1 and f["quotes"][16] == 0 and f["quotes"][3] == 0  # after the quotes
    assert f["indent"][list(pieces).index("t", 22)] == 4 and f["column"][0] == 1
    rng = np.random.default_rng(0)
    acts = np.tanh(rng.normal(0, 0.5, (len(pieces), 10)))
    acts[:, 3] = 0.9 * (1 - 2 * f["quotes"]) + rng.normal(0, 0.1, len(pieces))  # low inside quotes
    found = tracked_unit(acts, pieces)
    assert found["found"] and found["unit"] == 3 and found["feature"] == "quotes" and found["r"] < -0.9
    assert found["best"]["quotes"][0] == 3
    noise = tracked_unit(rng.normal(0, 1, (len(pieces), 10)), pieces)
    assert not noise["found"] and abs(noise["r"]) < 0.5


def test_the_hidden_state_artifact(tmp_path):
    r = build_recipe("lstm", {**TINY, "corpus": "file", "corpus_path": corpus(tmp_path)}, CPU)
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"sample", "hidden"}
    hidden = arts["hidden"].data
    T = len(hidden["tokens"])
    assert 0 < T <= 160 and "".join(hidden["tokens"]) in TEXT
    assert len(hidden["layers"]) == 2 and all(len(units) == 32 for units in hidden["layers"])
    assert all(len(u) == T and all(-1 <= v <= 1 for v in u) for units in hidden["layers"] for u in units)
    assert len(hidden["tracked"]) == 2 and all(0 <= t["unit"] < 32 for t in hidden["tracked"])
    # The view's reading and the model's own forward pass agree.
    ids = torch.tensor(r.tok.encode("".join(hidden["tokens"])))
    outs, _ = r.model.layer_outputs(ids[None])
    assert np.allclose(np.array(hidden["layers"][1]).T, outs[1][0].detach().numpy(), atol=0.01)


# -- through the runner --
def test_runner_trains_and_resumes_exactly_with_the_carried_state(tmp_path):
    """Stopped part-way and continued: the same weights, the same carried state and the
    same position in the strips as a run never stopped."""
    path = corpus(tmp_path)
    whole = write_run(tmp_path / "whole", steps=80, corpus="file", corpus_path=path)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=80, corpus="file", corpus_path=path)
    stopped_at = stop_part_way(half, after=3)
    assert 3 <= stopped_at < 80
    stopped = load_checkpoint(half.checkpoint_path)["state"]
    assert stopped["carried"][0].abs().sum() > 0  # a state was being carried when it stopped
    assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
    a = load_checkpoint(whole.checkpoint_path)["state"]
    b = load_checkpoint(half.checkpoint_path)["state"]
    assert b["steps_done"] == 80
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), f"stopped at {stopped_at}"
    assert all(torch.equal(x, y) for x, y in zip(a["carried"], b["carried"]))
    hist = read_history(half)
    assert {"train/loss", "train/bpc", "val/loss", "val/bpc"} <= set(hist.metrics)
    assert hist.status["unit"] == "tokens"


def test_generate_and_read_through_the_runner_with_error_replies(tmp_path):
    rd = write_run(tmp_path / "run", steps=2, corpus="file", corpus_path=corpus(tmp_path))

    def answers(name):
        return [json.loads((rd.path / e.payload["path"]).read_text()) for e in rd.events()
                if e.type == "sample" and e.payload["name"] == name]

    def drive():
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            rd.send("set", key="temperature", value=0)
            rd.send("interact", name="generate", reply="generation", prompt="the ", request=1)
            rd.send("interact", name="generate", reply="generation", prompt="✓", request=2)
            rd.send("interact", name="read", reply="hidden", text='say "x"\\n  y', request=3)
            rd.send("interact", name="read", reply="hidden", text="   ", request=4)
            rd.send("interact", name="read", reply="hidden", text="x" * 400, request=5)
            while not any(a.get("request") == 5 for a in answers("hidden.error")) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    first = [a for a in answers("generation") if a.get("request") == 1]
    assert first[-1]["done"] and len(first[-1]["tokens"]) == TINY["max_new_tokens"]
    assert first[-1]["settings"]["temperature"] == 0 and first[-1]["prompt"] == "the "
    assert all(a["chosen_p"] == [1.0] * len(a["chosen_p"]) for a in first)  # greedy
    assert all(len(c) == 8 and c[0][1] >= c[-1][1] for c in first[-1]["candidates"])
    errors = {a["request"]: a["error"] for a in answers("generation.error") + answers("hidden.error")}
    assert "never seen" in errors[2] and "type a text" in errors[4] and "at most 160" in errors[5]
    read = [a for a in answers("hidden") if a.get("request") == 3][-1]
    assert read["tokens"] == list('say "x"\n  y') and len(read["layers"][0][0]) == 11


def test_a_changed_corpus_refuses_the_old_checkpoint(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("abcdefgh " * 500)
    rd = write_run(tmp_path / "run", steps=2, corpus="file", corpus_path=str(path))
    assert Runner(rd.path).run() == 0
    path.write_text("abcdefgz " * 500)
    cfg = rd.read_config()
    cfg["params"]["steps"] = 4
    rd.write_config("lstm", cfg["params"], device="cpu", lesson="lstm-text")
    assert Runner(rd.path).run() == 1
    assert "vocabulary differs" in read_history(rd).errors[-1]["message"]


# -- the studio --
async def test_the_hidden_state_tab_reads_what_is_typed_and_the_sample_tab_generates(tmp_path):
    app = GenStudioApp(graphics="halfblock", lesson="lstm-text")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        await start_tiny(pilot, screen, {**TINY, "corpus": "file", "corpus_path": corpus(tmp_path), "hidden": 48,
                                         "steps": 1_000_000})
        await wait_for(pilot, lambda: screen.snapshot is not None and "hidden" in screen.snapshot.samples,
                       timeout=120, what="the first hidden states")
        await pilot.press("3")
        await pilot.pause()
        view = screen.query_one(HiddenStateView)
        assert app.focused is screen.query_one("#hs-text")
        for key in ('"', "a", "t", '"', "space", "x"):
            await pilot.press({'"': "quotation_mark"}.get(key, key))
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.data is not None and view.data.get("request") == 1, what="the reading")
        assert view.data["tokens"] == list('"at" x')
        await pilot.pause()
        header = str(screen.query_one("#hs-cols").render()).splitlines()
        assert header[0].split() == ['"', "a", "t", '"', "␣", "x"]  # the characters read, along the top
        rows = str(screen.query_one("#hs-map").render()).splitlines()
        assert len(rows) == 48  # a row per hidden unit: more than fit at 120x40
        assert "Layer 1: 48 hidden units" in str(screen.query_one("#hs-help").render())
        tracked = str(screen.query_one("#hs-tracked").render())
        assert ("tracks" in tracked and rows[0].lstrip().startswith(MARK)) or "No unit of layer 1" in tracked
        screen.query_one("#hs-layer").value = 1
        await pilot.pause()
        assert "Layer 2" in str(screen.query_one("#hs-help").render())
        await pilot.press("escape")  # out of the box: the arrows scroll the units, the header stays
        assert app.focused is view
        await pilot.press("pagedown")
        await pilot.pause()
        assert screen.query_one("#hs-scroll").scroll_y > 0
        assert str(screen.query_one("#hs-cols").render()).splitlines()[0] == header[0]
        screen.query_one("#hs-text").value = "✓✓"
        screen.query_one("#hs-text").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "never seen" in str(screen.query_one("#hs-help").render()), what="the error")

        await pilot.press("escape")
        await pilot.press("2")
        await pilot.pause()
        panel = screen.query_one(SamplerPanel)
        assert app.focused is screen.query_one("#prompt")
        for key in ("t", "h", "e"):
            await pilot.press(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: panel.data is not None and panel.data.get("done")
                       and panel.shown == len(panel.data["tokens"]), what="the whole continuation shown")
        assert panel.data["prompt"] == "the" and len(panel.data["tokens"]) == TINY["max_new_tokens"]
        assert "█" in str(screen.query_one("#sampler-bars").render())
        await pilot.press("escape")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")
