"""A GPT written to be read: a decoder-only Transformer that predicts the next token.

Tokens become vectors (token embedding + position embedding); a stack of blocks mixes
information between positions (causal self-attention: each position looks only at itself
and earlier ones) and transforms each position on its own (an MLP); a final layer norm and
a linear layer, which shares its weights with the token embedding, give the logits for the
next token at every position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTArgs:
    vocab_size: int
    context: int = 128  # the most tokens the model sees at once
    width: int = 128  # size of every token's vector
    layers: int = 4
    heads: int = 4  # width must divide by heads
    dropout: float = 0.0
    causal: bool = True  # False: every position attends to all (an encoder, engine/models/mlm.py)


class CausalSelfAttention(nn.Module):
    """Every position asks a question (query), offers a label (key) and a message (value);
    it reads the messages of earlier positions, weighted by how well their keys match its
    query. Several heads do this side by side, each in its own slice of the width."""

    def __init__(self, a: GPTArgs):
        super().__init__()
        assert a.width % a.heads == 0, "width must be a multiple of heads"
        self.heads = a.heads
        self.qkv = nn.Linear(a.width, 3 * a.width)  # queries, keys and values in one matmul
        self.proj = nn.Linear(a.width, a.width)  # mixes the heads' outputs back together
        self.dropout = a.dropout
        self.causal = a.causal

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, C / heads): each head attends separately.
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        if need_weights:
            weights = attention_weights(q, k, self.causal)
            y = weights @ v
        else:
            # The same computation, fused (flash attention on GPUs): the T x T matrix of
            # weights is never stored, which is what makes long contexts affordable.
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.proj(y), weights


def attention_weights(q: torch.Tensor, k: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) with the causal mask: position i may only attend to j <= i.
    The masked scores are -inf, so after the softmax their weights are exactly 0 and every
    row sums to 1 over the positions it may see. Without the mask (causal=False) every
    position sees every other, before and after it."""
    T = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if not causal:
        return scores.softmax(dim=-1)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


class MLP(nn.Module):
    """Per position: widen 4x, GELU, narrow back. Most of the model's parameters live here."""

    def __init__(self, a: GPTArgs):
        super().__init__()
        self.up = nn.Linear(a.width, 4 * a.width)
        self.down = nn.Linear(4 * a.width, a.width)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, x):
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then x + mlp(norm(x)). The residual
    path carries the signal straight through, so deep stacks still train."""

    def __init__(self, a: GPTArgs):
        super().__init__()
        self.ln1 = nn.LayerNorm(a.width)
        self.attn = CausalSelfAttention(a)
        self.ln2 = nn.LayerNorm(a.width)
        self.mlp = MLP(a)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, x, need_weights: bool = False):
        y, weights = self.attn(self.ln1(x), need_weights)
        x = x + self.drop(y)
        x = x + self.mlp(self.ln2(x))
        return x, weights


class GPT(nn.Module):
    def __init__(self, a: GPTArgs):
        super().__init__()
        self.args = a
        self.tok_emb = nn.Embedding(a.vocab_size, a.width)
        self.pos_emb = nn.Embedding(a.context, a.width)  # learned: one vector per position
        self.drop = nn.Dropout(a.dropout)
        self.blocks = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.ln_f = nn.LayerNorm(a.width)
        self.head = nn.Linear(a.width, a.vocab_size, bias=False)
        # Weight tying: reading a token in and predicting it out use the same vectors,
        # which saves vocab x width parameters and helps small models.
        self.head.weight = self.tok_emb.weight
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "down.weight")):
                # Each block adds to the residual stream twice; shrinking these keeps the
                # stream's variance from growing with depth.
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * a.layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, need_weights: bool = False):
        """idx: (B, T) token ids, T <= context. Returns the logits (B, T, vocab), the mean
        cross-entropy against ``targets`` if given, and with ``need_weights`` every layer's
        attention weights (B, heads, T, T)."""
        x, maps = self.features(idx, need_weights)
        logits = self.head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss, (maps if need_weights else None)

    def features(self, idx: torch.Tensor, need_weights: bool = False):
        """The final normalised vector of every position (B, T, width), before the head, and
        every layer's attention weights (None each without ``need_weights``)."""
        B, T = idx.shape
        if T > self.args.context:
            raise ValueError(f"{T} tokens given; the model's context is {self.args.context}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        maps = []
        for block in self.blocks:
            x, weights = block(x, need_weights)
            maps.append(weights)
        return self.ln_f(x), maps


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                     top_p: float = 1.0) -> torch.Tensor:
    """The distribution the next token is drawn from, given the last position's logits (V,)
    (or a batch of them, (N, V): each row is filtered on its own).

    temperature divides the logits: below 1 sharpens the distribution, above 1 flattens it.
    top_k keeps only the k most likely tokens (0 = all). top_p keeps the smallest set of the
    most likely tokens whose probabilities add up to at least p (nucleus sampling). What is
    left is renormalised. temperature 0 means greedy: all the mass on the most likely token."""
    logits = logits.float()
    if temperature <= 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        before = sorted_p.cumsum(-1) - sorted_p  # mass of the tokens ranked above each one
        drop = before >= top_p  # the top token always stays (nothing ranks above it)
        probs = probs.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs
