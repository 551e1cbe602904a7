"""A vector-quantised autoencoder (VQ-VAE) and the prior that makes it generate.

Read top to bottom: the encoder turns a 28x28 image into a 7x7 grid of vectors; the
quantiser snaps every vector to the nearest of K codebook vectors, so the image becomes 49
whole numbers (code indices); the decoder draws the image back from the snapped vectors.
`vq_loss` adds the three terms that train it. The codes are then a sequence of 49 tokens,
and the GPT of engine/models/gpt.py learns their distribution: `prior_batch` makes its
inputs and targets, `sample_codes` draws a new grid code by code, the decoder paints it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from engine.models.gpt import GPT, next_token_probs
from engine.models.vae import down_convs, up_convs

GRID = 7  # the code grid is GRID x GRID: 28 pixels halved twice


@dataclass
class VQVAEArgs:
    codes: int = 64  # K, the codebook's size: each grid cell holds one of K codes
    code_dim: int = 8  # D, the length of every code vector
    width: int = 32  # channels after the first conv; the second conv doubles it
    channels: int = 1  # image channels (1 for digits)


class VQEncoder(nn.Module):
    """x -> z_e: one D-vector per cell of the 7x7 grid (the VAE's two strided convs, then
    a 3x3 conv that mixes neighbouring cells and a 1x1 conv down to D channels)."""

    def __init__(self, a: VQVAEArgs):
        super().__init__()
        w = a.width
        self.body = nn.Sequential(
            *down_convs(a.channels, w),  # (B, 2w, 7, 7)
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * w, a.code_dim, 1),  # (B, D, 7, 7)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, D, 7, 7)


class VQDecoder(nn.Module):
    """z_q -> pixels: a 3x3 conv up to 2w channels, then the VAE's transposed convs. Their
    outputs are the pixel values themselves, not logits as in the VAE: the loss is a
    squared error, which a sigmoid on top could leave stuck where the sigmoid is flat
    (decode clamps them to [0, 1] for showing)."""

    def __init__(self, a: VQVAEArgs):
        super().__init__()
        w = a.width
        self.body = nn.Sequential(
            nn.Conv2d(a.code_dim, 2 * w, 3, padding=1),  # (B, 2w, 7, 7)
            nn.SiLU(),
            *up_convs(w, a.channels),  # (B, C, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)  # (B, C, 28, 28)


class Quantiser(nn.Module):
    """The codebook: K vectors of length D. Every encoder vector is replaced by its nearest
    code; the index of that code is what the image becomes."""

    def __init__(self, a: VQVAEArgs):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(a.codes, a.code_dim))  # (K, D)
        # Buffers travel in the state dict (so in checkpoints) but are not trained:
        self.register_buffer("ready", torch.tensor(False))  # seeded from encoder outputs yet?
        self.register_buffer("idle", torch.zeros(a.codes, dtype=torch.long))  # steps since each was used

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, H, W) -> (B, H, W) code indices: argmin_k ||z - e_k||^2, computed as
        ||z||^2 - 2 z.e_k + ||e_k||^2 (one matrix product instead of B*H*W*K differences)."""
        flat = z.permute(0, 2, 3, 1).flatten(0, 2)  # (B*H*W, D)
        e = self.codebook
        dist = flat.square().sum(1, keepdim=True) - 2 * flat @ e.T + e.square().sum(1)  # (B*H*W, K)
        B, _, H, W = z.shape
        return dist.argmin(1).view(B, H, W)

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, H, W) code indices -> (B, D, H, W) code vectors."""
        return self.codebook[idx].permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z_e (B, D, H, W) -> (z_st, z_q, idx).

        z_q is the nearest code at every cell. argmin has no gradient, so the decoder is
        fed z_st = z_e + sg(z_q - z_e): its value is z_q, but backprop sees the identity
        and copies the decoder's gradient at z_q onto z_e (the straight-through estimator;
        sg = stop gradient, .detach())."""
        idx = self.nearest(z_e)
        z_q = self.lookup(idx)  # (B, D, H, W)
        z_st = z_e + (z_q - z_e).detach()
        return z_st, z_q, idx

    @torch.no_grad()
    def seed(self, z_e: torch.Tensor, generator: torch.Generator) -> None:
        """Start the codebook on K encoder vectors picked at random (a random codebook
        would sit far from where the encoder's outputs lie, and most codes would never
        be nearest to anything)."""
        flat = z_e.detach().permute(0, 2, 3, 1).flatten(0, 2)  # (N, D)
        pick = torch.randint(0, len(flat), (len(self.codebook),), generator=generator).to(flat.device)
        self.codebook.copy_(flat[pick])
        self.ready.fill_(True)

    @torch.no_grad()
    def restart_idle(self, z_e: torch.Tensor, idx: torch.Tensor, after: int, generator: torch.Generator) -> int:
        """Count how long each code has gone unused; move every code unused for ``after``
        steps onto an encoder vector of this batch, picked at random, where it will be
        nearest to something. Returns how many codes moved (0 = none, or after = 0)."""
        used = torch.bincount(idx.flatten(), minlength=len(self.codebook)) > 0  # (K,)
        self.idle.add_(1).masked_fill_(used, 0)
        dead = (self.idle >= after).nonzero().flatten() if after > 0 else self.idle[:0]
        if len(dead):
            flat = z_e.detach().permute(0, 2, 3, 1).flatten(0, 2)  # (N, D)
            pick = torch.randint(0, len(flat), (len(dead),), generator=generator).to(flat.device)
            self.codebook[dead] = flat[pick]
            self.idle[dead] = 0
        return len(dead)


class VQVAE(nn.Module):
    def __init__(self, a: VQVAEArgs):
        super().__init__()
        self.args = a
        self.encoder = VQEncoder(a)
        self.quantiser = Quantiser(a)
        self.decoder = VQDecoder(a)

    def forward(self, x: torch.Tensor):
        """x (B, C, 28, 28) -> (x_hat (B, C, 28, 28), z_e, z_q (B, D, 7, 7), idx (B, 7, 7))."""
        z_e = self.encoder(x)
        z_st, z_q, idx = self.quantiser(z_e)
        return self.decoder(z_st), z_e, z_q, idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> their grids of code indices (B, 7, 7)."""
        return self.quantiser.nearest(self.encoder(x))

    def decode(self, idx: torch.Tensor) -> torch.Tensor:
        """Grids of code indices (B, 7, 7) -> images in [0, 1]."""
        return self.decoder(self.quantiser.lookup(idx)).clamp(0, 1)


def vq_loss(x_hat: torch.Tensor, x: torch.Tensor, z_e: torch.Tensor, z_q: torch.Tensor,
            beta: float) -> dict[str, torch.Tensor]:
    """The three terms, each summed over one image (its pixels; its grid of code vectors)
    and averaged over the batch:

    recon    = sum (x_hat - x)^2              trains the decoder, and the encoder through z_st
    codebook = sum (sg(z_e) - z_q)^2          pulls each code used toward the vectors it stands for
    commit   = sum (z_e - sg(z_q))^2          keeps the encoder near its codes, so they can follow
    loss     = recon + codebook + beta * commit

    codebook and commit have the same value: the stop gradients (sg, .detach()) send the
    first to the codebook alone and the second to the encoder alone."""
    b = x.shape[0]
    recon = (x_hat.float() - x.float()).square().sum() / b
    codebook = (z_q.float() - z_e.detach().float()).square().sum() / b
    commit = (z_e.float() - z_q.detach().float()).square().sum() / b
    return {"loss": recon + codebook + beta * commit, "recon": recon, "codebook": codebook, "commit": commit}


# -- the prior: a GPT over the grid of codes, read in raster order --

def prior_batch(codes: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grids (B, 7, 7) -> inputs and targets (B, 49) for the GPT. Read row by row, a grid
    is a sequence of 49 codes; the input is a start token then the first 48 codes, the
    target the 49 codes: every position predicts the code that comes next."""
    seq = codes.flatten(1)  # (B, 49)
    first = torch.full_like(seq[:, :1], start)  # the start token: an id no code has (K)
    return torch.cat([first, seq[:, :-1]], 1), seq


@torch.inference_mode()
def sample_codes(prior: GPT, n: int, codes: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """n new grids (n, 7, 7): from the start token, draw each code from the prior's
    distribution given the codes drawn before it (the GPT lesson's next_token_probs, at
    ``temperature``), one position at a time."""
    device = prior.tok_emb.weight.device
    seq = torch.full((n, 1), codes, dtype=torch.long, device=device)  # (n, 1): the start token
    for _ in range(GRID * GRID):
        logits, _, _ = prior(seq)  # (n, t, K + 1)
        probs = next_token_probs(logits[:, -1, :codes], temperature)  # (n, K): the start token is never drawn
        nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)  # (n, 1)
        seq = torch.cat([seq, nxt], 1)
    return seq[:, 1:].view(n, GRID, GRID)
