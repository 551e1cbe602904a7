"""The translator recipe: an encoder-decoder Transformer learns English to French from
generated pairs (numbers in words, dates, sentences with agreement and adjective order) or
from the learner's own tab-separated file.

Views: the current sentence (a held-out one until the learner types one) translated with
the current beam setting, with the decoder's cross-attention over the English words (the
alignment), and a table of held-out examples. Scores: the held-out loss, exact-match
accuracy and BLEU of greedy translations."""

from __future__ import annotations

import math
import time
from collections import Counter

import torch
import torch.nn.functional as F

from engine.checkpoint import CheckpointError
from engine.configs.translator import TranslatorConfig
from engine.data.en_fr import Vocab, generated_vocabs, load_pairs_tsv, make_split, split_pairs, tokenize
from engine.device import autocast, fast_path
from engine.models.translator import Translator, TranslatorArgs, beam_search, greedy_decode
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine

N_EVAL = 100  # held-out pairs scored every few seconds (a fixed subset, so the curves compare)
N_EXAMPLES = 8  # held-out pairs in the examples table
MAX_TOKENS = 48  # longest sentence, in tokens, the translator reads (file pairs beyond it are skipped)
# Words a learner can try first when a sentence has words the generated corpus lacks.
HINT_WORDS = ("the", "a", "my", "cat", "house", "car", "red", "small", "white", "is", "sees",
              "seventy-one", "march")


def ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: list[list[str]], references: list[list[str]], max_n: int = 4) -> float:
    """Corpus-level BLEU in 0..1, one reference per sentence:

        BLEU = BP * exp(mean over n = 1..4 of log p_n),  BP = min(1, exp(1 - r / c))

    p_n is the share of the translations' n-grams that also occur in the reference (each
    reference n-gram can be matched as often as it occurs there, no more), counted over
    the whole corpus; c and r are the total lengths of the translations and references,
    and BP penalises translations that are too short (precision alone would reward saying
    little). Smoothing: p_n for n >= 2 is (matches + 1) / (n-grams + 1), so one sentence
    with no matching 4-gram does not make the whole score 0 (Lin and Och, 2004). With no
    matching word at all the score is 0."""
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
        for n in range(1, max_n + 1):
            h, r = ngrams(hyp, n), ngrams(ref, n)
            matches[n - 1] += sum(min(count, r[g]) for g, count in h.items())
            totals[n - 1] += sum(h.values())
    if hyp_len == 0 or matches[0] == 0:
        return 0.0
    log_p = sum(math.log((matches[i] + (i > 0)) / (totals[i] + (i > 0))) for i in range(max_n)) / max_n
    brevity = min(1.0, math.exp(1 - ref_len / hyp_len))
    return brevity * math.exp(log_p)


def pad_batch(rows: list[list[int]], device) -> torch.Tensor:
    """Id lists -> (N, longest) long tensor, padded at the end with PAD."""
    width = max(len(r) for r in rows)
    return torch.tensor([r + [Vocab.PAD] * (width - len(r)) for r in rows], dtype=torch.long, device=device)


class TranslatorRecipe(Recipe):
    checkpointed = ("model", "opt", "data_gen")  # plus the step count and vocabularies (state_dict)

    def __init__(self, ctx: RunContext, cfg: TranslatorConfig):
        # One CPU thread. Measured on a 2-core machine that other programs kept busy (load
        # about 2): a step of the default preset took 56-65 ms on one thread and 44-50 ms on
        # two, but at load 3 to 4 two threads took 160 ms against one thread's 60, and
        # translating one sentence (many tiny operations) took seconds instead of milliseconds.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, cpu_threads=1, view_interval=3.0)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # batches; checkpointed
        self.steps_done = 0  # drives the learning-rate schedule; checkpointed
        self.base_lr = cfg.lr
        train: list[tuple[str, str]] = []
        self.heldout: list[tuple[str, str]] = []
        if cfg.dataset == "generated":
            # The vocabularies come from the generator's word lists, not from the data: a
            # checkpoint can be loaded (need_data False) without generating anything.
            self.src_vocab, self.tgt_vocab = generated_vocabs()
            self.hint_words = HINT_WORDS
            if ctx.need_data:
                ctx.log(f"generating {cfg.train_size:,} English-French pairs (numbers, dates, sentences)")
                train, self.heldout = make_split(cfg.train_size, cfg.seed)
        elif ctx.need_data:
            pairs = load_pairs_tsv(cfg.data_path)
            kept = [(en, fr) for en, fr in pairs if max(len(tokenize(en)), len(tokenize(fr))) <= MAX_TOKENS]
            if len(kept) < len(pairs):
                ctx.log(f"skipped {len(pairs) - len(kept):,} pairs longer than {MAX_TOKENS} tokens")
            train, self.heldout = split_pairs(kept, cfg.seed)
            self.src_vocab = Vocab.fit(en for en, _ in train)
            self.tgt_vocab = Vocab.fit(fr for _, fr in train)
            common = Counter(t for en, _ in train for t in tokenize(en)).most_common(len(HINT_WORDS))
            self.hint_words = tuple(t for t, _ in common)
        else:  # the learner's file is not read: the vocabularies come with the checkpoint
            self.src_vocab = self.tgt_vocab = Vocab([])
            self.hint_words = ()
        self._build()
        # What the views translate: the first held-out pair until the learner types a sentence.
        self.current: tuple[str, str | None] | None = self.heldout[0] if self.heldout else None
        self.request = 0  # the number of the learner's request that set it (0: none yet)
        self.references = dict(train + self.heldout)  # a typed sentence's reference, when known
        self.eval_pairs = self.heldout[:N_EVAL]
        self.examples = self.heldout[:N_EXAMPLES]
        if ctx.need_data:
            self.train_src, self.train_tgt = self._tensors(train)
            self.train_size = len(train)
            ctx.log(f"{len(train):,} training and {len(self.heldout):,} held-out pairs; vocabulary "
                    f"{len(self.src_vocab):,} English and {len(self.tgt_vocab):,} French tokens")

    def _build(self) -> None:
        """The model and optimiser for the current vocabularies."""
        cfg, dev = self.cfg, self.ctx.device
        self.args = TranslatorArgs(src_vocab=len(self.src_vocab), tgt_vocab=len(self.tgt_vocab), d_model=cfg.width,
                                   heads=cfg.heads, layers=cfg.layers, ff=cfg.ff, dropout=cfg.dropout,
                                   pad_id=Vocab.PAD)
        self.model = Translator(self.args).to(dev)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01,
                                     fused=fast_path(dev))

    def _tensors(self, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """English ids (N, S) and French ids framed as BOS ... EOS (N, T), padded, on the device."""
        src = [self.src_vocab.encode(en) for en, _ in pairs]
        tgt = [[Vocab.BOS] + self.tgt_vocab.encode(fr) + [Vocab.EOS] for _, fr in pairs]
        return pad_batch(src, self.ctx.device), pad_batch(tgt, self.ctx.device)

    # -- training --
    def _lr(self) -> float:
        """Linear warmup to lr, then a cosine decay to a tenth of it at the last step."""
        return warmup_cosine(self.steps_done, self.base_lr, self.cfg.warmup, self.cfg.steps)

    def loss(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the decoder reads BOS y1 ... yn and must predict y1 ... yn EOS,
        every position at once; the loss is the mean cross-entropy over real tokens
        (padding is ignored)."""
        with autocast(self.ctx.device):
            logits = self.model(src, tgt[:, :-1])  # (B, T-1, V)
        return F.cross_entropy(logits.float().flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=Vocab.PAD)

    def train_step(self) -> dict[str, torch.Tensor]:
        lr = self._lr()
        for group in self.opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        loss = self.loss(self.train_src[idx], self.train_tgt[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.steps_done += 1
        return {"train/loss": loss.detach()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            self.base_lr = float(value)  # the schedule scales it from the next step on
        elif key == "beam":
            self.cfg.beam = int(value)  # read by the next translation
        else:
            raise KeyError(key)

    # -- translating --
    def max_out(self, src_len: int) -> int:
        """The most tokens a translation may have: French rarely needs twice the English."""
        return min(MAX_TOKENS, 2 * src_len + 8)

    def translate_ids(self, ids: list[int], beam: int) -> list[int]:
        """One sentence: greedy with beam 1, beam search otherwise. French ids, no BOS/EOS."""
        src = torch.tensor(ids, dtype=torch.long, device=self.ctx.device)
        with autocast(self.ctx.device):
            if beam > 1:
                return beam_search(self.model, src, Vocab.BOS, Vocab.EOS, self.max_out(len(ids)), beam)
            out = greedy_decode(self.model, src[None], Vocab.BOS, Vocab.EOS, self.max_out(len(ids)))[0].tolist()
        return out[:out.index(Vocab.EOS)] if Vocab.EOS in out else out

    def translate_batch(self, src: torch.Tensor, max_len: int) -> list[str]:
        """Greedy translations of a padded batch (N, S), at most max_len tokens each, as text."""
        with autocast(self.ctx.device):
            out = greedy_decode(self.model, src, Vocab.BOS, Vocab.EOS, max_len)
        return [self.tgt_vocab.decode(row) for row in out.tolist()]

    @torch.no_grad()
    def alignment(self, src_ids: list[int], out_ids: list[int]) -> dict:
        """The decoder's cross-attention while writing ``out_ids``: one teacher-forced pass
        over BOS + the translation, in fp32. Row i is the query that wrote output token i,
        column j an English token; maps[layer][head] is that matrix, row-major, rounded to
        3 decimals, each row summing to 1."""
        dev = self.ctx.device
        src = torch.tensor([src_ids], dtype=torch.long, device=dev)
        tgt_in = torch.tensor([[Vocab.BOS] + out_ids], dtype=torch.long, device=dev)
        memory, src_mask = self.model.encode(src)
        _, maps = self.model.decode(tgt_in, memory, src_mask, need_weights=True)
        n = len(out_ids)  # the last position (which wrote EOS) is left out
        return {"title": "cross-attention", "rows": [self.tgt_vocab.words[i] for i in out_ids],
                "cols": [self.src_vocab.words[i] for i in src_ids],
                "maps": [[[[round(v, 3) for v in row] for row in head[:n]] for head in layer[0].tolist()]
                         for layer in maps]}

    @torch.no_grad()
    def translation(self, source: str, reference: str | None) -> Artifact:
        """The "translation" artifact for one sentence, with the current beam setting. It
        carries the number of the request that chose the sentence, so the studio can tell
        a periodic refresh of the learner's sentence from an answer to an older request."""
        self.model.eval()
        try:
            ids = self.src_vocab.encode(source)
            t0 = time.perf_counter()
            out = self.translate_ids(ids, self.cfg.beam)
            seconds = time.perf_counter() - t0
            data = {"source": source, "output": self.tgt_vocab.decode(out), "reference": reference,
                    "beam": self.cfg.beam, "seconds": round(seconds, 4), "request": self.request,
                    "attention": self.alignment(ids, out)}
        finally:
            self.model.train()
        caption = f"{'greedy' if self.cfg.beam == 1 else f'beam {self.cfg.beam}'} in {seconds * 1000:.0f} ms"
        return Artifact("translation", "data", data, caption)

    def check_sentence(self, text: str) -> str:
        """The learner's sentence, lowercased with single spaces, or a ValueError that says
        what to change."""
        text = " ".join(text.lower().split())
        tokens = tokenize(text)
        if not tokens:
            raise ValueError("type an English sentence to translate, for example: the small red car is fast")
        if len(tokens) > MAX_TOKENS:
            raise ValueError(f"that sentence has {len(tokens)} tokens; the translator takes at most {MAX_TOKENS}")
        unknown = self.src_vocab.unknown(text)
        if unknown:
            known = ", ".join(self.hint_words) or ", ".join(self.src_vocab.words[4:14])
            raise ValueError(f"the model has never seen {'this word' if len(unknown) == 1 else 'these words'}: "
                             f"{', '.join(unknown)}. It knows {len(self.src_vocab) - len(Vocab.SPECIALS):,} "
                             f"English tokens, for example: {known}")
        return text

    def interact(self, name: str, args: dict):
        """``translate``: translate the learner's sentence (args["text"]) with the current
        beam setting; it becomes the sentence the views follow, until the next request."""
        if name != "translate":
            raise ValueError(f"the translator lesson has no {name!r} action; it has 'translate'")
        text = self.check_sentence(str(args.get("text", "")))
        self.current = (text, self.references.get(text))
        self.request = int(args.get("request", 0))
        yield self.translation(*self.current)

    # -- evaluation and views --
    def evaluate(self) -> dict[str, float]:
        """Scores on the fixed held-out subset (see score)."""
        return self.score(self.eval_pairs) if self.eval_pairs else {}

    @torch.no_grad()
    def score(self, pairs: list[tuple[str, str]]) -> dict[str, float]:
        """The teacher-forced loss on ``pairs``, and their greedy translations scored by
        exact match (the whole sentence right) and BLEU. Translations stop one token past
        the longest reference: a longer one is wrong anyway, and an untrained model that
        never writes EOS would otherwise make every early score slow."""
        src, tgt = self._tensors(pairs)  # tgt: BOS, the longest reference, EOS
        self.model.eval()
        try:
            val = self.loss(src, tgt).item()
            outputs = self.translate_batch(src, max_len=tgt.shape[1])
        finally:
            self.model.train()
        refs = [fr for _, fr in pairs]
        exact = sum(o == r for o, r in zip(outputs, refs)) / len(refs)
        return {"val/loss": val, "quality/exact_match": exact,
                "quality/bleu": corpus_bleu([tokenize(o) for o in outputs], [tokenize(r) for r in refs])}

    @torch.no_grad()
    def samples(self) -> list[Artifact]:
        out = [self.translation(*self.current)] if self.current else []
        if self.examples:
            self.model.eval()
            try:
                outputs = [self.tgt_vocab.decode(self.translate_ids(self.src_vocab.encode(en), self.cfg.beam))
                           for en, _ in self.examples]
            finally:
                self.model.train()
            rows = [{"source": en, "reference": fr, "output": o, "correct": o == fr}
                    for (en, fr), o in zip(self.examples, outputs)]
            right = sum(r["correct"] for r in rows)
            out.append(Artifact("examples", "data", {"rows": rows},
                                f"{right}/{len(rows)} held-out sentences translated exactly"))
        return out

    def sample_images(self, n, generator):
        raise ValueError("the translator makes text, not images; use the Translate tab")

    # -- checkpoints --
    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done,
                "vocab": {"en": list(self.src_vocab.words), "fr": list(self.tgt_vocab.words)}}

    def load_state_dict(self, state: dict) -> None:
        vocab = state["vocab"]
        if vocab["en"] != self.src_vocab.words or vocab["fr"] != self.tgt_vocab.words:
            if self.ctx.need_data:
                raise CheckpointError("the training pairs have changed since this checkpoint was saved (the "
                                      "vocabulary differs); start a new run")
            # Sampling only: take the checkpoint's vocabularies and build the model to match.
            self.src_vocab, self.tgt_vocab = Vocab(vocab["en"]), Vocab(vocab["fr"])
            self._build()
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])


RECIPE = TranslatorRecipe
