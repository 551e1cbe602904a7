"""Two classes of points in the plane, drawn from a mixture whose every number is known.

The points are the eight Gaussians of :mod:`engine.data.toy2d` (centres evenly spaced on
a circle of radius 2), coloured in turn: centre k belongs to class k % 2, so the classes
interleave around the ring and no straight line separates them. Written as the chain a
generative model follows (the "Start here" lesson, engine/recipes/start.py):

    y ~ uniform over {blue, orange}                 p(y) = 1/2
    k ~ uniform over that class's 4 centres         p(k | y) = 1/4
    x = centre k + noise * (a standard Gaussian)    p(x | y, k) = N(x; mu_k, noise^2 I)

Because the chain is known, so is everything a model could hope to learn: the density
p(x) (the same as toy2d's eight Gaussians at this noise), each class's p(x | y), and the
best any classifier can do (the Bayes-optimal rule: pick the class with the larger
p(x | y) p(y)). Clusters of neighbouring classes are 1.53 apart, so with the default noise
of 0.35 a few points land on the wrong side of any boundary.
"""

from __future__ import annotations

import math

import torch

from engine.data.toy2d import N_GAUSSIANS, RADIUS

CLASS_NAMES = ("blue", "orange")  # class 0 and class 1, as the lesson's pictures colour them
N_CLASSES = len(CLASS_NAMES)
CENTRES_PER_CLASS = N_GAUSSIANS // N_CLASSES
DEFAULT_NOISE = 0.35


def class_centres() -> torch.Tensor:
    """The true cluster centres, (N_CLASSES, CENTRES_PER_CLASS, 2) float64: class c owns the
    ring's centres c, c + 2, c + 4, c + 6, centre k sitting at angle 2 pi k / 8."""
    angle = 2 * math.pi * torch.arange(N_GAUSSIANS, dtype=torch.float64) / N_GAUSSIANS
    ring = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (8, 2)
    return torch.stack([ring[c::N_CLASSES] for c in range(N_CLASSES)])  # (2, 4, 2)


def sample_classes(n: int, generator: torch.Generator | None = None,
                   noise: float = DEFAULT_NOISE) -> tuple[torch.Tensor, torch.Tensor]:
    """n labelled points: x (n, 2) float32 and y (n,) int64 class indices. The same
    ``generator`` state gives the same points."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if noise <= 0:
        raise ValueError(f"noise must be > 0 (the density needs a spread), got {noise}")
    k = torch.randint(N_GAUSSIANS, (n,), generator=generator)  # a centre, uniformly: y and k at once
    y = k % N_CLASSES
    centres = class_centres()[y, k // N_CLASSES]  # (n, 2)
    x = centres + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return x.to(torch.float32), y
