"""A conditional generator and critic for RGB faces, trained as a Wasserstein GAN with a
gradient penalty (WGAN-GP).

Read top to bottom: `encode_labels` turns attribute labels into the vector c; the generator
maps (z, c) to an image; the critic scores an (image, c) pair with an unbounded number
(higher = more real); `gradient_penalty` keeps the critic's slope near 1 between real and
generated faces, which is what makes its score an estimate of the Wasserstein distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

# (name, classes) of the attributes the networks are conditioned on, in the order they
# appear in c; matches engine.data.faces.ATTRIBUTE_CLASSES.
ATTRIBUTES = (("glasses", 2), ("hair", 4), ("smiling", 2), ("hat", 2))
LABEL_DIM = sum(k for _, k in ATTRIBUTES)  # 10


def encode_labels(labels: dict[str, torch.Tensor]) -> torch.Tensor:
    """{attribute: int64 (B,)} -> c float (B, 10): one one-hot block per attribute."""
    blocks = [nn.functional.one_hot(labels[name].long(), k).float() for name, k in ATTRIBUTES]
    return torch.cat(blocks, dim=1)


@dataclass
class CWGANArgs:
    size: int = 32  # image size: 32 or 64
    noise_dim: int = 64
    width: int = 32  # channels next to the image; they double at each halving of the size


class Generator(nn.Module):
    """(z, c) -> image in [-1, 1]. The input is z and c side by side, so the first layer
    computes W_z z + W_c c: each attribute adds its own fixed vector to the first feature
    map, and changing a label moves the input along a straight line (latent arithmetic)."""

    def __init__(self, a: CWGANArgs):
        super().__init__()
        levels = {32: 3, 64: 4}[a.size]  # 4x4 doubled this many times reaches the image size
        top = a.width * 2 ** (levels - 1)  # channels at 4x4
        self.top = top
        self.fc = nn.Sequential(
            nn.Linear(a.noise_dim + LABEL_DIM, top * 16, bias=False),  # (B, top*4*4)
            nn.BatchNorm1d(top * 16),
            nn.ReLU(),
        )
        blocks = []
        ch = top
        for _ in range(levels - 1):  # each doubles the size and halves the channels
            blocks += [nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        blocks += [nn.ConvTranspose2d(ch, 3, 4, stride=2, padding=1), nn.Tanh()]  # (B, 3, size, size)
        self.up = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, c], dim=1)).view(-1, self.top, 4, 4)  # (B, top, 4, 4)
        return self.up(h)


class Critic(nn.Module):
    """(image, c) -> score (B,), a projection critic: convolutions turn the image into a
    feature vector h, and the score is w . h + e(c) . h, where e(c) is the sum of one learned
    vector per attribute value. The second term asks "does this face look like it has these
    attributes?", the first "does it look like a face?".

    No batch norm: the gradient penalty is defined per sample, and batch norm would mix the
    samples of a batch; a per-sample layer norm (GroupNorm with one group) takes its place.
    No sigmoid either: a critic gives a score, not a probability."""

    def __init__(self, a: CWGANArgs):
        super().__init__()
        levels = {32: 3, 64: 4}[a.size]
        layers: list[nn.Module] = [nn.Conv2d(3, a.width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = a.width
        for _ in range(levels - 1):  # each halves the size and doubles the channels
            layers += [nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1), nn.GroupNorm(1, ch * 2), nn.LeakyReLU(0.2)]
            ch *= 2
        self.features = nn.Sequential(*layers, nn.Flatten())  # (B, ch*4*4)
        self.score = nn.Linear(ch * 16, 1)
        self.embed = nn.Linear(LABEL_DIM, ch * 16, bias=False)  # c -> e(c): one vector per attribute value

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, F)
        return self.score(h).squeeze(1) + (self.embed(c.to(h.dtype)) * h).sum(1)  # (B,)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     c: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of (||grad_x critic(x_hat, c)||_2 - 1)^2 at random points x_hat on the straight
    lines between real and generated samples (faces here; any shape, and no c for an
    unconditional critic: the MuseGAN lesson's phrases).

    A Wasserstein critic must be 1-Lipschitz (its slope at most 1 everywhere). Checking
    everywhere is impossible; penalising the gradient norm where real and fake meet is
    enough in practice, and softer than clipping the weights."""
    eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)  # one mix per sample
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(x_hat) if c is None else critic(x_hat, c)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # the penalty is trained through
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
