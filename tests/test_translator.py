"""The encoder-decoder translator on tiny CPU configs: the causal mask, cross-attention
weights, beam search against greedy decoding, BLEU, learning a small set, the views'
formats, the translate action and its errors, and runs through the runner that resume
exactly and answer an interact command."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.registry import dashboard
from engine.schema import ConfigError, validate
from engine.configs.translator import TranslatorConfig
from engine.data.en_fr import Vocab, make_split, tokenize
from engine.models.translator import Translator, TranslatorArgs, beam_search, greedy_decode
from engine.recipes.base import RunContext
from engine.recipes.translator import N_EXAMPLES, TranslatorRecipe, corpus_bleu
from engine.rundir import RunDir, read_history
from engine.runner import Runner

TINY = {"width": 32, "heads": 2, "layers": 1, "ff": 64, "batch_size": 32, "train_size": 400, "warmup": 10}


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def recipe(**over) -> TranslatorRecipe:
    torch.manual_seed(0)
    return TranslatorRecipe(RunContext(device=torch.device("cpu")), TranslatorConfig(**{**TINY, **over}))


def model(**over) -> Translator:
    torch.manual_seed(0)
    return Translator(TranslatorArgs(**{"src_vocab": 20, "tgt_vocab": 30, "d_model": 32, "heads": 4, "layers": 2,
                                        "ff": 64, **over})).eval()


# -- the model --

def test_a_future_target_token_cannot_change_an_earlier_output():
    m = model()
    src = torch.randint(4, 20, (2, 7))
    tgt = torch.randint(4, 30, (2, 6))
    changed = tgt.clone()
    changed[:, 4] = (tgt[:, 4] + 1 - 4) % 26 + 4  # a different token at position 4
    a, b = m(src, tgt), m(src, changed)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)  # positions 0..3 never see position 4
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-4)  # position 4 on does


def test_padding_in_the_source_changes_nothing():
    m = model()
    src = torch.randint(4, 20, (1, 5))
    tgt = torch.randint(4, 30, (1, 4))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    assert torch.allclose(m(src, tgt), m(padded, tgt), atol=1e-5)


def test_cross_attention_weights_have_the_right_shape_and_rows_sum_to_one():
    m = model()
    src = torch.cat([torch.randint(4, 20, (3, 5)), torch.zeros(3, 2, dtype=torch.long)], dim=1)  # 2 pads
    memory, mask = m.encode(src)
    logits, maps = m.decode(torch.randint(4, 30, (3, 4)), memory, mask, need_weights=True)
    assert logits.shape == (3, 4, 30) and len(maps) == 2
    for w in maps:
        assert w.shape == (3, 4, 4, 7)  # (batch, heads, target positions, source positions)
        assert torch.allclose(w.sum(-1), torch.ones(3, 4, 4), atol=1e-5)
        assert w[..., 5:].abs().max() == 0  # nothing attends to padding
    fast = m.decode(torch.randint(4, 30, (3, 4)), memory, mask)
    assert fast[1] == []


def test_the_fast_and_the_explicit_attention_agree():
    m = model()
    src, tgt = torch.randint(4, 20, (2, 6)), torch.randint(4, 30, (2, 5))
    memory, mask = m.encode(src)
    assert torch.allclose(m.decode(tgt, memory, mask)[0], m.decode(tgt, memory, mask, need_weights=True)[0], atol=1e-5)


def test_beam_of_one_is_greedy():
    r = recipe()
    for _ in range(60):
        r.train_step()
    r.model.eval()
    for en, _ in r.heldout[:8]:
        src = torch.tensor(r.src_vocab.encode(en))
        greedy = greedy_decode(r.model, src[None], Vocab.BOS, Vocab.EOS, 20)[0].tolist()
        greedy = greedy[:greedy.index(Vocab.EOS)] if Vocab.EOS in greedy else greedy
        assert beam_search(r.model, src, Vocab.BOS, Vocab.EOS, 20, k=1) == greedy


class ScriptedModel:
    """A stand-in decoder whose next-token probabilities depend only on the prefix:
    first A 0.6 / B 0.4; after A the best is EOS at only 0.3; after B, EOS is certain."""

    A, B, C = 3, 4, 5
    args = TranslatorArgs(src_vocab=6, tgt_vocab=6)

    def encode(self, src):
        return torch.zeros(1, 1, 1), torch.ones(1, 1, 1, 1, dtype=torch.bool)

    def decode(self, ys, memory, src_mask):
        table = {(Vocab.BOS,): {self.A: 0.6, self.B: 0.4},
                 (Vocab.BOS, self.A): {Vocab.EOS: 0.3, self.A: 0.25, self.C: 0.25, self.B: 0.2},
                 (Vocab.BOS, self.B): {Vocab.EOS: 1.0}}
        rows = []
        for prefix in ys.tolist():
            p = torch.full((6,), 1e-9)
            for tok, q in table.get(tuple(prefix), {Vocab.EOS: 1.0}).items():
                p[tok] = q
            rows.append(p.log())
        return torch.stack(rows)[:, None, :].expand(-1, ys.shape[1], -1), []


def test_beam_search_finds_what_greedy_misses():
    """Greedy takes A (0.6) and then can only end at 0.3: 0.18 in all. Two beams also keep
    B (0.4), which ends for sure: 0.4, the better translation per token and in total."""
    m, src = ScriptedModel(), torch.tensor([5])
    assert greedy_decode(m, src[None], Vocab.BOS, Vocab.EOS, 5)[0].tolist()[:2] == [m.A, Vocab.EOS]
    assert beam_search(m, src, Vocab.BOS, Vocab.EOS, 5, k=1) == [m.A]
    assert beam_search(m, src, Vocab.BOS, Vocab.EOS, 5, k=2) == [m.B]


# -- BLEU --

def test_bleu_identical_is_one_and_disjoint_is_zero():
    refs = [tokenize("le chat noir voit la maison"), tokenize("deux mille vingt et un")]
    assert corpus_bleu(refs, refs) == pytest.approx(1.0)
    assert corpus_bleu([["a", "b", "c"], ["d"]], refs) == 0.0
    assert corpus_bleu([[], []], refs) == 0.0


def test_bleu_by_hand():
    hyp, ref = ["le", "chat", "noir", "dort"], ["le", "chat", "noir", "mange", "bien"]
    # p1 = 3/4; p2 = (2+1)/(3+1); p3 = (1+1)/(2+1); p4 = (0+1)/(1+1); BP = exp(1 - 5/4)
    expected = math.exp(1 - 5 / 4) * (3 / 4 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert corpus_bleu([hyp], [ref]) == pytest.approx(expected)
    # Clipping: a word repeated beyond its count in the reference scores once.
    assert corpus_bleu([["le", "le", "le"]], [["le", "chat", "le"]]) < corpus_bleu([["le", "chat", "le"]],
                                                                                  [["le", "chat", "le"]])


# -- the recipe --

def test_config_checks():
    with pytest.raises(ConfigError, match="multiple of heads"):
        validate(TranslatorConfig, {"width": 30, "heads": 4})
    with pytest.raises(ConfigError, match="data_path"):
        validate(TranslatorConfig, {"dataset": "file"})
    with pytest.raises(ConfigError, match="beam must be one of"):
        validate(TranslatorConfig, {"beam": 3})
    tabs = dashboard("translator")
    assert [t.title for t in tabs] == ["Train", "Translate"]


def test_learns_a_small_set():
    """Loss falls a lot and most of a small training set is translated exactly within a few
    hundred steps (teacher forcing, then greedy decoding)."""
    r = recipe(train_size=120, width=64, heads=4, ff=128, lr=3e-3, warmup=20, steps=350)
    pairs, _ = make_split(120, seed=0)  # the recipe's training pairs, in order
    src = r.train_src
    first = r.train_step()["train/loss"].item()
    for _ in range(349):
        last = r.train_step()["train/loss"].item()
    r.model.eval()
    outputs = r.translate_batch(src, max_len=30)
    exact = sum(o == fr for o, (_, fr) in zip(outputs, pairs)) / len(pairs)
    assert last < first / 10, (first, last)
    assert exact >= 0.8, list(zip(outputs, pairs))[:5]


def test_views_have_the_documented_format():
    r = recipe()
    for _ in range(5):
        r.train_step()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"translation", "examples"}
    t = json.loads(json.dumps(arts["translation"].data))  # JSON-ready
    assert set(t) == {"source", "output", "reference", "beam", "seconds", "request", "attention"}
    assert t["request"] == 0  # no learner's request yet
    assert (t["source"], t["reference"]) == r.heldout[0] and t["beam"] == 1 and t["seconds"] >= 0
    att = t["attention"]
    assert set(att) == {"rows", "cols", "maps", "title"} and att["title"] == "cross-attention"
    assert att["cols"] == tokenize(t["source"]) and len(att["maps"]) == TINY["layers"]
    assert len(att["maps"][0]) == TINY["heads"]
    for head in att["maps"][0]:
        assert len(head) == len(att["rows"])
        for row in head:
            assert len(row) == len(att["cols"]) and abs(sum(row) - 1) < 0.01
    rows = arts["examples"].data["rows"]
    assert len(rows) == N_EXAMPLES
    assert all(set(row) == {"source", "reference", "output", "correct"} for row in rows)
    assert all(row["correct"] == (row["output"] == row["reference"]) for row in rows)
    metrics = r.evaluate()
    assert set(metrics) == {"val/loss", "quality/exact_match", "quality/bleu"}
    assert 0 <= metrics["quality/exact_match"] <= 1 and 0 <= metrics["quality/bleu"] <= 1


def test_translate_action_sets_the_sentence_and_uses_the_beam():
    r = recipe()
    r.set_live("beam", 4)
    (art,) = list(r.interact("translate", {"text": "  The RED car is   big ", "reply": "translation", "request": 3}))
    assert art.name == "translation" and art.data["source"] == "the red car is big" and art.data["beam"] == 4
    assert r.current[0] == "the red car is big" and art.data["request"] == 3
    again = r.samples()[0].data  # the views follow it, tagged with the request that chose it
    assert again["source"] == "the red car is big" and again["request"] == 3
    r.set_live("lr", 1e-4)
    assert r.base_lr == 1e-4
    with pytest.raises(KeyError):
        r.set_live("width", 64)


@pytest.mark.parametrize("text, message", [
    ("", "type an English sentence"),
    ("   ", "type an English sentence"),
    ("the purple cat eats the zebra", r"never seen these words: purple, eats, zebra\. It knows \d+ English"),
    ("the cat " * 40, "at most 48"),
])
def test_translate_errors_say_what_to_change(text, message):
    r = recipe()
    with pytest.raises(ValueError, match=message):
        list(r.interact("translate", {"text": text}))


def test_unknown_actions_are_refused():
    with pytest.raises(ValueError, match="no 'generate' action"):
        list(recipe().interact("generate", {"prompt": "x"}))


# -- through the runner --

def write_run(path, **params) -> RunDir:
    cfg = validate(TranslatorConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("translator", asdict(cfg), device="cpu", lesson="translator-en-fr")
    return rd


def test_runner_trains_and_resumes_exactly(tmp_path):
    whole = write_run(tmp_path / "whole", steps=16, dropout=0.1)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=8, dropout=0.1)
    assert Runner(half.path).run() == 0
    cfg = half.read_config()
    cfg["params"]["steps"] = 16
    half.write_config("translator", cfg["params"], device="cpu", lesson="translator-en-fr")
    assert Runner(half.path).run() == 0
    a = load_checkpoint(whole.checkpoint_path)["state"]
    b = load_checkpoint(half.checkpoint_path)["state"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["steps_done"] == b["steps_done"] == 16
    hist = read_history(half)
    assert hist.state == "finished" and "quality/exact_match" in hist.metrics and "translation" in hist.samples


def test_a_checkpoint_of_a_file_run_translates_without_the_file(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"the {w} cat\tle chat {f}\n" for w, f in
                             [("red", "rouge"), ("blue", "bleu"), ("green", "vert"), ("black", "noir")] * 8))
    rd = write_run(tmp_path / "run", steps=3, dataset="file", data_path=str(pairs))
    assert Runner(rd.path).run() == 0
    ck = load_checkpoint(rd.checkpoint_path)
    pairs.unlink()  # sampling from the checkpoint must not need it
    r = TranslatorRecipe(RunContext(device=torch.device("cpu"), need_data=False),
                         validate(TranslatorConfig, ck["params"]))
    r.load_state_dict(ck["state"])
    assert "rouge" in r.tgt_vocab.index and r.samples() == [] and r.evaluate() == {}
    (art,) = list(r.interact("translate", {"text": "the red cat"}))
    assert art.data["reference"] is None and len(art.data["attention"]["cols"]) == 3


def test_a_missing_pairs_file_fails_the_run_with_a_data_event(tmp_path):
    rd = write_run(tmp_path / "run", dataset="file", data_path=str(tmp_path / "missing.tsv"))
    assert Runner(rd.path).run() == 1
    errors = [e.payload for e in rd.events() if e.type == "error"]
    assert errors and errors[0]["kind"] == "data" and "does not exist" in errors[0]["message"]


def test_a_finished_run_answers_translate_commands(tmp_path):
    """Serve mode: the studio's translate box sends an interact command; the answer (or the
    error) is written as a "translation" sample."""
    rd = write_run(tmp_path / "run", steps=3)
    answers: list[dict] = []

    def translations() -> list[dict]:
        return [json.loads((rd.path / e.payload["path"]).read_text()) for e in rd.events()
                if e.type == "sample" and e.payload["name"] in ("translation", "translation.error")]

    def drive() -> None:  # the studio's part, from a second thread
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            # One at a time, as a learner types them.
            for request, text in enumerate(("my old dog likes the red apples", "the cat eats"), start=1):
                before = len(translations())
                rd.send("interact", name="translate", reply="translation", text=text, request=request)
                while len(translations()) == before and time.monotonic() < deadline:
                    time.sleep(0.05)
                answers.append(translations()[-1])
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0  # returns only once stopped
    thread.join(timeout=10)
    assert len(answers) == 2, answers
    assert answers[0]["source"] == "my old dog likes the red apples" and "attention" in answers[0]
    assert answers[0]["request"] == 1 and answers[1]["request"] == 2
    assert answers[0]["reference"] == "mon vieux chien aime les pommes rouges" or answers[0]["reference"] is None
    assert "eats" in answers[1]["error"]
