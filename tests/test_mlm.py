"""The masked language model's lesson: the encoder's shapes and its attention that reads both
ways (while the GPT stays causal), BERT's masking rule, the loss falling, exact resume, the
fill requests through the runner with error replies, and the Fill tab driven by a Pilot."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.configs.mlm import MLMConfig
from engine.device import one_thread
from engine.models.gpt import GPT, GPTArgs
from engine.models.mlm import IGNORE, MaskedLM, mask_tokens
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.runner import Runner
from engine.rundir import RunDir, read_history
from engine.schema import ConfigError, validate
from studio.app import GenStudioApp
from studio.widgets.fill import FillPanel
from conftest import stop_part_way
from test_studio import lesson_screen, start_tiny, wait_for

TINY = {"layers": 2, "heads": 2, "width": 32, "context": 16, "batch_size": 16, "steps": 40, "lr": 3e-3, "warmup": 5,
        "dropout": 0.0}
ANIMALS = ("cat", "dog", "cow", "hen")
TEXT = "".join(f"the {a} sat on the {b} mat . a {a} ran to the {b} log .\n"
               for a in ANIMALS for b in ("red", "blue", "green")) * 40


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """As the runner sets it for this recipe (cpu_threads=1)."""
    with one_thread():
        yield


def corpus(tmp_path: Path) -> str:
    path = tmp_path / "c.txt"
    path.write_text(TEXT)
    return str(path)


def tiny_recipe(tmp_path: Path, **params):
    torch.manual_seed(0)
    return build_recipe("mlm", {**TINY, "corpus": "file", "corpus_path": corpus(tmp_path), **params},
                        RunContext(device=torch.device("cpu")))


def write_run(path: Path, **params) -> RunDir:
    cfg = validate(MLMConfig, {**TINY, "corpus": "file", "corpus_path": corpus(path.parent), **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("mlm", asdict(cfg), device="cpu", lesson="masked-lm")
    return rd


def tiny_args(**kw) -> GPTArgs:
    return GPTArgs(**{"vocab_size": 20, "context": 16, "width": 32, "layers": 2, "heads": 4, **kw})


# -- the model --
def test_shapes_loss_and_the_tied_head():
    torch.manual_seed(0)
    model = MaskedLM(tiny_args())
    x = torch.randint(0, 20, (3, 10))
    logits, _, maps = model(x, need_weights=True)
    assert logits.shape == (3, 10, 20) and len(maps) == 2 and maps[0].shape == (3, 4, 10, 10)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 4, 10), atol=1e-5)
    assert model.head.weight is model.tok_emb.weight
    y = torch.full_like(x, IGNORE)
    y[0, 2], y[2, 7] = 5, 9
    chosen_logits, loss = model.masked_loss(x, y)
    assert chosen_logits.shape == (2, 20)
    want = torch.nn.functional.cross_entropy(logits[[0, 2], [2, 7]], torch.tensor([5, 9]))
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)  # only the chosen positions count


@pytest.mark.parametrize("need_weights", [False, True])
def test_the_encoder_reads_both_ways_and_the_gpt_stays_causal(need_weights):
    x = torch.randint(0, 20, (2, 12))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 3) % 20  # change everything from position 7 on
    torch.manual_seed(0)
    encoder, gpt = MaskedLM(tiny_args()).eval(), GPT(tiny_args()).eval()
    assert gpt.args.causal and not encoder.args.causal
    with torch.no_grad():
        (a, _, am), (b, _, _) = encoder(x, need_weights=need_weights), encoder(y, need_weights=need_weights)
        (c, _, cm), (d, _, _) = gpt(x, need_weights=need_weights), gpt(y, need_weights=need_weights)
    assert not torch.allclose(a[:, :7], b[:, :7], atol=1e-3)  # later words change earlier outputs
    assert torch.allclose(c[:, :7], d[:, :7], atol=1e-5)  # ... but never in the GPT
    if need_weights:  # the weights the viewer reads: the upper triangle is the words to the right
        assert am[0].triu(1).sum() > 0 and torch.all(cm[0].triu(1) == 0)
    with torch.no_grad():
        assert torch.allclose(encoder(x)[0], encoder(x, need_weights=True)[0], atol=1e-5)
    # One block, the same weights: only the mask differs, so the last position, which sees
    # every word either way, gets the same output from both.
    one, gpt_one = MaskedLM(tiny_args(layers=1)).eval(), GPT(tiny_args(layers=1)).eval()
    one.load_state_dict(gpt_one.state_dict())  # the same parameters, one switch apart
    with torch.no_grad():
        assert torch.allclose(one(x)[0][:, -1], gpt_one(x)[0][:, -1], atol=1e-5)
        assert not torch.allclose(one(x)[0][:, 0], gpt_one(x)[0][:, 0], atol=1e-3)


# -- BERT's masking rule --
def test_masking_chooses_fifteen_percent_of_the_words_and_corrupts_them_80_10_10():
    ids = torch.randint(0, 1000, (256, 128), generator=torch.Generator().manual_seed(1))
    eligible = ids % 4 != 0  # a quarter are not words (punctuation): never chosen
    words = torch.arange(1, 1000)
    x, y, chosen = mask_tokens(ids, eligible, 1000, words, torch.Generator().manual_seed(0))
    assert not chosen[~eligible].any()
    assert chosen.any(1).all()  # every sequence has something to predict
    assert chosen[eligible].float().mean().item() == pytest.approx(0.15, abs=0.01)
    assert torch.equal(y[chosen], ids[chosen]) and (y[~chosen] == IGNORE).all()
    assert torch.equal(x[~chosen], ids[~chosen])  # the rest are read as they are
    masked = (x[chosen] == 1000).float().mean().item()
    same = (x[chosen] == ids[chosen]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.02) and same == pytest.approx(0.1, abs=0.02)
    assert 1 - masked - same == pytest.approx(0.1, abs=0.02)  # a random word
    x2, y2, _ = mask_tokens(ids, eligible, 1000, words, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)  # the draws follow the generator only
    xm, _, cm = mask_tokens(ids, eligible, 1000, words, torch.Generator().manual_seed(0), corrupt=False)
    assert (xm[cm] == 1000).all()


def test_config_errors():
    with pytest.raises(ConfigError, match="multiple of heads"):
        validate(MLMConfig, {"width": 30, "heads": 4})
    with pytest.raises(ConfigError, match="corpus_path"):
        validate(MLMConfig, {"corpus": "file"})


# -- the recipe --
def test_loss_falls_and_the_model_beats_the_unigram_guess(tmp_path):
    r = tiny_recipe(tmp_path, steps=400, lr=1e-2, batch_size=32)
    before = r.evaluate()
    for _ in range(400):
        m = r.train_step()
    after = r.evaluate()
    assert set(m) == {"train/loss", "train/accuracy"}
    assert after["val/loss"] < 0.5 * before["val/loss"], (before, after)
    assert after["val/unigram"] == before["val/unigram"]  # the reference: the same blanks every time
    assert after["val/accuracy"] > after["val/unigram"] + 0.1, after
    assert r.tok.kind == "word" and r.mask_id == len(r.tok.vocab)
    assert not any(r.tok.piece(int(i)).isspace() for i in r.train_ids[:200])  # spaces are dropped


def test_blanks_are_read_and_the_left_only_guess_ignores_the_right(tmp_path):
    r = tiny_recipe(tmp_path)
    ids, unknown = r.encode_blanks("the _ sat on [MASK] red __init__ zebra")
    assert ids.count(r.mask_id) == 2 and unknown == ["__init__", "zebra"]
    a = r.fill("the cat sat on the _ mat .")
    b = r.fill("the cat sat on the _ log ran")
    (blank_a,), (blank_b,) = a["blanks"], b["blanks"]
    assert a["tokens"][blank_a["at"]] == "_" and len(blank_a["both"]) == 8
    assert all(p >= q for (_, p), (_, q) in zip(blank_a["both"], blank_a["both"][1:]))
    assert blank_a["left"] == blank_b["left"]  # the words to the right are hidden
    assert blank_a["both"] != blank_b["both"]  # ... and read, with both sides
    for text, message in (("", "type a sentence"), ("the cat sat", "no blank"),
                          ("the _ " + "cat " * 20, "reads at most 16"), ("_" * 5000, "keep it under")):
        with pytest.raises(ValueError, match=message):
            r.fill(text)


def test_runner_trains_and_resumes_exactly(tmp_path):
    """Stopped part-way and continued (the learning-rate schedule follows the total steps,
    so both runs keep the same total): the same weights as a run never stopped."""
    whole = write_run(tmp_path / "whole", steps=60)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=60)
    stopped_at = stop_part_way(half)
    assert 3 <= stopped_at < 60
    assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
    a, b = (load_checkpoint(rd.checkpoint_path)["state"] for rd in (whole, half))
    assert b["steps_done"] == 60
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), f"stopped at {stopped_at}"
    hist = read_history(half)
    assert {"train/loss", "val/loss", "val/accuracy", "val/unigram", "val/left_only"} <= set(hist.metrics)
    assert {"guesses", "fill", "attention"} <= set(hist.samples) and hist.status["unit"] == "tokens"


def test_fill_requests_through_the_runner_and_errors_come_back(tmp_path):
    rd = write_run(tmp_path / "run", steps=2)

    def answers(name):
        return [json.loads((rd.path / e.payload["path"]).read_text()) for e in rd.events()
                if e.type == "sample" and e.payload["name"] == name]

    def drive():
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            for request, text in enumerate(("the cat _ on the zebra mat", "the cat sat", "the _ " * 20, 42), 1):
                rd.send("interact", name="fill", reply="fill", text=text, request=request)
            rd.send("interact", name="dance", reply="fill", request=5)
            while not any(a.get("request") == 5 for a in answers("fill.error")) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    first = [a for a in answers("fill") if a.get("request") == 1][-1]
    assert first["tokens"] == ["the", "cat", "_", "on", "the", "⁇", "mat"] and first["unknown"] == ["zebra"]
    assert [b["at"] for b in first["blanks"]] == [2]
    errors = {a["request"]: a["error"] for a in answers("fill.error")}
    assert "no blank" in errors[2] and "reads at most" in errors[3] and "no blank" in errors[4]
    assert "no 'dance' action" in errors[5]
    att = answers("attention")[-1]
    assert att["rows"] == ["the", "cat", "[MASK]", "on", "the", "⁇", "mat"]
    assert len(att["maps"]) == TINY["layers"] and len(att["maps"][0]) == TINY["heads"]


# -- the Fill tab --
async def test_the_fill_tab_answers_a_typed_sentence_at_80x24(tmp_path):
    app = GenStudioApp(graphics="halfblock", lesson="masked-lm")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = lesson_screen(app)
        assert screen.has_class("narrow")
        await pilot.press("1")  # a narrow screen opens on the lesson's text: show the dashboard
        await start_tiny(pilot, screen, {**TINY, "corpus": "file", "corpus_path": corpus(tmp_path),
                                         "steps": 1_000_000})
        await wait_for(pilot, lambda: screen.snapshot is not None and "fill" in screen.snapshot.samples,
                       timeout=120, what="the first fill")
        await pilot.press("2")
        await pilot.pause()
        view = screen.query_one(FillPanel)
        assert app.focused is screen.query_one("#fill-text")
        for key in ("t", "h", "e", "space", "underscore", "space", "s", "a", "t"):
            await pilot.press(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.data is not None and view.data.get("request") == 1, what="the answer")
        await pilot.pause()
        assert view.data["tokens"] == ["the", "_", "sat"]
        shown = str(screen.query_one("#fill-blanks").render())
        assert "both sides" in shown and "left only" in shown and "blank 1" in shown and "%" in shown
        assert "1[" in str(screen.query_one("#fill-sentence").render())  # the top guess in place
        await pilot.press("space", "enter")  # the box now reads "the _ sat " : ... then no blank
        await pilot.press("ctrl+u")
        for key in ("n", "o"):
            await pilot.press(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "no blank" in str(screen.query_one("#fill-status").render()),
                       what="the error reply")
        await pilot.press("ctrl+u", *[{"_": "underscore", " ": "space"}.get(c, c) for c in "_ cat _ on the _ mat"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.data is not None and len(view.data["blanks"]) == 3, what="three blanks")
        await pilot.pause()
        await pilot.press("escape")  # out of the box: the arrows scroll the blanks, which fill more than 80x24
        assert app.focused is view
        await pilot.press("pagedown")
        await pilot.pause()
        assert screen.query_one("#fill-out").scroll_y > 0
