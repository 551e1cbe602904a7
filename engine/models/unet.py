"""The noise predictor: a small U-Net for images, and an MLP for 2-D points.

Both answer one question: given a noisy x_t and its timestep t, what noise eps was added?
The answer must come out the same shape as x_t, so the network is an image-to-image map.

A U-Net suits this: an encoder halves the resolution while widening the channels (to see
the whole digit), a decoder doubles it back, and skip connections hand each decoder level
the encoder's features of the same size (so fine detail is not lost on the way down).
Every residual block is told t, through a learned embedding added to its channels: the
same weights must remove a whisper of noise at t = 10 and invent structure at t = 900.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """t (B,) -> (B, dim): sines and cosines of t at dim/2 geometrically spaced frequencies
    (the Transformer's position encoding). Nearby timesteps get similar vectors, far ones
    different vectors, and a network reads it far more easily than the raw number t."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: each image is normalised on its own, so a sample never
    # depends on the others in its batch, and batch size 1 works while sampling.
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResBlock(nn.Module):
    """x -> x + F(x, emb): GroupNorm, SiLU, conv; add the embedding per channel; again."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)  # the timestep (and condition) as one shift per channel
        self.norm2 = _norm(c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity: deep nets train from step 1
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.emb(F.silu(emb))[:, :, None, None]  # (B, c_out, 1, 1) broadcast over H, W
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Every pixel looks at every other: at the lowest resolution (7x7 = 49 positions for
    digits) this is cheap, and it lets one stroke know where the others are."""

    def __init__(self, channels: int, groups: int, heads: int = 4):
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)  # starts as the identity, like the residual blocks
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, HW, C/heads)
        h = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v
        return x + self.out(h.transpose(-1, -2).reshape(B, C, H, W))


class Downsample(nn.Module):
    """Halve H and W with a stride-2 convolution (28 -> 14 -> 7; odd sizes round up)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Back to the size of the matching skip connection: a conv, then nearest-neighbour
    resizing. The conv runs before the resize, at a quarter of the pixels (4x cheaper);
    the next block's convs smooth the copies. Going to an explicit size (not "x2") makes
    7 -> 14 and 4 -> 7 alike."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.conv(x), size=size, mode="nearest")


@dataclass
class UNetArgs:
    channels: int = 1  # image channels: 1 for digits, 3 for colour
    base: int = 32  # channels at full resolution
    mults: tuple[int, ...] = (1, 2, 2)  # channels = base * mult at each level; each level but the last halves H, W
    time_dim: int = 128  # size of the timestep embedding
    cond_dim: int = 0  # size of an optional condition vector (a label, a text embedding); 0: none
    groups: int = 8  # GroupNorm groups (fewer when the channels do not divide)
    attention: bool = True  # self-attention at the lowest resolution


class UNet(nn.Module):
    """(x_t (B, C, H, W), t (B,), cond (B, cond_dim) or None) -> predicted noise (B, C, H, W).

    For digits with the defaults: 28x28x32 -> 14x14x64 -> 7x7x64 (+ attention) and back up.
    Any H, W works (28, 32, 64 ...): the upsampling follows the skip connections' sizes."""

    def __init__(self, args: UNetArgs):
        super().__init__()
        self.args = args
        a = args
        widths = [a.base * m for m in a.mults]
        # The timestep, t -> sinusoids -> MLP: one vector per example, read by every block.
        self.time_mlp = nn.Sequential(nn.Linear(a.time_dim, a.time_dim), nn.SiLU(), nn.Linear(a.time_dim, a.time_dim))
        # A condition joins the same vector: "which noise level" and "what to draw" both
        # shift the channels of every block.
        self.cond_mlp = (nn.Sequential(nn.Linear(a.cond_dim, a.time_dim), nn.SiLU(), nn.Linear(a.time_dim, a.time_dim))
                         if a.cond_dim > 0 else None)
        self.stem = nn.Conv2d(a.channels, a.base, 3, padding=1)

        self.down = nn.ModuleList()  # one ResBlock per level, then a Downsample (not after the last)
        self.downsample = nn.ModuleList()
        c = a.base
        for i, w in enumerate(widths):
            self.down.append(ResBlock(c, w, a.time_dim, a.groups))
            self.downsample.append(Downsample(w) if i < len(widths) - 1 else nn.Identity())
            c = w
        self.mid1 = ResBlock(c, c, a.time_dim, a.groups)
        self.mid_attn = SelfAttention(c, a.groups) if a.attention else nn.Identity()
        self.mid2 = ResBlock(c, c, a.time_dim, a.groups)

        self.up = nn.ModuleList()  # levels in reverse: concat the skip, a ResBlock, then an Upsample
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            self.up.append(ResBlock(c + widths[i], widths[i], a.time_dim, a.groups))
            c = widths[i]
            self.upsample.append(Upsample(c) if i > 0 else nn.Identity())
        self.out_norm = _norm(c, a.groups)
        self.out = nn.Conv2d(c, a.channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # predict eps = 0 at first: the loss starts at about 1
        nn.init.zeros_(self.out.bias)

    def embed(self, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """(B,) timesteps and an optional (B, cond_dim) condition -> (B, time_dim)."""
        emb = self.time_mlp(sinusoidal_embedding(t, self.args.time_dim))
        if cond is not None:
            if self.cond_mlp is None:
                raise ValueError("this UNet has cond_dim = 0: pass cond=None")
            if cond.shape[-1] != self.args.cond_dim:
                raise ValueError(f"cond must be (B, {self.args.cond_dim}), got {tuple(cond.shape)}")
            emb = emb + self.cond_mlp(cond.float())  # None (no condition) adds nothing
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, cond)  # (B, time_dim)
        h = self.stem(x)  # (B, base, H, W)
        skips = []
        for block, down in zip(self.down, self.downsample):
            h = block(h, emb)  # (B, base*mult, H_i, W_i)
            skips.append(h)
            h = down(h)  # (B, base*mult, H_i/2, W_i/2), except at the last level
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)  # (B, c, H_low, W_low)
        for block, up in zip(self.up, self.upsample):
            skip = skips.pop()
            h = block(torch.cat([h, skip], dim=1), emb)  # skip: the encoder's features at this size
            if skips:
                h = up(h, skips[-1].shape[-2:])  # to the next level's size
        return self.out(F.silu(self.out_norm(h)))  # (B, C, H, W)


class PointDenoiser(nn.Module):
    """The same job for 2-D points: (x_t (B, dim), t (B,), cond) -> eps (B, dim).

    A residual MLP; the timestep embedding is added to the hidden units of every block."""

    def __init__(self, dim: int = 2, hidden: int = 128, time_dim: int = 64, blocks: int = 3, cond_dim: int = 0):
        super().__init__()
        self.time_dim, self.cond_dim = time_dim, cond_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.cond_mlp = nn.Linear(cond_dim, hidden) if cond_dim > 0 else None
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        e = self.time_mlp(sinusoidal_embedding(t, self.time_dim))  # (B, hidden)
        if cond is not None:
            if self.cond_mlp is None:
                raise ValueError("this PointDenoiser has cond_dim = 0: pass cond=None")
            e = e + self.cond_mlp(cond.float())
        h = self.inp(x)  # (B, hidden)
        for block in self.blocks:
            h = h + block(F.silu(h + e))  # residual: each block refines the guess, told t
        return self.out(F.silu(h))  # (B, dim)
