"""An encoder-decoder Transformer for translation, written to be read.

The **encoder** reads the whole English sentence at once: every word looks at every other
word (self-attention) and becomes a vector that knows its context. The **decoder** writes
the French one token at a time. At each position it looks at the French written so far
(causal self-attention: never ahead) and at the encoder's vectors (cross-attention: "which
English words matter for the next French word?"), then predicts the next token.

Training uses **teacher forcing**: the decoder is fed the reference translation shifted by
one (BOS, y1, y2, ...) and learns to predict (y1, y2, ..., EOS) at every position in one
pass; the causal mask keeps each position from reading the answer it must predict.
Translating a new sentence has no reference, so the decoder feeds back its own tokens:
:func:`greedy_decode` takes the most likely token each time, :func:`beam_search` keeps the
k best partial translations.

Layout: pre-norm residual blocks (x + f(LayerNorm(x))), which train without the careful
warmup the original post-norm Transformer needed; sinusoidal positions; the decoder's
output layer shares its weights with the French token embedding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TranslatorArgs:
    src_vocab: int  # English tokens
    tgt_vocab: int  # French tokens
    d_model: int = 128  # size of every token's vector
    heads: int = 4  # d_model must divide by heads
    layers: int = 2  # encoder layers, and as many decoder layers
    ff: int = 256  # hidden size of each position's feed-forward network
    dropout: float = 0.0
    pad_id: int = 0  # padding token (the same id in both vocabularies)


def sinusoidal_positions(length: int, d_model: int, device=None) -> torch.Tensor:
    """(length, d_model) position codes: PE[p, 2i] = sin(p / 10000^(2i/d)) and
    PE[p, 2i+1] = cos(p / 10000^(2i/d)). Each pair of columns turns at its own speed, so
    every position gets a distinct pattern, and the code of p + k is a rotation of the
    code of p: attention can pick out relative offsets."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class MultiHeadAttention(nn.Module):
    """Each query position mixes the values of the key positions it may see, weighted by
    softmax(q . k / sqrt(d_head)). Several heads do this side by side in slices of the
    width, so one head can follow word order while another matches meaning.

    Self-attention passes the same sequence as ``x`` and ``context``; cross-attention
    passes the decoder's states as ``x`` and the encoder's output as ``context``."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        assert d_model % heads == 0, "d_model must be a multiple of heads"
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(d_model, d_model)  # what each position is looking for
        self.k = nn.Linear(d_model, d_model)  # what each position offers to be found by
        self.v = nn.Linear(d_model, d_model)  # what each position passes on when found
        self.out = nn.Linear(d_model, d_model)  # mixes the heads back together

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, Tq, C), context (B, Tk, C), mask bool broadcastable to (B, heads, Tq, Tk),
        True where a query may look. Returns (B, Tq, C) and, if asked, the weights
        (B, heads, Tq, Tk), each row summing to 1 over the keys it may see."""
        B, Tq, C = x.shape
        Tk = context.shape[1]
        split = lambda t, T: t.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x), Tq), split(self.k(context), Tk), split(self.v(context), Tk)  # (B, H, T, D)
        if need_weights:
            # The equation spelled out, to return the weights for the alignment view.
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
            weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = F.dropout(weights, self.dropout, self.training) @ v
        else:
            # The same computation, fused: the Tq x Tk matrix is never stored.
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, Tq, C)  # heads side by side again
        return self.out(y), weights


class FeedForward(nn.Module):
    """Per position, on its own: widen, ReLU, narrow back."""

    def __init__(self, a: TranslatorArgs):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(a.d_model, a.ff), nn.ReLU(), nn.Linear(a.ff, a.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EncoderLayer(nn.Module):
    """x + SelfAttention(LN(x)), then x + FeedForward(LN(x))."""

    def __init__(self, a: TranslatorArgs):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(a.d_model), nn.LayerNorm(a.d_model)
        self.attn = MultiHeadAttention(a.d_model, a.heads, a.dropout)
        self.ff = FeedForward(a)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, src_mask)[0])
        return x + self.drop(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    """y + CausalSelfAttention(LN(y)), then y + CrossAttention(LN(y), memory), then
    y + FeedForward(LN(y)). Returns the cross-attention weights when asked."""

    def __init__(self, a: TranslatorArgs):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(a.d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(a.d_model, a.heads, a.dropout)
        self.cross_attn = MultiHeadAttention(a.d_model, a.heads, a.dropout)
        self.ff = FeedForward(a)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, causal: torch.Tensor, src_mask: torch.Tensor,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.norm1(y)
        y = y + self.drop(self.self_attn(h, h, causal)[0])
        a, weights = self.cross_attn(self.norm2(y), memory, src_mask, need_weights)
        y = y + self.drop(a)
        return y + self.drop(self.ff(self.norm3(y))), weights


class Translator(nn.Module):
    """English token ids in, logits over the French vocabulary out."""

    def __init__(self, a: TranslatorArgs):
        super().__init__()
        self.args = a
        self.src_embed = nn.Embedding(a.src_vocab, a.d_model)
        self.tgt_embed = nn.Embedding(a.tgt_vocab, a.d_model)
        self.encoder = nn.ModuleList(EncoderLayer(a) for _ in range(a.layers))
        self.decoder = nn.ModuleList(DecoderLayer(a) for _ in range(a.layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(a.d_model), nn.LayerNorm(a.d_model)
        self.head = nn.Linear(a.d_model, a.tgt_vocab, bias=False)
        self.head.weight = self.tgt_embed.weight  # tied: a French token's input and output vectors are one
        # Small embeddings: multiplied by sqrt(d_model) below they come out at unit scale,
        # and the tied output layer starts with logits near 0 (every token about equally likely).
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, std=a.d_model ** -0.5)
        self.drop = nn.Dropout(a.dropout)

    def embed(self, table: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, C): token vector * sqrt(d_model) + position code."""
        T = tokens.shape[1]
        return self.drop(table(tokens) * math.sqrt(self.args.d_model)
                         + sinusoidal_positions(T, self.args.d_model, tokens.device))

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) -> memory (B, S, C) and the source mask (B, 1, 1, S): True on real
        tokens, False on padding, which no query may attend to."""
        src_mask = (src != self.args.pad_id)[:, None, None, :]
        x = self.embed(self.src_embed, src)
        for layer in self.encoder:
            x = layer(x, src_mask)
        return self.enc_norm(x), src_mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor,
               need_weights: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """tgt_in (B, T): BOS and the French so far -> logits (B, T, V) for the token after
        each position, and (if asked) each layer's cross-attention weights (B, H, T, S).
        The causal mask lets position t see positions <= t only. Padding at the end of a
        target needs no mask of its own: it comes after every real token, so the causal
        mask already hides it from them."""
        T = tgt_in.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()  # (T, T)
        y = self.embed(self.tgt_embed, tgt_in)
        maps = []
        for layer in self.decoder:
            y, w = layer(y, memory, causal, src_mask, need_weights)
            maps.append(w)
        return self.head(self.dec_norm(y)), (maps if need_weights else [])

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T, V) for every position of tgt_in at once."""
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)[0]


@torch.no_grad()
def greedy_decode(model: Translator, src: torch.Tensor, bos: int, eos: int, max_len: int) -> torch.Tensor:
    """Translate a batch src (B, S): start from BOS and append the most likely next token
    until every sentence has written EOS or max_len tokens. Returns (B, L) ids without the
    BOS; after a sentence's EOS come padding ids. (The decoder is rerun on the whole prefix
    at each step: simple, and cheap for sentences this short; a key-value cache would keep
    each layer's earlier keys and values instead.)"""
    memory, src_mask = model.encode(src)
    B = src.shape[0]
    ys = torch.full((B, 1), bos, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits = model.decode(ys, memory, src_mask)[0][:, -1]  # (B, V) for the next token
        nxt = logits.argmax(-1).masked_fill(done, model.args.pad_id)
        ys = torch.cat([ys, nxt[:, None]], dim=1)
        done |= nxt == eos
        if bool(done.all()):
            break
    return ys[:, 1:]


@torch.no_grad()
def beam_search(model: Translator, src: torch.Tensor, bos: int, eos: int, max_len: int, k: int) -> list[int]:
    """Translate one sentence src (S,) keeping the k best partial translations (beams).
    Each step extends every beam by every token, scores each candidate by its total
    log-probability, and keeps the best k that have not ended; those that end with EOS are
    set aside. It stops once k have ended (or at max_len) and returns the ended one with the
    best log-probability per token: without dividing by the length, shorter translations
    would win just for having fewer probabilities (each below 1) multiplied together.
    With k = 1 this is greedy decoding. Returns the ids without BOS and EOS."""
    memory, src_mask = model.encode(src[None])  # (1, S, C)
    beams: list[tuple[list[int], float]] = [([bos], 0.0)]  # (tokens, sum of log-probabilities)
    ended: list[tuple[list[int], float]] = []
    for _ in range(max_len):
        n = len(beams)
        ys = torch.tensor([b[0] for b in beams], dtype=torch.long, device=src.device)  # (n, t)
        logits = model.decode(ys, memory.expand(n, -1, -1), src_mask.expand(n, -1, -1, -1))[0][:, -1]
        total = torch.tensor([b[1] for b in beams], device=src.device)[:, None] + logits.float().log_softmax(-1)
        V = total.shape[1]
        # 2k candidates: even if k of them end here, k others can carry on. An ending
        # counts only if it ranks among the best k, as it would with k beams and no spares.
        top = total.flatten().topk(min(2 * k, total.numel()))
        beams = []
        for rank, (score, flat) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
            seq = ys[flat // V].tolist() + [flat % V]
            if flat % V == eos:
                if rank < k:
                    ended.append((seq, score))
            elif len(beams) < k:
                beams.append((seq, score))
        if len(ended) >= k or not beams:
            break
    pool = ended or beams  # nothing ended within max_len: the best unfinished ones
    best = max(pool, key=lambda b: b[1] / (len(b[0]) - 1))  # log-probability per generated token
    return [t for t in best[0][1:] if t != eos]
