"""The LSTM recipe: next-token prediction on a text corpus by a recurrent network, trained
with truncated backpropagation through time; the GPT lesson's sampling panel, and a view
of the hidden state while the model reads a text."""

from __future__ import annotations

import math

import torch

from engine.checkpoint import CheckpointError
from engine.configs.lstm import LSTMConfig
from engine.device import autocast, one_thread
from engine.metrics.text_units import tracked_unit
from engine.models.lstm import LSTMArgs, LSTMLanguageModel
from engine.recipes.base import Artifact, RunContext
from engine.recipes.gpt import window_starts
from engine.recipes.textgen import SAMPLING, TextRecipe, add_token, draw, load_corpus, new_record

VAL_WINDOWS = 64  # fixed validation windows of VAL_TOKENS tokens, each read from empty memory
VAL_TOKENS = 64  # with characters, the very windows the GPT's default (context 64) is scored on
READ_TOKENS = 160  # the Hidden state view reads at most this many tokens
REFERENCE_TOKENS = 3000  # held-out tokens over which each unit is correlated with the text's features
MAX_READ_CHARS = 4000
DEFAULT_READING = 'Use "print(x)" to show it:\n    if x > 0:\n        print(x)'


class LSTMRecipe(TextRecipe):
    checkpointed = ("model", "opt")  # plus the step count, the carried state and the vocabulary (state_dict)

    def __init__(self, ctx: RunContext, cfg: LSTMConfig):
        # A step is a chain of small matrix products, one per token: on a CPU one thread
        # is as fast as two, and much faster when other programs share the cores.
        super().__init__(ctx=ctx, cfg=cfg, view_interval=4.0, unit="tokens", cpu_threads=1)
        dev = ctx.device
        need = max(cfg.batch_size * (cfg.bptt + 1), VAL_TOKENS + 2)
        corpus = load_corpus(cfg, dev, need, f"{need:,} ({cfg.batch_size} strips of {cfg.bptt + 1} tokens) need; "
                             "use a longer text, or a smaller batch_size or bptt")
        self.tok, self.train_ids, self.val_ids = corpus.tok, corpus.train_ids, corpus.val_ids
        self.chars_per_token = corpus.chars_per_token
        self.train_size = len(self.train_ids)
        self.batch_size = cfg.batch_size * cfg.bptt  # tokens per step, for the speed shown
        ctx.log(corpus.describe(cfg.tokenizer))

        self.args = LSTMArgs(vocab_size=len(self.tok.vocab), embed=cfg.embed, hidden=cfg.hidden, layers=cfg.layers,
                             dropout=cfg.dropout)
        self.model = LSTMLanguageModel(self.args).to(dev)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=dev.type == "cuda")
        self.base_lr = cfg.lr
        self.steps_done = 0
        n = sum(p.numel() for p in self.model.parameters())
        ctx.log(f"model: {n / 1e6:.2f}M parameters ({cfg.layers} layers of {cfg.hidden} units, embedding {cfg.embed})")

        # Truncated backpropagation through time: the training text is cut into batch_size
        # strips read side by side, bptt tokens at a time; the state one chunk ends with is
        # where the next begins, but gradients stop at the chunk's edge.
        self.strip = (len(self.train_ids) - 1 - cfg.bptt) // cfg.batch_size  # room for an offset < bptt
        self.chunks = max(1, self.strip // cfg.bptt)  # steps per pass over the text (an epoch)
        self.state = self.model.zero_state(cfg.batch_size)  # (h, c), each (layers, B, hidden)
        self.val_starts = window_starts(len(self.val_ids), VAL_WINDOWS, VAL_TOKENS)
        self.reference = self.val_ids[:REFERENCE_TOKENS]  # the text the tracked-unit finder reads

        self.default_prompt = corpus.default_prompt
        self.prompt = self.default_prompt
        self.sampling = {k: getattr(cfg, k) for k in SAMPLING}
        # The Hidden state view reads the learner's text; until then, a held-out line.
        self.reading = self._default_reading(corpus.val_text)
        self.read_request = 0

    # -- training --
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """The next chunk of every strip: inputs and targets (B, bptt), and whether it is the
        first chunk of a pass (then the carried state starts again from zeros). Each pass
        shifts the strips by an offset drawn from (seed, pass), so chunk edges move; the
        position depends only on the step, so a resumed run reads on where it stopped."""
        cfg = self.cfg
        epoch, k = divmod(self.steps_done, self.chunks)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        offset = int(torch.randint(0, cfg.bptt, (1,), generator=g))
        starts = offset + torch.arange(cfg.batch_size) * self.strip + k * cfg.bptt  # (B,)
        idx = starts.to(self.ctx.device)[:, None] + torch.arange(cfg.bptt + 1, device=self.ctx.device)
        chunk = self.train_ids[idx]  # (B, bptt + 1)
        return chunk[:, :-1], chunk[:, 1:], k == 0

    def train_step(self) -> dict[str, torch.Tensor]:
        lr = self._lr()
        for group in self.opt.param_groups:
            group["lr"] = lr
        x, y, first = self._batch()
        state = self.state if self.cfg.carry_state and not first else None  # None: from zeros
        with autocast(self.ctx.device):
            _, loss, state = self.model(x, state, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        # Gradients through many steps can explode; clipping rescales the whole gradient to
        # at most norm `clip` (its direction is kept). The norm before clipping is shown.
        clip = self.cfg.clip if self.cfg.clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.opt.step()
        # Carry the state to the next chunk, cut from this chunk's graph (the truncation).
        self.state = (state[0].detach(), state[1].detach())
        self.steps_done += 1
        loss = loss.detach()
        return {"train/loss": loss, "train/bpc": loss / (math.log(2) * self.chars_per_token["train"]),
                "train/grad_norm": norm.detach()}

    # -- evaluation --
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss on fixed held-out windows, each read from empty memory (as the GPT's are)."""
        self.model.eval()
        idx = self.val_starts.to(self.ctx.device)[:, None] + torch.arange(VAL_TOKENS + 1, device=self.ctx.device)
        chunk = self.val_ids[idx]  # (VAL_WINDOWS, VAL_TOKENS + 1)
        with autocast(self.ctx.device):
            _, loss, _ = self.model(chunk[:, :-1], None, chunk[:, 1:])
        self.model.train()
        val = loss.item()
        return {"val/loss": val, "val/bpc": val / (math.log(2) * self.chars_per_token["val"])}

    # -- sampling --
    def generate(self, ids: list[int], n: int, temperature: float, top_k: int, top_p: float,
                 generator: torch.Generator):
        """Continue ``ids`` by ``n`` tokens, yielding the record so far after every token.
        The prompt is read once; after that each new token costs one step of the LSTM,
        its memory carried in (h, c) (a Transformer re-reads its whole context instead)."""
        self.model.eval()
        record = new_record()
        try:
            with torch.no_grad(), one_thread(self.ctx.device):
                logits, _, state = self.model(torch.tensor([ids], device=self.ctx.device))
                for _ in range(n):
                    nxt, raw, probs = draw(logits[0, -1], temperature, top_k, top_p, generator)
                    yield add_token(record, self.tok, nxt, raw, probs)
                    logits, _, state = self.model(torch.tensor([[nxt]], device=self.ctx.device), state)
        finally:
            self.model.train()

    def interact(self, name: str, args: dict):
        """``generate``: continue the learner's prompt with the current sampling settings,
        streaming the continuation. ``read``: the hidden states while the model reads the
        learner's text."""
        if name == "generate":
            yield from self.answer_generate(args)
        elif name == "read":
            self.reading = self._encode_reading(str(args.get("text", "")))
            self.read_request = int(args.get("request", 0))
            yield self._hidden_artifact()
        else:
            raise ValueError(f"the LSTM lesson has no {name!r} action")

    # -- the hidden state --
    def _default_reading(self, val_text: str) -> list[int]:
        """What the view reads before the learner types a text: for the Python docs, a line
        with quotes, brackets and indentation to follow; for a learner's file, the start of
        its held-out part."""
        text = DEFAULT_READING if self.cfg.corpus == "python-docs" else val_text[:64]
        return self.tok.encode(text)[:READ_TOKENS]

    def _encode_reading(self, text: str) -> list[int]:
        if len(text) > MAX_READ_CHARS:
            raise ValueError(f"the text has {len(text):,} characters; keep it under {MAX_READ_CHARS:,}")
        text = text.replace("\\n", "\n")  # a one-line box: \n types a line break
        if not text.strip():
            raise ValueError("type a text for the model to read (\\n for a new line)")
        ids = self.tok.encode(text)
        if len(ids) > READ_TOKENS:
            raise ValueError(f"the text has {len(ids)} tokens; the view reads at most {READ_TOKENS}")
        return ids

    @torch.no_grad()
    def hidden_states(self, ids: list[int]) -> list[torch.Tensor]:
        """Every layer's hidden state h after every token of ``ids``, read from empty
        memory step by step (engine.models.lstm.lstm_cell): a list of (T, hidden)."""
        self.model.eval()
        with one_thread(self.ctx.device):
            out = self.model.read(torch.tensor(ids, device=self.ctx.device))
        self.model.train()
        return out["h"]

    @torch.no_grad()
    def tracked(self) -> list[dict]:
        """Per layer, the unit that follows a feature of the text best over the reference
        (held-out) text, and whether it does so closely enough to be named."""
        self.model.eval()
        with one_thread(self.ctx.device):
            hs, _ = self.model.layer_outputs(self.reference[None])  # per layer (1, T, hidden)
        self.model.train()
        pieces = [self.tok.piece(i) for i in self.reference.tolist()]
        return [{**tracked_unit(h[0].float().cpu().numpy(), pieces), "tokens": len(pieces)} for h in hs]

    def _hidden_artifact(self) -> Artifact:
        hs = self.hidden_states(self.reading)
        return Artifact("hidden", "data", {
            "tokens": [self.tok.piece(i) for i in self.reading],
            "layers": [[[round(v, 2) for v in unit] for unit in h.T.tolist()] for h in hs],  # [layer][unit][token]
            "tracked": self.tracked(),
            "request": self.read_request,
        }, f"{len(hs)} layers of {self.cfg.hidden} units reading {len(self.reading)} tokens")

    @torch.no_grad()
    def samples(self) -> list[Artifact]:
        """The Train tab's sample (a continuation of the last prompt, with the same seed
        every time, so the changes come from training) and the hidden states over the text
        the view reads, as training changes them."""
        return [self.train_sample(), self._hidden_artifact()]

    def sample_images(self, n, generator):
        raise ValueError("the LSTM lesson makes text, not images; use the Sample tab or `genstudio train lstm`")

    # -- checkpoints --
    def state_dict(self) -> dict:
        """Besides the weights, the step and the vocabulary (TextRecipe): the state carried
        into the next chunk. The step fixes the position in the strips, so a resumed run
        reads on exactly."""
        return {**super().state_dict(), "carried": list(self.state)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        h, c = (t.to(self.ctx.device) for t in state["carried"])
        if h.shape != self.state[0].shape:
            raise CheckpointError(f"the checkpoint's carried state has shape {tuple(h.shape)}, not "
                                  f"{tuple(self.state[0].shape)}; start a new run")
        self.state = (h, c)


RECIPE = LSTMRecipe
