"""The masked language model's recipe: BERT's masked-word objective on the GPT lesson's
corpus, read as words; a fill-in-the-blanks panel (each blank's candidates reading both
sides, beside those with the words to its right hidden), and the attention viewer.

The held-out score is the share of hidden words the model gets right (val/accuracy), with
its reference measured on the very same blanks: always guessing the most frequent word of
the training text (val/unigram); and the same blanks with the words to their right cut
away (val/left_only), which is all a left-to-right reader such as the GPT could use."""

from __future__ import annotations

import re
import time

import torch

from engine.configs.mlm import MLMConfig
from engine.data.text import WORD_PATTERN, WORD_UNK
from engine.device import autocast, check_fits, one_thread
from engine.models.gpt import GPTArgs
from engine.models.mlm import IGNORE, MASK_RATE, MaskedLM, mask_tokens
from engine.recipes.base import Artifact, RunContext
from engine.recipes.gpt import ATTENTION_TOKENS, adamw, attention_data, window_starts
from engine.recipes.textgen import MAX_PROMPT_CHARS, TOP_CANDIDATES, TextRecipe, load_corpus

VAL_WINDOWS = 256  # fixed held-out windows, masked once with a fixed seed: the same blanks every time
MASK_PIECE = "[MASK]"
BLANK = re.compile(r"\[\s*mask\s*\]|(?<!\w)_+(?!\w)", re.IGNORECASE)  # "_", "___" or [MASK]; not __init__
DEFAULT_FILL = "A _ is raised if the key is not found ."


class MLMRecipe(TextRecipe):
    checkpointed = ("model", "opt")  # plus the step count and vocabulary (TextRecipe.state_dict)

    def __init__(self, ctx: RunContext, cfg: MLMConfig):
        # A small model: on a CPU one thread is as fast as two, and much faster when other
        # programs share the cores.
        super().__init__(ctx=ctx, cfg=cfg, view_interval=4.0, unit="tokens", cpu_threads=1)
        dev = ctx.device
        corpus = load_corpus(cfg, dev, 2 * cfg.context + 2,
                             f"the context ({cfg.context}) needs; use a longer text or a smaller context")
        self.tok = corpus.tok
        vocab = self.tok.vocab
        # Spaces carry nothing to guess: the model reads words and punctuation marks only.
        space = torch.tensor([t.isspace() for t in vocab] + [False], device=dev)
        self.train_ids = corpus.train_ids[~space[corpus.train_ids]]
        self.val_ids = corpus.val_ids[~space[corpus.val_ids]]
        for name, ids in (("training", self.train_ids), ("validation", self.val_ids)):
            if len(ids) < cfg.context + 1:
                raise ValueError(f"the {name} part of the corpus has {len(ids):,} words and marks, fewer than "
                                 f"the context ({cfg.context}) needs; use a longer text or a smaller context")
        self.train_size = len(self.train_ids)
        self.batch_size = cfg.batch_size * cfg.context  # tokens per step, for the speed shown
        self.mask_id = len(vocab)  # [MASK] is one token more than the corpus's vocabulary
        # The blanks are words: a run of letters or digits, not punctuation, not the unknown token.
        self.is_word = torch.tensor([re.fullmatch(r"\w+", t) is not None and t != WORD_UNK for t in vocab] + [False],
                                    device=dev)
        self.word_ids = self.is_word.nonzero().flatten()  # the random replacements (BERT's 10%)
        if not bool(self.is_word[self.val_ids].any()) or not bool(self.is_word[self.train_ids].any()):
            raise ValueError("the corpus has no words the model could learn to fill in (only marks, or words "
                             "outside its vocabulary); use a text of sentences")
        if ctx.rank == 0:
            ctx.log(f"corpus: {len(self.train_ids) + len(self.val_ids):,} words and marks (spaces dropped), "
                    f"vocabulary {len(vocab):,} + [MASK]")

        self.args = GPTArgs(vocab_size=len(vocab) + 1, context=cfg.context, width=cfg.width, layers=cfg.layers,
                            heads=cfg.heads, dropout=cfg.dropout)
        check_fits(lambda: MaskedLM(self.args), dev)
        self.model = MaskedLM(self.args).to(dev)
        self.opt = adamw(self.model, cfg.lr, cfg.weight_decay, dev)  # the GPT's optimiser
        self.base_lr = cfg.lr
        self.steps_done = 0
        self.sampling = {}  # no sampling settings: lr is the only live one
        n = sum(p.numel() for p in self.model.parameters())
        if ctx.rank == 0:
            ctx.log(f"model: {n / 1e6:.2f}M parameters ({cfg.layers} layers, {cfg.heads} heads, width {cfg.width}, "
                    f"context {cfg.context}, attention both ways)")

        # Held-out blanks, drawn once: every chosen word becomes [MASK] (no random or kept
        # ones: a blank is a blank when measuring).
        g = torch.Generator().manual_seed(cfg.seed + 1)
        starts = window_starts(len(self.val_ids), VAL_WINDOWS, cfg.context).to(dev)
        windows = self.val_ids[starts[:, None] + torch.arange(cfg.context, device=dev)]  # (W, T)
        # At BERT's 15% whatever mask_rate trains with, so that runs compare on equal terms.
        self.val_x, self.val_y, chosen = mask_tokens(windows, self.is_word[windows], self.mask_id, self.word_ids, g,
                                                     MASK_RATE, corrupt=False)
        # The Train tab shows the windows richest in words (prose, not code examples).
        self.shown = self.is_word[windows].float().mean(1).argsort(descending=True, stable=True)
        # The reference: always answer the most frequent word of the training text.
        counts = torch.bincount(self.train_ids, minlength=len(vocab) + 1) * self.is_word
        self.unigram_id = int(counts.argmax())
        # The same blanks read from the left only: the context tokens that end at each blank,
        # the blank last (blanks too near the text's start to have a full left are left out).
        at = (starts[:, None] + torch.arange(cfg.context, device=dev))[chosen]  # (N,) positions in val_ids
        at = at[at >= cfg.context - 1]
        left = self.val_ids[at[:, None] + torch.arange(-cfg.context + 1, 1, device=dev)]  # (N, T)
        self.left_y = left[:, -1].clone()
        left[:, -1] = self.mask_id
        self.left_x = left

        self.fill_text = DEFAULT_FILL  # the Fill tab's sentence: the learner's latest, until then this
        self.fill_request = 0

    # -- training --
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows of the training text, masked by BERT's rule. The draws depend only
        on (seed, step), so a resumed run sees the batches and blanks it would have seen."""
        g = torch.Generator().manual_seed(hash((self.cfg.seed, self.ctx.rank, self.steps_done)) % 2**62)
        T = self.cfg.context
        starts = torch.randint(0, len(self.train_ids) - T, (self.cfg.batch_size,), generator=g)
        ids = self.train_ids[starts.to(self.ctx.device)[:, None] + torch.arange(T, device=self.ctx.device)]
        x, y, _ = mask_tokens(ids, self.is_word[ids], self.mask_id, self.word_ids, g, self.cfg.mask_rate)
        return x, y

    def train_step(self) -> dict[str, torch.Tensor]:
        lr = self._lr()
        for group in self.opt.param_groups:
            group["lr"] = lr
        x, y = self._batch()
        with autocast(self.ctx.device):
            logits, loss = self.model.masked_loss(x, y)  # the chosen words only
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.steps_done += 1
        right = logits.detach().argmax(-1) == y[y != IGNORE]
        return {"train/loss": loss.detach(), "train/accuracy": right.float().mean()}

    # -- evaluation --
    @torch.no_grad()
    def _predict(self, x: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """The model's logits (N, V) at the positions ``at`` (B, T) of inputs x (B, T), in
        batches, over words only (the blanks are words)."""
        self.model.eval()
        out = []
        for rows, where in zip(x.split(max(1, self.cfg.batch_size)), at.split(max(1, self.cfg.batch_size))):
            with autocast(self.ctx.device):
                logits = self.model.head(self.model.features(rows)[0][where])
            out.append(logits.float().masked_fill(~self.is_word, float("-inf")))
        self.model.train()
        return torch.cat(out)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        chosen = self.val_y != IGNORE
        logits = self._predict(self.val_x, chosen)  # (N, V): the blanks only
        truth = self.val_y[chosen]
        loss = torch.nn.functional.cross_entropy(logits, truth).item()
        last = torch.zeros_like(self.left_x, dtype=torch.bool)
        last[:, -1] = True
        left = self._predict(self.left_x, last).argmax(-1)
        return {"val/loss": loss,
                "val/accuracy": (logits.argmax(-1) == truth).float().mean().item(),
                "val/unigram": (truth == self.unigram_id).float().mean().item(),
                "val/left_only": (left == self.left_y).float().mean().item()}

    # -- the views --
    def piece(self, i: int) -> str:
        return MASK_PIECE if i == self.mask_id else self.tok.piece(i)

    def encode_blanks(self, text: str) -> tuple[list[int], list[str]]:
        """The learner's sentence as token ids, each blank (``_`` or [MASK]) the mask token,
        spaces dropped; and the words the vocabulary lacks (read as the unknown token)."""
        if len(text) > MAX_PROMPT_CHARS:
            raise ValueError(f"the sentence has {len(text):,} characters; keep it under {MAX_PROMPT_CHARS:,}")
        parts = BLANK.split(text)
        ids: list[int] = []
        unknown: list[str] = []
        for k, part in enumerate(parts):
            if k:
                ids.append(self.mask_id)
            for word in WORD_PATTERN.findall(part):  # the word tokeniser's own pieces
                if not word.isspace():
                    ids.append(self.tok.index.get(word, self.tok.unk))
                    if ids[-1] == self.tok.unk:
                        unknown.append(word)
        if not text.strip():
            raise ValueError("type a sentence with a blank, e.g. The _ statement leaves a loop")
        if self.mask_id not in ids:
            raise ValueError("the sentence has no blank: write _ (or [MASK]) where a word is missing")
        if len(ids) > self.cfg.context:
            raise ValueError(f"the sentence has {len(ids)} words and marks; the model reads at most "
                             f"{self.cfg.context} (context)")
        return ids, unknown

    def _top(self, logits: torch.Tensor) -> list[list]:
        probs = logits.softmax(-1)
        top = torch.topk(probs, TOP_CANDIDATES)
        return [[self.tok.piece(i), round(p, 4)] for i, p in zip(top.indices.tolist(), top.values.tolist())]

    @torch.no_grad()
    def fill(self, text: str) -> dict:
        """For each blank in ``text``: the top candidates reading the whole sentence, and
        those when the sentence is cut just after the blank (the words to its right hidden:
        what a left-to-right model could know there)."""
        t0 = time.monotonic()
        ids, unknown = self.encode_blanks(text)
        x = torch.tensor([ids], dtype=torch.long, device=self.ctx.device)
        blank = x == self.mask_id  # (1, T)
        with one_thread(self.ctx.device):
            both = self._predict(x, blank)  # (blanks, V)
            blanks = []
            for k, p in enumerate(blank[0].nonzero().flatten().tolist()):
                cut = blank[:, : p + 1] & (torch.arange(p + 1, device=x.device) == p)  # the last one only
                left = self._predict(x[:, : p + 1], cut)[0]  # the sentence up to the blank
                blanks.append({"at": p, "both": self._top(both[k]), "left": self._top(left)})
        return {"text": text, "tokens": ["_" if i == self.mask_id else self.tok.piece(i) for i in ids],
                "blanks": blanks, "unknown": unknown, "seconds": round(time.monotonic() - t0, 3)}

    def attention(self, text: str) -> dict:
        """Every layer's and head's attention over the sentence (at most ATTENTION_TOKENS)."""
        ids = self.encode_blanks(text)[0][:ATTENTION_TOKENS]
        return attention_data(self.model, ids, [self.piece(i) for i in ids], self.ctx.device)

    def interact(self, name: str, args: dict):
        """``fill``: the blanks of the learner's sentence, then the attention over it."""
        if name != "fill":
            raise ValueError(f"the masked language model lesson has no {name!r} action")
        text = str(args.get("text", ""))
        request = int(args.get("request", 0))
        answer = self.fill(text)  # a ValueError (no blank, too long) is the learner's error reply
        self.fill_text, self.fill_request = text, request
        yield Artifact("fill", "data", {**answer, "request": request})
        yield Artifact("attention", "data", self.attention(text))

    @torch.no_grad()
    def guesses(self, windows: int = 2) -> Artifact:
        """The Train tab's text: held-out windows with the model's guess at each blank
        ([guess] when right, [guess≠word] when wrong)."""
        x, y = self.val_x[self.shown[:windows]], self.val_y[self.shown[:windows]]
        chosen = y != IGNORE
        guess = torch.full_like(y, IGNORE)
        guess[chosen] = self._predict(x, chosen).argmax(-1)
        words, right, total = [], 0, 0
        for w in range(len(x)):
            for t in range(self.cfg.context):
                truth = self.tok.piece(int(y[w, t])) if chosen[w, t] else None
                if truth is None:
                    words.append(self.tok.piece(int(x[w, t])))
                    continue
                g = self.tok.piece(int(guess[w, t]))
                words.append(f"[{g}]" if g == truth else f"[{g}≠{truth}]")
                right, total = right + (g == truth), total + 1
            words.append("…\n")
        return Artifact("guesses", "data", {"text": " ".join(words)},
                        f"held-out text, the model's guess in brackets: {right} of {total} right")

    def samples(self) -> list[Artifact]:
        """The Train tab's guesses, and the Fill and Attention tabs redrawn as training changes
        the model (the learner's latest sentence, or an example until then)."""
        return [self.guesses(), Artifact("fill", "data", {**self.fill(self.fill_text), "request": self.fill_request}),
                Artifact("attention", "data", self.attention(self.fill_text))]

    def sample_images(self, n, generator):
        raise ValueError("the masked language model fills in words, not images; use the Fill tab")


RECIPE = MLMRecipe
