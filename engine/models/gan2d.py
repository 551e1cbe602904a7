"""A generator and a discriminator for 2-D points: two small multilayer perceptrons.

The generator maps noise z to a point (x, y); the discriminator maps a point to one logit,
the log-odds that the point came from the real data. They are trained against each other
(engine/recipes/gan2d.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class GAN2DArgs:
    noise_dim: int = 2  # size of z
    hidden: int = 64  # units per hidden layer
    layers: int = 2  # hidden layers per network


def mlp(n_in: int, n_out: int, hidden: int, layers: int, act: type[nn.Module]) -> nn.Sequential:
    """n_in -> hidden -> ... -> hidden -> n_out, with ``act`` after each hidden layer."""
    dims = [n_in] + [hidden] * layers
    blocks: list[nn.Module] = []
    for a, b in zip(dims, dims[1:]):
        blocks += [nn.Linear(a, b), act()]
    blocks.append(nn.Linear(dims[-1], n_out))
    return nn.Sequential(*blocks)


class Generator(nn.Module):
    """z ~ N(0, I) -> a point G(z) in the plane."""

    def __init__(self, a: GAN2DArgs):
        super().__init__()
        self.noise_dim = a.noise_dim
        self.net = mlp(a.noise_dim, 2, a.hidden, a.layers, nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, noise_dim) -> (B, 2)


class Discriminator(nn.Module):
    """A point -> the logit of D(x), the probability that x is real: D(x) = sigmoid(logit)."""

    def __init__(self, a: GAN2DArgs):
        super().__init__()
        # LeakyReLU keeps a gradient for points where a ReLU unit would be dead, so the
        # generator always learns which way to move.
        self.net = mlp(2, 1, a.hidden, a.layers, lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (B, 2) -> (B,)
