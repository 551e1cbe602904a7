"""Latent diffusion: an autoencoder squeezes a 28x28 image into a small grid of numbers, and
the diffusion lesson's U-Net learns to draw that grid instead of the pixels.

Read top to bottom: the encoder maps an image to the mean and log-variance of a Gaussian
over a latent grid (C, 7, 7); the decoder draws the image back from a grid; `ae_loss` is
the VAE's loss with a very light KL term. `LatentScaler` shifts and scales the latents to
about unit variance (diffusion's noise has variance 1, so the signal must be on the same
scale). `VQLatents` lets a finished VQ-VAE run of this studio serve as the autoencoder.

The network, the noise schedule and the samplers are the diffusion lesson's own
(engine/models/unet.py and engine/models/diffusion.py): nothing about diffusion changes
when the data are latents instead of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.vae import LOGVAR_BOUND, down_convs, up_convs

SIDE = 7  # the latent grid is SIDE x SIDE: 28 pixels halved twice by down_convs


@dataclass
class LatentAEArgs:
    latent_channels: int = 4  # C: numbers per cell of the 7x7 grid (4 x 49 = 196 for 784 pixels)
    width: int = 32  # channels after the first conv; the second conv doubles it
    channels: int = 1  # image channels (1 for digits)


class LatentEncoder(nn.Module):
    """x -> (mu, logvar), each (B, C, 7, 7): a Gaussian per cell and channel. The VAE's two
    strided convs, then a 3x3 conv that mixes neighbouring cells and a 1x1 conv to 2C."""

    def __init__(self, a: LatentAEArgs):
        super().__init__()
        w = a.width
        self.body = nn.Sequential(
            *down_convs(a.channels, w),  # (B, 2w, 7, 7)
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * w, 2 * a.latent_channels, 1),  # (B, 2C, 7, 7)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.body(x).chunk(2, dim=1)  # (B, C, 7, 7) each
        return mu, logvar.clamp(-LOGVAR_BOUND, LOGVAR_BOUND)


class LatentDecoder(nn.Module):
    """z (B, C, 7, 7) -> pixel logits (B, channels, 28, 28): a 3x3 conv up to 2w channels,
    then the VAE's transposed convs."""

    def __init__(self, a: LatentAEArgs):
        super().__init__()
        w = a.width
        self.body = nn.Sequential(
            nn.Conv2d(a.latent_channels, 2 * w, 3, padding=1),  # (B, 2w, 7, 7)
            nn.SiLU(),
            *up_convs(w, a.channels),  # (B, channels, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class LatentAutoencoder(nn.Module):
    """A VAE whose code is a grid, not a vector: the U-Net (a convolutional network) needs
    neighbouring numbers to describe neighbouring parts of the image."""

    def __init__(self, a: LatentAEArgs):
        super().__init__()
        self.args = a
        self.encoder = LatentEncoder(a)
        self.decoder = LatentDecoder(a)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.args.latent_channels, SIDE, SIDE)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x -> (logits, mu, logvar); the decoder sees z = mu + sigma * eps (the
        reparameterisation trick of the VAE lesson)."""
        mu, logvar = self.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z), mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, channels, 28, 28) in [0, 1] -> latents (B, C, 7, 7): the mean, so an
        image always gets the same latent."""
        return self.encoder(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1]."""
        return torch.sigmoid(self.decoder(z))


def ae_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
            kl_weight: float) -> dict[str, torch.Tensor]:
    """The VAE's negative ELBO per image, with a light KL weight:

    recon = sum over pixels of BCE(sigmoid(logits), x)
    kl    = -1/2 * sum over the C*7*7 latents of (1 + logvar - mu^2 - exp(logvar))
    loss  = recon + kl_weight * kl

    With kl_weight = 1 (the VAE lesson) the latents would be pushed to carry as little as
    possible; here the autoencoder only has to compress, and diffusion will learn the
    latents' distribution, whatever it is. A small weight just keeps them from spreading
    over wildly different scales (Rombach et al. use 1e-6 with their perceptual loss)."""
    b = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="sum") / b
    kl = -0.5 * torch.sum(1 + logvar.float() - mu.float().pow(2) - logvar.float().exp()) / b
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}


class LatentScaler(nn.Module):
    """Latents to diffusion's scale and back:

        u = (z - shift) * scale,      z = u / scale + shift

    shift: each channel's mean; scale: 1 / the standard deviation of what is left, one
    number for all channels, so their relative sizes are kept. Fitted once on the encoded
    training set; then the data the U-Net sees have mean 0 and variance 1, as the noise
    does. Stable Diffusion does the same with one constant (0.18215) it measured once."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(1, channels, 1, 1))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, z: torch.Tensor) -> None:
        """z (N, C, H, W): the latents of the training images."""
        self.shift.copy_(z.mean(dim=(0, 2, 3), keepdim=True))
        self.scale.fill_(1.0 / (z - self.shift).std().clamp(min=1e-6).item())
        self.fitted.fill_(True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.shift) * self.scale

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        return u / self.scale + self.shift


class VQLatents(nn.Module):
    """A trained VQ-VAE (engine/models/vqvae.py) as the autoencoder of latent diffusion.

    The latent is the encoder's output z_e (D, 7, 7) before it is snapped to the codebook:
    continuous, so it can be noised. To decode, a drawn latent is snapped to the nearest
    codes first, so the decoder sees the kind of input it was trained on (Rombach et al.
    do the same with their VQ-regularised autoencoders)."""

    def __init__(self, vqvae: nn.Module):
        super().__init__()
        self.vqvae = vqvae

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.vqvae.args.code_dim, SIDE, SIDE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.vqvae.encoder(x)  # (B, D, 7, 7)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        q = self.vqvae.quantiser
        return self.vqvae.decoder(q.lookup(q.nearest(z.float()))).clamp(0, 1)
