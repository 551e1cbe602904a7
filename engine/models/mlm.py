"""A masked language model (BERT-style) written to be read: an encoder that fills in blanks.

It is the GPT's network (engine/models/gpt.py: embeddings, blocks, final norm, tied head)
with one switch turned: attention is not causal, so every position reads the whole
sentence, the words after it as well as those before. Predicting the next token would
then be cheating (the answer is in the input), so the task changes instead: hide some of
the words behind a [MASK] token and predict them from what surrounds them.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from engine.models.gpt import GPT, GPTArgs

IGNORE = -100  # a target the cross-entropy skips (F.cross_entropy's ignore_index)
MASK_RATE = 0.15  # the share of words chosen to be predicted in every sequence
# Of the chosen words: this share becomes [MASK], the same share of the rest a random
# word, and what is left stays itself (BERT's 80% / 10% / 10%).
REPLACE_MASK = 0.8
REPLACE_RANDOM = 0.5  # of the remaining 20%: half random (10%), half unchanged (10%)
POSITION_SCALE = 0.1  # the starting position vectors' size (the token vectors start at about 0.02)


def sinusoids(T: int, C: int) -> torch.Tensor:
    """(T, C): position p's vector, sin and cos of p at wavelengths from 2 pi to 10000 x 2 pi."""
    p = torch.arange(T, dtype=torch.float32)[:, None]  # (T, 1)
    freq = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float32) / C)  # (C / 2,)
    out = torch.zeros(T, C)
    out[:, 0::2] = (p * freq).sin()
    out[:, 1::2] = (p * freq).cos()[:, : C // 2]
    return out


class MaskedLM(GPT):
    """An encoder: the GPT built with ``causal=False``. The head (the final layer norm and
    the linear layer that shares its weights with the token embedding) is the MLM head:
    at every position, logits over the vocabulary for the word that belongs there.

    ``forward(idx)`` is the GPT's: logits (B, T, V) at every position (and the attention
    weights, with ``need_weights``)."""

    def __init__(self, a: GPTArgs):
        super().__init__(replace(a, causal=False))
        # Without the causal mask nothing in the network tells left from right but the
        # position vectors, and the GPT's start as small noise: the model then spends its
        # first hundreds of steps guessing the commonest word wherever a blank is. Starting
        # them as sinusoids (still learned), PE(p, 2i) = sin(p / 10000^(2i/C)) and
        # PE(p, 2i+1) = cos(...), makes "the word just before me" a fixed linear offset
        # that attention can find early.
        with torch.no_grad():
            self.pos_emb.weight.copy_(POSITION_SCALE * sinusoids(a.context, a.width))

    def masked_loss(self, idx: torch.Tensor, targets: torch.Tensor):
        """Logits (N, V) at the N positions whose target is not IGNORE, and their mean
        cross-entropy: loss = -mean over chosen i of log p(x_i | the corrupted sequence).
        The head's vocabulary-wide product is computed at those positions only (about one
        in ten), not at all of them: most of a step's work is saved."""
        x, _ = self.features(idx)  # (B, T, C): every position has read the whole sequence
        chosen = targets != IGNORE  # (B, T)
        logits = self.head(x[chosen])  # (N, V)
        return logits, F.cross_entropy(logits.float(), targets[chosen])


def mask_tokens(ids: torch.Tensor, eligible: torch.Tensor, mask_id: int, random_ids: torch.Tensor,
                generator: torch.Generator, rate: float = MASK_RATE, corrupt: bool = True):
    """BERT's masking of a batch of token ids (B, T).

    Each ``eligible`` token (B, T) is chosen with probability ``rate`` (and at least one per
    row, so every sequence counts). A chosen token becomes [MASK] (80%), a random token from
    ``random_ids`` (10%), or stays itself (10%): the model cannot learn that only [MASK]
    needs predicting, and must keep a useful vector for every word it reads. With
    ``corrupt=False`` every chosen token becomes [MASK] (for measuring).

    Returns (inputs, targets, chosen): targets hold the original id where chosen and IGNORE
    elsewhere, so the loss counts the chosen tokens only. The draws come from ``generator``
    (on the CPU), so a batch depends only on its seed."""
    shape, dev = ids.shape, ids.device
    eligible = eligible.cpu()
    u = torch.rand(shape, generator=generator)  # (B, T)
    chosen = (u < rate) & eligible
    first = u.masked_fill(~eligible, 2.0).argmin(1)  # each row's likeliest eligible token
    rows = torch.arange(shape[0])
    chosen[rows, first] |= eligible[rows, first]
    how = torch.rand(shape, generator=generator)  # which of the three fates
    if not corrupt:
        how.zero_()
    to_mask = chosen & (how < REPLACE_MASK)
    to_random = chosen & (how >= REPLACE_MASK) & (how < REPLACE_MASK + (1 - REPLACE_MASK) * REPLACE_RANDOM)
    pick = torch.randint(len(random_ids), shape, generator=generator)
    chosen, to_mask, to_random = chosen.to(dev), to_mask.to(dev), to_random.to(dev)
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(to_random, random_ids.to(dev)[pick.to(dev)], inputs)
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    return inputs, targets, chosen
