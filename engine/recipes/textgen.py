"""Text one token at a time, shared by the recipes that learn and generate it (the GPT, the
LSTM): the corpus split and tokenised, the prompt's tokens, one draw with temperature,
top-k and top-p, the record the sampling panel shows (each token with the candidates it
was drawn from), the answer to the panel's "generate" request, streamed in parts, and
:class:`TextRecipe`, what such a recipe does the same way whatever its model.

The answer's format is what ``studio/widgets/sampler.py`` draws: {"prompt", "tokens",
"candidates": [[token, model probability, sampling probability], ...] per token,
"chosen_p", "done", "seconds", "request", "settings"}."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from engine.checkpoint import CheckpointError
from engine.configs.gpt import SAMPLING  # the live settings of the panel
from engine.data.text import CharTokenizer, WordTokenizer, python_docs, read_text_file
from engine.models.gpt import next_token_probs
from engine.recipes.base import Artifact, Recipe, warmup_cosine

TOP_CANDIDATES = 8  # next-token candidates shown as bars
STREAM_EVERY = 0.15  # seconds between partial answers while generating
MAX_PROMPT_CHARS = 4000
SAMPLE_TOKENS = 160  # length of the periodic sample on the Train tab
VAL_SHARE = 0.1  # the last tenth of the corpus is held out for the validation loss


@dataclass
class Corpus:
    tok: CharTokenizer | WordTokenizer
    train_text: str
    val_text: str
    train_ids: torch.Tensor  # (N,) token ids, on the device
    val_ids: torch.Tensor
    chars_per_token: dict[str, float]  # {"train": .., "val": ..}: turns nats per token into bits per character
    default_prompt: str  # what an empty prompt continues: "The ", or the first word of the learner's text

    def describe(self, tokenizer: str) -> str:
        n = len(self.train_text) + len(self.val_text)
        return (f"corpus: {n:,} characters, {len(self.train_ids) + len(self.val_ids):,} {tokenizer} tokens, "
                f"vocabulary {len(self.tok.vocab):,}")


def load_corpus(cfg, device: torch.device, need: int, why: str) -> Corpus:
    """The corpus ``cfg`` names (``corpus``, ``corpus_path``, ``tokenizer``, ``vocab_size``),
    the last VAL_SHARE held out, tokenised onto ``device``. Each part must have ``need``
    tokens; otherwise the ValueError ends with ``why`` (what needs them, what to change)."""
    text = python_docs() if cfg.corpus == "python-docs" else read_text_file(cfg.corpus_path)
    cut = int(len(text) * (1 - VAL_SHARE))
    train_text, val_text = text[:cut], text[cut:]
    tok = CharTokenizer.fit(text) if cfg.tokenizer == "char" else WordTokenizer.fit(train_text, cfg.vocab_size)
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long).to(device)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long).to(device)
    for name, ids in (("training", train_ids), ("validation", val_ids)):
        if len(ids) < need:
            raise ValueError(f"the {name} part of the corpus has {len(ids):,} tokens, fewer than {why}")
    # Bits per character: the loss per token spread over the characters a token covers.
    chars_per_token = {"train": len(train_text) / len(train_ids), "val": len(val_text) / len(val_ids)}
    default_prompt = "The " if cfg.corpus == "python-docs" else re.search(r"\S+\s?", train_text).group(0)
    return Corpus(tok, train_text, val_text, train_ids, val_ids, chars_per_token, default_prompt)


def encode_prompt(tok, prompt: str, default: str) -> list[int]:
    """The prompt's token ids (an empty prompt is ``default``); a ValueError the learner can
    act on when it is too long or has nothing the model knows."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(prompt):,} characters; keep it under {MAX_PROMPT_CHARS:,}")
    ids = tok.encode(prompt or default)
    if not ids:
        raise ValueError("the prompt has no tokens the model knows")
    return ids


def draw(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
         generator: torch.Generator) -> tuple[int, torch.Tensor, torch.Tensor]:
    """One draw from the next token's logits (V,): the token, the model's own distribution
    (temperature 1) and the one drawn from (reshaped by temperature, top-k and top-p)."""
    logits = logits.float()
    raw = logits.softmax(-1)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs.cpu(), 1, generator=generator).item(), raw, probs


def new_record() -> dict:
    return {"tokens": [], "candidates": [], "chosen_p": []}


def add_token(record: dict, tok, nxt: int, raw: torch.Tensor, probs: torch.Tensor) -> dict:
    """Append the token drawn to ``record``, with the most likely candidates:
    [token, model probability, sampling probability] each, and the chosen one's probability."""
    top = torch.topk(raw, min(TOP_CANDIDATES, raw.numel()))
    record["tokens"].append(tok.piece(nxt))
    record["candidates"].append([[tok.piece(i), round(p, 4), round(probs[i].item(), 4)]
                                 for i, p in zip(top.indices.tolist(), top.values.tolist())])
    record["chosen_p"].append(round(probs[nxt].item(), 4))
    return record


def generation(prompt: str, record: dict, done: bool, seconds: float, request: int, sampling: dict) -> Artifact:
    """The sampling panel's answer (artifact "generation")."""
    return Artifact("generation", "data", {
        "prompt": prompt, **record, "done": done, "seconds": round(seconds, 3), "request": request,
        "settings": {k: sampling[k] for k in SAMPLING},
    })


def stream(prompt: str, records: Iterator[dict], sampling: dict, request: int) -> Iterator[Artifact]:
    """Answer a "generate" request from a generation in progress (``records`` yields the
    record after every token): a partial answer every STREAM_EVERY seconds, then the whole."""
    t0 = last = time.monotonic()
    record = new_record()
    for record in records:
        if time.monotonic() - last >= STREAM_EVERY:
            last = time.monotonic()
            yield generation(prompt, record, False, last - t0, request, sampling)
    yield generation(prompt, record, True, time.monotonic() - t0, request, sampling)


class TextRecipe(Recipe):
    """A recipe that learns text and continues prompts. Its ``__init__`` sets ``tok`` (the
    corpus's tokeniser), ``sampling`` (the live sampling settings), ``prompt`` and
    ``default_prompt``, ``base_lr`` and ``steps_done``; it defines ``generate()``, which
    continues token ids yielding the record after every token. Its config has ``seed``,
    ``lr``, ``warmup`` and ``steps``."""

    def generate(self, ids: list[int], n: int, temperature: float, top_k: int, top_p: float,
                 generator: torch.Generator) -> Iterator[dict]:
        raise NotImplementedError

    def _lr(self) -> float:
        """Linear warmup to lr, then a cosine decay to a tenth of it at the last step."""
        return warmup_cosine(self.steps_done, self.base_lr, self.cfg.warmup, self.cfg.steps)

    def set_live(self, key, value) -> None:
        if key == "lr":
            self.base_lr = value
        elif key in self.sampling:
            self.sampling[key] = value
        else:
            raise KeyError(key)

    def encode_prompt(self, prompt: str) -> list[int]:
        return encode_prompt(self.tok, prompt, self.default_prompt)

    def answer_generate(self, args: dict) -> Iterator[Artifact]:
        """The sampling panel's "generate" request: continue the learner's prompt with the
        current sampling settings, streaming the continuation."""
        prompt = str(args.get("prompt", ""))
        ids = self.encode_prompt(prompt)
        self.prompt = prompt
        s = self.sampling
        request = int(args.get("request", 0))
        g = torch.Generator().manual_seed(self.cfg.seed + request)  # each request draws anew
        yield from stream(prompt, self.generate(ids, s["max_new_tokens"], s["temperature"], s["top_k"], s["top_p"], g),
                          s, request)

    @torch.no_grad()
    def train_sample(self) -> Artifact:
        """The Train tab's sample: a continuation of the last prompt, with the same seed
        every time, so the changes come from training."""
        ids = self.encode_prompt(self.prompt)
        g = torch.Generator().manual_seed(self.cfg.seed)
        s = self.sampling
        record = new_record()
        for record in self.generate(ids, SAMPLE_TOKENS, s["temperature"], s["top_k"], s["top_p"], g):
            pass
        prompt = self.prompt or self.default_prompt
        return Artifact("sample", "data", {"prompt": prompt, "text": "".join(record["tokens"])},
                        f"continuing {prompt.strip()[:20] or 'a new line'!r} at temperature {s['temperature']:g}")

    # -- checkpoints: the weights, the step count and the vocabulary they were trained on --
    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done, "vocab": list(self.tok.vocab),
                "tokenizer": self.tok.kind}

    def load_state_dict(self, state: dict) -> None:
        if state["vocab"] != self.tok.vocab or state["tokenizer"] != self.tok.kind:
            raise CheckpointError("the corpus or tokeniser has changed since this checkpoint was saved "
                                  "(its vocabulary differs); start a new run")
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])
