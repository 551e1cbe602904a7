"""A convolutional variational autoencoder for 28x28 single-channel images.

Read top to bottom: the encoder maps an image to the mean and log-variance of a Gaussian
over the latent code z, the reparameterisation trick draws z so gradients flow, the decoder
maps z back to pixel logits, and `vae_loss` adds the reconstruction term to the KL term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VAEArgs:
    latent_dim: int = 4  # size of z
    width: int = 32  # channels after the first conv; the second conv doubles it
    channels: int = 1  # image channels (1 for digits)


LOGVAR_BOUND = 10.0


def down_convs(channels: int, w: int) -> list[nn.Module]:
    """Two stride-2 convolutions, each halving the side: (B, C, 28, 28) -> (B, 2w, 7, 7).
    Also the VQ-VAE's encoder (engine/models/vqvae.py)."""
    return [
        nn.Conv2d(channels, w, 4, stride=2, padding=1),  # (B, w, 14, 14)
        nn.SiLU(),
        nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),  # (B, 2w, 7, 7)
        nn.SiLU(),
    ]


def up_convs(w: int, channels: int) -> list[nn.Module]:
    """The mirror of down_convs: (B, 2w, 7, 7) -> (B, C, 28, 28), one number per pixel
    (the VAE reads them as logits)."""
    return [
        nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1),  # (B, w, 14, 14)
        nn.SiLU(),
        nn.ConvTranspose2d(w, channels, 4, stride=2, padding=1),  # (B, C, 28, 28)
    ]


class Encoder(nn.Module):
    """x -> (mu, logvar): the parameters of q(z | x), a diagonal Gaussian."""

    def __init__(self, a: VAEArgs):
        super().__init__()
        w = a.width
        self.conv = nn.Sequential(*down_convs(a.channels, w), nn.Flatten())  # (B, 2w*49)
        self.hidden = nn.Sequential(nn.Linear(2 * w * 49, 256), nn.SiLU())
        # Two heads: the mean, and the log of the variance (any real number, so no
        # positivity constraint is needed; sigma = exp(logvar / 2)).
        self.mu = nn.Linear(256, a.latent_dim)
        self.logvar = nn.Linear(256, a.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.conv(x))  # (B, 256)
        # Bounded far outside what training reaches (sigma from e^-5 to e^5), so one step
        # of a too-high learning rate cannot overflow exp() and turn the loss into NaN.
        return self.mu(h), self.logvar(h).clamp(-LOGVAR_BOUND, LOGVAR_BOUND)  # (B, D), (B, D)


class Decoder(nn.Module):
    """z -> pixel logits; sigmoid(logits) is the mean of p(x | z) per pixel."""

    def __init__(self, a: VAEArgs):
        super().__init__()
        w = a.width
        self.w = w
        self.fc = nn.Sequential(nn.Linear(a.latent_dim, 256), nn.SiLU(), nn.Linear(256, 2 * w * 49), nn.SiLU())
        self.deconv = nn.Sequential(*up_convs(w, a.channels))  # (B, C, 28, 28)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, 2 * self.w, 7, 7)  # (B, 2w, 7, 7)
        return self.deconv(h)  # (B, C, 28, 28) logits


class VAE(nn.Module):
    def __init__(self, a: VAEArgs):
        super().__init__()
        self.args = a
        self.encoder = Encoder(a)
        self.decoder = Decoder(a)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I).

        Sampling z directly would block gradients; writing the sample as a deterministic
        function of (mu, sigma) plus outside noise lets backprop reach the encoder.
        """
        eps = torch.randn_like(mu)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x)
        z = self.reparameterize(mu, logvar)
        return self.decoder(z), mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes -> images in [0, 1]."""
        return torch.sigmoid(self.decoder(z))


def vae_loss(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float
) -> dict[str, torch.Tensor]:
    """Negative ELBO per image, with the KL term weighted by beta.

    recon = -log p(x | z)        = sum over pixels of BCE(sigmoid(logits), x)
    kl    = KL(q(z|x) || N(0, I)) = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))
    loss  = recon + beta * kl     (beta = 1 is the plain ELBO; larger trades detail for a smoother latent space)
    """
    b = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="sum") / b
    kl = -0.5 * torch.sum(1 + logvar.float() - mu.float().pow(2) - logvar.float().exp()) / b
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}
