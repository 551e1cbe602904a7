"""The music Transformer recipe: the GPT of engine/models/gpt.py, unchanged, learns the event
tokens of Bach's chorales (engine/data/music.py) by next-token prediction. Views: a
continuation of a few bars of a held-out chorale (regenerated on request at another
temperature, with Bach's own continuation to compare), and the attention maps over the
music tokens."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.audio import PIECE_SUFFIXES, TEMPO, write_piece
from engine.checkpoint import CheckpointError
from engine.configs.music_transformer import MusicTransformerConfig
from engine.data.music import BAR, START, STEPS_PER_BAR, VOCAB_SIZE, bar_starts, load_music, roll_view, token_name, tokens_to_notes
from engine.device import autocast, one_thread
from engine.models.gpt import GPT, GPTArgs
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine
from engine.recipes.gpt import window_starts
from engine.recipes.textgen import draw

VAL_WINDOWS = 64  # fixed held-out windows for the validation loss
ATTENTION_TOKENS = 48  # the attention viewer shows the last this many tokens
TOKENS_PER_BAR = 64  # a generation stops after new_bars * this many tokens, bar lines or not
MAX_EXPORT_BARS = 256


class MusicTransformerRecipe(Recipe):
    checkpointed = ("model", "opt")  # plus the step count (state_dict below)

    def __init__(self, ctx: RunContext, cfg: MusicTransformerConfig):
        # One CPU thread. Measured on a shared 2-core machine (load average 14): a default
        # step took 0.81 s on one thread and 9.2 s on two, which wait on each other when
        # other programs hold the cores. (Not measured on an idle machine, where two may win.)
        super().__init__(ctx=ctx, cfg=cfg, view_interval=4.0, unit="tokens", cpu_threads=1)
        dev = ctx.device
        self.args = GPTArgs(vocab_size=VOCAB_SIZE, context=cfg.context, width=cfg.width, layers=cfg.layers,
                            heads=cfg.heads, dropout=cfg.dropout)
        self.model = GPT(self.args).to(dev)
        # Weight decay on matrices only: biases, norms and position vectors are left alone.
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        other = [p for p in self.model.parameters() if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": other, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
        self.base_lr = cfg.lr
        self.steps_done = 0
        self.batch_size = cfg.batch_size * cfg.context  # the speed shown counts tokens
        self.held: list[tuple[str, list[int]]] = []  # (name, tokens) of the held-out pieces: the prompts
        self.asked: list[int] | None = None  # the learner's latest continuation: the attention viewer's tokens
        self.last: list[int] = []  # the latest continuation drawn, with its prompt
        if ctx.need_data:
            music = load_music(cfg.dataset, cfg.data_path, cfg.max_pieces, log=ctx.log)
            ctx.log(music.describe())
            self.train_ids = torch.cat([torch.from_numpy(music.tokens[i]).long() for i in music.train]).to(dev)
            self.val_ids = torch.cat([torch.from_numpy(music.tokens[i]).long() for i in music.held_out]).to(dev)
            for name, ids in (("training", self.train_ids), ("held-out", self.val_ids)):
                if len(ids) < cfg.context + 2:
                    raise ValueError(f"the {name} pieces have {len(ids):,} tokens, fewer than the context "
                                     f"({cfg.context}) needs; add pieces or choose a smaller context")
            self.held = [(music.names[i], music.tokens[i].tolist()) for i in music.held_out]
            self.train_size = len(self.train_ids)
            self.val_starts = window_starts(len(self.val_ids), VAL_WINDOWS, cfg.context)
            ctx.log(f"{len(self.train_ids):,} training tokens, {len(self.val_ids):,} held out "
                    f"({len(self.train_ids) / music.bars(music.train):.1f} a bar); vocabulary {VOCAB_SIZE}")
        n = sum(p.numel() for p in self.model.parameters())
        ctx.log(f"model: {n / 1e6:.2f}M parameters ({cfg.layers} layers, {cfg.heads} heads, width {cfg.width}, "
                f"context {cfg.context})")

    # -- training --
    def train_step(self) -> dict[str, torch.Tensor]:
        """Next-token prediction on random windows of the training pieces' tokens (the
        draw depends only on the seed and the step, so a resumed run sees the same
        batches); the learning rate warms up, then follows a cosine down."""
        for group in self.opt.param_groups:
            group["lr"] = warmup_cosine(self.steps_done, self.base_lr, self.cfg.warmup, self.cfg.steps)
        g = torch.Generator().manual_seed(hash((self.cfg.seed, self.steps_done)) % 2**62)
        T = self.cfg.context
        starts = torch.randint(0, len(self.train_ids) - T - 1, (self.cfg.batch_size,), generator=g)
        chunk = self.train_ids[starts.to(self.ctx.device)[:, None] + torch.arange(T + 1, device=self.ctx.device)]
        with autocast(self.ctx.device):
            _, loss, _ = self.model(chunk[:, :-1], chunk[:, 1:])  # each position's target: the token after it
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.steps_done += 1
        return {"train/loss": loss.detach()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            self.base_lr = value
        elif key in ("temperature", "top_k", "prompt_piece", "prompt_bars", "new_bars"):
            setattr(self.cfg, key, value)
        else:
            raise KeyError(key)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """val/loss: the mean negative log-likelihood per token (nats) of held-out pieces,
        on fixed windows, so the curve only moves when the model does."""
        self.model.eval()
        T, total = self.cfg.context, 0.0
        idx = self.val_starts.to(self.ctx.device)[:, None] + torch.arange(T + 1, device=self.ctx.device)
        for rows in idx.split(self.cfg.batch_size):
            chunk = self.val_ids[rows]
            with autocast(self.ctx.device):
                _, loss, _ = self.model(chunk[:, :-1], chunk[:, 1:])
            total += loss.item() * len(rows)
        self.model.train()
        return {"val/loss": total / len(idx)}

    # -- composing --
    @torch.no_grad()
    def continue_tokens(self, prompt: list[int], bars: int, temperature: float, top_k: int,
                        generator: torch.Generator) -> list[int]:
        """Draw tokens after ``prompt``, one at a time, until ``bars`` new bars are written
        (the next bar line is not kept), a new piece would start, or bars x TOKENS_PER_BAR
        tokens are drawn."""
        self.model.eval()
        seq = torch.tensor(prompt, dtype=torch.long, device=self.ctx.device)
        out: list[int] = []
        bar_lines = 0
        with one_thread(self.ctx.device):
            for _ in range(bars * TOKENS_PER_BAR):
                with autocast(self.ctx.device):
                    logits, _, _ = self.model(seq[-self.cfg.context:][None])  # at most its context
                token, _, _ = draw(logits[0, -1], temperature, top_k, 1.0, generator)
                bar_lines += token == BAR
                if token == START or bar_lines > bars:
                    break
                out.append(token)
                seq = torch.cat([seq, seq.new_tensor([token])])
        self.model.train()
        return out

    def prompt(self, piece: int, bars: int, strict: bool = False) -> tuple[str, list[int], list[int]]:
        """The first ``bars`` bars of held-out piece number ``piece`` (1-based) as tokens,
        and the rest of the piece (what Bach wrote next). ``strict``: a number past the
        last piece is an error for the learner; otherwise it wraps round."""
        if not self.held:
            raise ValueError("this run has no held-out pieces loaded (it was built only to sample)")
        if strict and not 1 <= piece <= len(self.held):
            raise ValueError(f"prompt_piece must be 1 to {len(self.held)}: there are {len(self.held)} held-out pieces")
        name, tokens = self.held[(piece - 1) % len(self.held)]
        starts = bar_starts(tokens) + [len(tokens)]
        cut = starts[min(bars, len(starts) - 2)]  # at least one bar is left for the real continuation
        return name, tokens[:cut], tokens[cut:]

    def compose(self, request: int | None, seed: int) -> tuple[dict, list[int]]:
        """A continuation of the chosen prompt with the current settings, as the piano
        roll's data (Bach's own continuation as the other version), and all its tokens."""
        c = self.cfg
        name, prompt, real = self.prompt(c.prompt_piece, c.prompt_bars, strict=request is not None)
        new = self.continue_tokens(prompt, c.new_bars, c.temperature, c.top_k, torch.Generator().manual_seed(seed))
        notes, steps = tokens_to_notes(prompt + new)
        prompt_steps = tokens_to_notes(prompt)[1]
        ends = bar_starts(real) + [len(real)]  # real begins at a bar line
        bach = prompt + real[:ends[min(c.new_bars, len(ends) - 1)]]
        bach_notes, bach_steps = tokens_to_notes(bach)
        # What was written, not what was asked: an early model may end the piece or run out of
        # tokens before new_bars bar lines (a learner read "4 written" above one bar).
        written = (steps - prompt_steps) / STEPS_PER_BAR
        asked = "" if written >= c.new_bars - 0.25 else f" of {c.new_bars} asked"
        label = (f"{name}: {prompt_steps / STEPS_PER_BAR:.3g} bars given, {written:.2g} written{asked} "
                 f"at temperature {c.temperature:g}")
        view = roll_view(notes, max(steps, bach_steps), label, TEMPO, prompt=prompt_steps,
                         other={"notes": bach_notes.tolist(), "label": "Bach"})
        if request is not None:
            view["request"] = request
        return view, prompt + new

    def attention(self, tokens: list[int]) -> dict:
        """Every layer's and head's attention weights over the last ATTENTION_TOKENS tokens."""
        ids = tokens[-min(ATTENTION_TOKENS, self.cfg.context):]
        self.model.eval()
        with torch.no_grad(), one_thread(self.ctx.device):
            _, _, maps = self.model(torch.tensor([ids], device=self.ctx.device), need_weights=True)
        self.model.train()
        labels = [token_name(i) for i in ids]
        return {"title": "self-attention over music tokens", "rows": labels, "cols": labels,
                "maps": [[[[round(v, 3) for v in row] for row in head] for head in layer[0].tolist()] for layer in maps]}

    def interact(self, name: str, args: dict):
        """``continue``: a new continuation of the prompt with the current settings (each
        request draws anew), then the attention maps over it."""
        if name != "continue":
            raise ValueError(f"the music Transformer lesson has no {name!r} action")
        request = int(args.get("request", 0))
        view, tokens = self.compose(request, self.cfg.seed + request)
        yield Artifact("continuation", "data", view, view["label"])
        self.asked = tokens
        yield Artifact("attention", "data", self.attention(tokens))

    def samples(self) -> list[Artifact]:
        """The Train tab's continuation (the same seed every time, so the changes come from
        training), and the attention maps over the learner's latest continuation (or this
        one, before the first). Until the learner asks for a continuation, the Continue tab
        shows this one too, so it is never empty once the run has a model."""
        view, tokens = self.compose(None, self.cfg.seed)
        self.last = tokens
        shown = [Artifact("sample", "data", view, view["label"]),
                 Artifact("attention", "data", self.attention(self.asked or tokens))]
        if self.asked is None:
            shown.append(Artifact("continuation", "data", view, view["label"]))
        return shown

    def sample_file(self, path: Path, n: int, generator: torch.Generator) -> Path:
        """Write ``n`` bars composed from nothing (a start token, no prompt) at the current
        temperature: a .mid file (one track per voice) or a .wav file (our synthesiser).
        Any other suffix raises ValueError."""
        path = Path(path)
        if path.suffix.lower() not in PIECE_SUFFIXES:
            raise ValueError(f"the music Transformer writes a .mid or .wav file, not {path.name!r}")
        if not 1 <= n <= MAX_EXPORT_BARS:
            raise ValueError(f"n is the number of bars: 1 to {MAX_EXPORT_BARS}, not {n}")
        tokens = self.continue_tokens([START], n, self.cfg.temperature, self.cfg.top_k, generator)
        return write_piece(tokens_to_notes(tokens)[0], path)

    # -- checkpoints --
    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done, "vocab_size": VOCAB_SIZE}

    def load_state_dict(self, state: dict) -> None:
        if state.get("vocab_size") != VOCAB_SIZE:
            raise CheckpointError("the music tokens have changed since this checkpoint was saved; start a new run")
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])


RECIPE = MusicTransformerRecipe
