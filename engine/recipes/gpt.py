"""The GPT recipe: next-token prediction on a text corpus, with a sampling panel (prompt,
temperature, top-k, top-p, the candidates for each next token) and an attention viewer.
It trains on one device, or on several processes under torchrun with DDP."""

from __future__ import annotations

import math

import torch

from engine.configs.gpt import GPTConfig
from engine.device import autocast, check_fits, fast_path, one_thread
from engine.models.gpt import GPT, GPTArgs
from engine.recipes.base import Artifact, RunContext
from engine.recipes.textgen import SAMPLING, TextRecipe, add_token, draw, load_corpus, new_record

VAL_WINDOWS = 64  # fixed validation windows (the same every time, so the curve is smooth)
ATTENTION_TOKENS = 48  # the attention viewer shows at most this many tokens (a terminal's width)


def window_starts(n: int, count: int, context: int) -> torch.Tensor:
    """``count`` evenly spaced starts of (context + 1)-token windows in a text of n tokens,
    in integer arithmetic: a float32 linspace rounds past the end of a 200 MB corpus."""
    last = max(0, n - context - 1)  # the last start whose window fits
    return torch.arange(count, dtype=torch.long) * last // max(1, count - 1)


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: biases, norms and position vectors are left alone."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": other, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), fused=fast_path(device))


@torch.no_grad()
def attention_data(model: GPT, ids: list[int], pieces: list[str], device: torch.device) -> dict:
    """The attention viewer's artifact: every layer's and head's weights over ``ids`` (shown
    as ``pieces``), read from ``model`` (a GPT, or an encoder built from its blocks)."""
    model.eval()
    x = torch.tensor([ids], dtype=torch.long, device=device)
    with one_thread(device):
        _, _, maps = model(x, need_weights=True)  # fp32: the weights are for reading
    model.train()
    return {"title": "self-attention", "rows": pieces, "cols": pieces,
            "maps": [[[[round(v, 3) for v in row] for row in head] for head in layer[0].tolist()] for layer in maps]}


class GPTRecipe(TextRecipe):
    checkpointed = ("model", "opt")  # plus the step count and vocabulary (TextRecipe.state_dict)
    ddp_modules = ("model",)  # trained by every process under torchrun (--nproc N)

    def __init__(self, ctx: RunContext, cfg: GPTConfig):
        super().__init__(ctx=ctx, cfg=cfg, view_interval=4.0, unit="tokens")
        dev = ctx.device
        corpus = load_corpus(cfg, dev, cfg.context + 2,
                             f"the context ({cfg.context}) needs; use a longer text or a smaller context")
        self.tok, self.train_ids, self.val_ids = corpus.tok, corpus.train_ids, corpus.val_ids
        self.chars_per_token = corpus.chars_per_token
        self.train_size = len(self.train_ids)
        # The runner counts batch_size per step for the speed shown: here that is tokens.
        self.batch_size = cfg.batch_size * cfg.context
        if ctx.rank == 0:
            ctx.log(corpus.describe(cfg.tokenizer))

        self.args = GPTArgs(vocab_size=len(self.tok.vocab), context=cfg.context, width=cfg.width,
                            layers=cfg.layers, heads=cfg.heads, dropout=cfg.dropout)
        check_fits(lambda: GPT(self.args), dev)  # refuse a model too big for memory, with its size
        self.model = GPT(self.args).to(dev)
        self._compiled: tuple | None = None  # (the module it compiles, its compiled form) with compile=true
        self.opt = adamw(self.model, cfg.lr, cfg.weight_decay, dev)
        self.base_lr = cfg.lr
        self.steps_done = 0
        n = sum(p.numel() for p in self.model.parameters())
        if ctx.rank == 0:
            ctx.log(f"model: {n / 1e6:.2f}M parameters ({cfg.layers} layers, {cfg.heads} heads, width {cfg.width}, "
                    f"context {cfg.context})")
        self.val_starts = window_starts(len(self.val_ids), VAL_WINDOWS, cfg.context)
        # The Train tab continues the prompt typed last; until then, the corpus's first word.
        self.default_prompt = corpus.default_prompt
        self.prompt = self.default_prompt
        self.sampling = {k: getattr(cfg, k) for k in SAMPLING}
        self.last_text: list[int] = []  # prompt + continuation of the latest generation
        self.asked: list[int] | None = None  # the learner's latest generation: the attention viewer's text

    # -- training --
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
            _, loss, _ = self._train_model()(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.steps_done += 1
        loss = loss.detach()
        return {"train/loss": loss, "train/bpc": loss / (math.log(2) * self.chars_per_token["train"])}

    def _train_model(self):
        """The model as a training step calls it: under torchrun its DDP wrapper (the runner
        makes it: DDP averages every process's gradients in backward(), so the copies take
        the same step and stay identical), compiled once with compile=true."""
        module = self.train_module("model")
        if not self.cfg.compile:
            return module
        if self._compiled is None or self._compiled[0] is not module:
            self._compiled = (module, torch.compile(module))
        return self._compiled[1]

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
    def generate(self, ids: list[int], n: int, temperature: float, top_k: int, top_p: float,
                 generator: torch.Generator):
        """Continue ``ids`` by ``n`` tokens, one at a time, yielding the record so far after
        every token: the token drawn, the most likely candidates and the chosen one's
        probability."""
        seq = torch.tensor(ids, dtype=torch.long, device=self.ctx.device)
        record = new_record()
        for _ in range(n):
            with one_thread(self.ctx.device):
                nxt, raw, probs = self._next_token(seq, temperature, top_k, top_p, generator)
            seq = torch.cat([seq, seq.new_tensor([nxt])])
            self.last_text = seq.tolist()
            yield add_token(record, self.tok, nxt, raw, probs)

    @torch.no_grad()
    def _next_token(self, seq: torch.Tensor, temperature: float, top_k: int, top_p: float,
                    generator: torch.Generator) -> tuple[int, torch.Tensor, torch.Tensor]:
        """One step: the model's distribution for the token after ``seq`` (the logits at the
        last position), reshaped by temperature, top-k and top-p, then one draw."""
        self.model.eval()
        with autocast(self.ctx.device):
            logits, _, _ = self.model(seq[-self.cfg.context:][None])  # at most its context
        self.model.train()
        return draw(logits[0, -1], temperature, top_k, top_p, generator)

    @torch.no_grad()
    def attention(self, ids: list[int]) -> dict:
        """Every layer's and head's attention weights over the last ATTENTION_TOKENS tokens."""
        ids = ids[-min(ATTENTION_TOKENS, self.cfg.context):]
        return attention_data(self.model, ids, [self.tok.piece(i) for i in ids], self.ctx.device)

    def interact(self, name: str, args: dict):
        """``generate``: continue the learner's prompt with the current sampling settings,
        streaming the continuation, then the attention maps over the text."""
        if name != "generate":
            raise ValueError(f"the GPT lesson has no {name!r} action")
        yield from self.answer_generate(args)
        self.asked = self.last_text
        yield Artifact("attention", "data", self.attention(self.asked))

    @torch.no_grad()
    def samples(self) -> list[Artifact]:
        """The Train tab's sample: a continuation of the last prompt (the same seed every
        time, so the changes come from training), and the attention maps over the learner's
        latest generation (or this sample, before the first), as training changes them."""
        return [self.train_sample(), Artifact("attention", "data", self.attention(self.asked or self.last_text))]

    def sample_images(self, n, generator):
        raise ValueError("the GPT lesson makes text, not images; use the Sample tab or `genstudio train gpt`")


RECIPE = GPTRecipe
