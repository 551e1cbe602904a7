"""The GPT recipe: next-token prediction on a text corpus, with a sampling panel (prompt,
temperature, top-k, top-p, the candidates for each next token) and an attention viewer.
It trains on one device, or on several processes under torchrun with DDP."""

from __future__ import annotations

import math
import re
import time

import torch

from engine.checkpoint import CheckpointError
from engine.configs.gpt import GPTConfig
from engine.data.text import CharTokenizer, WordTokenizer, python_docs, read_text_file
from engine.device import autocast, one_thread
from engine.models.gpt import GPT, GPTArgs, next_token_probs
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine

VAL_SHARE = 0.1  # the last tenth of the corpus is held out for the validation loss
VAL_WINDOWS = 64  # fixed validation windows (the same every time, so the curve is smooth)
SAMPLE_TOKENS = 160  # length of the periodic sample on the Train tab
ATTENTION_TOKENS = 48  # the attention viewer shows at most this many tokens (a terminal's width)
TOP_CANDIDATES = 8  # next-token candidates shown as bars
STREAM_EVERY = 0.15  # seconds between partial answers while generating
MAX_PROMPT_CHARS = 4000


class GPTRecipe(Recipe):
    checkpointed = ("model", "opt")  # plus the step count and vocabulary (state_dict below)

    def __init__(self, ctx: RunContext, cfg: GPTConfig):
        super().__init__(ctx=ctx, cfg=cfg, view_interval=4.0, unit="tokens")
        dev = ctx.device
        text = python_docs() if cfg.corpus == "python-docs" else read_text_file(cfg.corpus_path)
        cut = int(len(text) * (1 - VAL_SHARE))
        train_text, val_text = text[:cut], text[cut:]
        self.tok = (CharTokenizer.fit(text) if cfg.tokenizer == "char"
                    else WordTokenizer.fit(train_text, cfg.vocab_size))
        self.train_ids = torch.tensor(self.tok.encode(train_text), dtype=torch.long).to(dev)
        self.val_ids = torch.tensor(self.tok.encode(val_text), dtype=torch.long).to(dev)
        for name, ids in (("training", self.train_ids), ("validation", self.val_ids)):
            if len(ids) < cfg.context + 2:
                raise ValueError(f"the {name} part of the corpus has {len(ids):,} tokens, fewer than the context "
                                 f"({cfg.context}) needs; use a longer text or a smaller context")
        # Bits per character: the loss per token spread over the characters a token covers.
        self.chars_per_token = {"train": len(train_text) / len(self.train_ids), "val": len(val_text) / len(self.val_ids)}
        self.train_size = len(self.train_ids)
        # The runner counts batch_size per step for the speed shown: here that is tokens.
        self.batch_size = cfg.batch_size * cfg.context * ctx.world_size
        if ctx.rank == 0:
            ctx.log(f"corpus: {len(text):,} characters, {len(self.train_ids) + len(self.val_ids):,} {cfg.tokenizer} "
                    f"tokens, vocabulary {len(self.tok.vocab):,}")

        self.args = GPTArgs(vocab_size=len(self.tok.vocab), context=cfg.context, width=cfg.width,
                            layers=cfg.layers, heads=cfg.heads, dropout=cfg.dropout)
        self.model = GPT(self.args).to(dev)
        self.train_model = self.model
        if ctx.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # DDP averages the gradients of all processes during backward(), so every copy
            # of the model takes the same step and they stay identical.
            self.train_model = DistributedDataParallel(self.model, device_ids=[dev.index] if dev.type == "cuda" else None)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        # Weight decay on matrices only: biases, norms and position vectors are left alone.
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        other = [p for p in self.model.parameters() if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": other, "weight_decay": 0.0}],
                                     lr=cfg.lr, betas=(0.9, 0.95), fused=dev.type == "cuda")
        self.base_lr = cfg.lr
        self.steps_done = 0
        n = sum(p.numel() for p in self.model.parameters())
        if ctx.rank == 0:
            ctx.log(f"model: {n / 1e6:.2f}M parameters ({cfg.layers} layers, {cfg.heads} heads, width {cfg.width}, "
                    f"context {cfg.context})")
        self.val_starts = torch.linspace(0, len(self.val_ids) - cfg.context - 1, VAL_WINDOWS).long()
        # The Train tab continues the prompt typed last; until then, the corpus's first word.
        self.default_prompt = "The " if cfg.corpus == "python-docs" else re.search(r"\S+\s?", train_text).group(0)
        self.prompt = self.default_prompt
        self.sampling = {k: getattr(cfg, k) for k in ("temperature", "top_k", "top_p", "max_new_tokens")}
        self.last_text: list[int] = []  # prompt + continuation of the latest generation
        self.asked: list[int] | None = None  # the learner's latest generation: the attention viewer's text

    # -- training --
    def _lr(self) -> float:
        """Linear warmup to lr, then a cosine decay to a tenth of it at the last step."""
        return warmup_cosine(self.steps_done, self.base_lr, self.cfg.warmup, self.cfg.steps)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows of the training text. The draw depends only on (seed, rank, step),
        so a resumed run sees the batches it would have seen, and every DDP process its own."""
        g = torch.Generator().manual_seed(hash((self.cfg.seed, self.ctx.rank, self.steps_done)) % 2**62)
        T = self.cfg.context
        starts = torch.randint(0, len(self.train_ids) - T - 1, (self.cfg.batch_size,), generator=g)
        idx = starts.to(self.ctx.device)[:, None] + torch.arange(T + 1, device=self.ctx.device)
        chunk = self.train_ids[idx]
        return chunk[:, :-1], chunk[:, 1:]  # each position's target is the token after it

    def train_step(self) -> dict[str, torch.Tensor]:
        lr = self._lr()
        for group in self.opt.param_groups:
            group["lr"] = lr
        x, y = self._batch()
        with autocast(self.ctx.device):
            _, loss, _ = self.train_model(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.steps_done += 1
        loss = loss.detach()
        return {"train/loss": loss, "train/bpc": loss / (math.log(2) * self.chars_per_token["train"])}

    def set_live(self, key, value) -> None:
        if key == "lr":
            self.base_lr = value
        elif key in self.sampling:
            self.sampling[key] = value
        else:
            raise KeyError(key)

    # -- evaluation --
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        T, total = self.cfg.context, 0.0
        idx = self.val_starts.to(self.ctx.device)[:, None] + torch.arange(T + 1, device=self.ctx.device)
        for rows in idx.split(max(1, self.cfg.batch_size)):
            chunk = self.val_ids[rows]
            with autocast(self.ctx.device):
                _, loss, _ = self.model(chunk[:, :-1], chunk[:, 1:])
            total += loss.item() * len(rows)
        self.model.train()
        val = total / len(idx)
        return {"val/loss": val, "val/bpc": val / (math.log(2) * self.chars_per_token["val"])}

    # -- sampling --
    def encode_prompt(self, prompt: str) -> list[int]:
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"the prompt has {len(prompt):,} characters; keep it under {MAX_PROMPT_CHARS:,}")
        ids = self.tok.encode(prompt or self.default_prompt)
        if not ids:
            raise ValueError("the prompt has no tokens the model knows")
        return ids

    def generate(self, ids: list[int], n: int, temperature: float, top_k: int, top_p: float,
                 generator: torch.Generator):
        """Continue ``ids`` by ``n`` tokens, one at a time, yielding the record so far after
        every token: the token drawn, the most likely candidates and the chosen one's
        probability."""
        seq = torch.tensor(ids, dtype=torch.long, device=self.ctx.device)
        record = {"tokens": [], "candidates": [], "chosen_p": []}
        for _ in range(n):
            with one_thread(self.ctx.device):
                nxt, raw, probs = self._next_token(seq, temperature, top_k, top_p, generator)
            seq = torch.cat([seq, seq.new_tensor([nxt])])
            top = torch.topk(raw, min(TOP_CANDIDATES, raw.numel()))
            record["tokens"].append(self.tok.piece(nxt))
            # [token, model probability, sampling probability] for the most likely tokens
            record["candidates"].append([[self.tok.piece(i), round(p, 4), round(probs[i].item(), 4)]
                                         for i, p in zip(top.indices.tolist(), top.values.tolist())])
            record["chosen_p"].append(round(probs[nxt].item(), 4))
            self.last_text = seq.tolist()
            yield record

    @torch.no_grad()
    def _next_token(self, seq: torch.Tensor, temperature: float, top_k: int, top_p: float,
                    generator: torch.Generator) -> tuple[int, torch.Tensor, torch.Tensor]:
        """One step: the model's distribution for the token after ``seq`` (the logits at the
        last position), reshaped by temperature, top-k and top-p, then one draw."""
        self.model.eval()
        with autocast(self.ctx.device):
            logits, _, _ = self.model(seq[-self.cfg.context:][None])  # at most its context
        self.model.train()
        logits = logits[0, -1].float()
        raw = logits.softmax(-1)  # the model's own distribution (temperature 1)
        probs = next_token_probs(logits, temperature, top_k, top_p)  # what is drawn from
        return torch.multinomial(probs.cpu(), 1, generator=generator).item(), raw, probs

    @torch.no_grad()
    def attention(self, ids: list[int]) -> dict:
        """Every layer's and head's attention weights over the last ATTENTION_TOKENS tokens."""
        ids = ids[-min(ATTENTION_TOKENS, self.cfg.context):]
        self.model.eval()
        x = torch.tensor([ids], dtype=torch.long, device=self.ctx.device)
        with one_thread(self.ctx.device):
            _, _, maps = self.model(x, need_weights=True)  # fp32: the weights are for reading
        self.model.train()
        return {"title": "self-attention", "rows": [self.tok.piece(i) for i in ids],
                "cols": [self.tok.piece(i) for i in ids],
                "maps": [[[[round(v, 3) for v in row] for row in head] for head in layer[0].tolist()] for layer in maps]}

    def _generation(self, prompt: str, record: dict, done: bool, seconds: float, request: int) -> Artifact:
        s = self.sampling
        return Artifact("generation", "data", {
            "prompt": prompt, **record, "done": done, "seconds": round(seconds, 3), "request": request,
            "settings": {k: s[k] for k in ("temperature", "top_k", "top_p", "max_new_tokens")},
        })

    def interact(self, name: str, args: dict):
        """``generate``: continue the learner's prompt with the current sampling settings,
        streaming the continuation, then the attention maps over the text."""
        if name != "generate":
            raise ValueError(f"the GPT lesson has no {name!r} action")
        prompt = str(args.get("prompt", ""))
        ids = self.encode_prompt(prompt)
        self.prompt = prompt
        s = self.sampling
        request = int(args.get("request", 0))
        g = torch.Generator().manual_seed(self.cfg.seed + request)  # each request draws anew
        t0 = last = time.monotonic()
        record = {"tokens": [], "candidates": [], "chosen_p": []}
        for record in self.generate(ids, s["max_new_tokens"], s["temperature"], s["top_k"], s["top_p"], g):
            if time.monotonic() - last >= STREAM_EVERY:
                last = time.monotonic()
                yield self._generation(prompt, record, False, last - t0, request)
        yield self._generation(prompt, record, True, time.monotonic() - t0, request)
        self.asked = self.last_text
        yield Artifact("attention", "data", self.attention(self.asked))

    @torch.no_grad()
    def samples(self) -> list[Artifact]:
        """The Train tab's sample: a continuation of the last prompt (the same seed every
        time, so the changes come from training), and the attention maps over the learner's
        latest generation (or this sample, before the first), as training changes them."""
        ids = self.encode_prompt(self.prompt)
        g = torch.Generator().manual_seed(self.cfg.seed)
        s = self.sampling
        record = {"tokens": []}
        for record in self.generate(ids, SAMPLE_TOKENS, s["temperature"], s["top_k"], s["top_p"], g):
            pass
        prompt = self.prompt or self.default_prompt
        return [Artifact("sample", "data", {"prompt": prompt, "text": "".join(record["tokens"])},
                         f"continuing {prompt.strip()[:20] or 'a new line'!r} at temperature {s['temperature']:g}"),
                Artifact("attention", "data", self.attention(self.asked or self.last_text))]

    def sample_images(self, n, generator):
        raise ValueError("the GPT lesson makes text, not images; use the Sample tab or `genstudio train gpt`")

    # -- checkpoints --
    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done, "vocab": list(self.tok.vocab),
                "tokenizer": self.tok.kind}

    def load_state_dict(self, state: dict) -> None:
        if state["vocab"] != self.tok.vocab or state["tokenizer"] != self.tok.kind:
            raise CheckpointError("the corpus or tokeniser has changed since this checkpoint was saved "
                             "(its vocabulary differs); start a new run")
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])


RECIPE = GPTRecipe
