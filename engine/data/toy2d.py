"""Toy 2-D point clouds for the GAN and diffusion lessons.

A generative model of points in the plane can be watched as it learns: real and generated
points drawn on top of each other, the discriminator's decision map shaded behind them.
These are the "real" distributions for such lessons:

  curve      an exponential curve: points (u, e^u) for u uniform in [-1.5, 1.5], stretched
             so x spans [-2, 2] and y about [-0.96, 2.45] (its mean at 0)
  ring       a circle of radius 2
  moons      two interleaving half-circles (the classic "two moons"), about [-2.25, 2.25] wide
             and [-1.1, 1.1] high
  gaussians  eight Gaussians with centres evenly spaced on a circle of radius 2

Scale: every shape has (roughly) zero mean and lies within about [-2.5, 2.5]^2, the range a
lesson plots and the range a small network with unit-scale weights reaches comfortably. A
point can stray slightly outside it only through the Gaussian noise.

`noise` is the standard deviation of isotropic Gaussian noise added to every point, in the
same units as the output (for "gaussians" it is the spread of each cluster). Each shape has
its own default, small enough that the shape stays crisp.
"""

from __future__ import annotations

import math

import torch

TOY_SHAPES = ("curve", "ring", "moons", "gaussians")

# Default noise std per shape, in output units (see the module docstring).
DEFAULT_NOISE = {"curve": 0.05, "ring": 0.08, "moons": 0.08, "gaussians": 0.1}

RADIUS = 2.0  # ring and gaussians: the circle the points lie on
N_GAUSSIANS = 8

# The curve: u ~ U[-U_MAX, U_MAX], then x = X_SCALE * u, y = Y_SCALE * (e^u - E[e^u]).
CURVE_U_MAX = 1.5
CURVE_X_SCALE = 2.0 / CURVE_U_MAX  # x spans [-2, 2]
CURVE_Y_SCALE = 0.8  # y then spans [-0.96, 2.45]
# E[e^u] for u ~ U[-a, a] is (e^a - e^-a) / (2a) = sinh(a) / a; subtracting it exactly
# (not the sample mean) keeps every sample of the shape the same distribution.
CURVE_Y_MEAN = math.sinh(CURVE_U_MAX) / CURVE_U_MAX

# The moons before scaling: upper arc (cos t, sin t), lower arc (1 - cos t, 1/2 - sin t), t in
# [0, pi]. Their joint mean is (1/2, 1/4): E[cos t] = 0, E[sin t] = 2/pi, and the two arcs'
# y means 2/pi and 1/2 - 2/pi average to 1/4. MOONS_SCALE stretches x from [-1, 2] to
# [-2.25, 2.25].
MOONS_CENTRE = (0.5, 0.25)
MOONS_SCALE = 1.5


def sample_toy(
    shape: str,
    n: int,
    generator: torch.Generator | None = None,
    noise: float | None = None,
) -> torch.Tensor:
    """Draw `n` points of a toy shape as a float32 tensor of shape (n, 2).

    The same `generator` state gives the same points; None uses torch's global RNG.
    `noise` overrides the shape's default noise std (0 gives the bare shape).
    """
    if shape not in TOY_SHAPES:
        raise ValueError(f"unknown toy shape {shape!r}; known shapes: {', '.join(TOY_SHAPES)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    sigma = DEFAULT_NOISE[shape] if noise is None else float(noise)
    if sigma < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")

    # Work in float64 and convert once at the end, so the shape is exact before the noise.
    g = generator

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)

    if shape == "curve":
        u = uniform(-CURVE_U_MAX, CURVE_U_MAX)
        points = torch.stack(
            [CURVE_X_SCALE * u, CURVE_Y_SCALE * (torch.exp(u) - CURVE_Y_MEAN)], dim=1
        )
    elif shape == "ring":
        angle = uniform(0.0, 2 * math.pi)
        points = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    elif shape == "moons":
        t = uniform(0.0, math.pi)
        # Each point picks a moon with probability 1/2, independently: a perfect generator
        # samples the same way, so two real samples differ as much as real and ideal fake do.
        lower = torch.rand(n, generator=g) < 0.5
        x = torch.where(lower, 1.0 - torch.cos(t), torch.cos(t))
        y = torch.where(lower, 0.5 - torch.sin(t), torch.sin(t))
        points = MOONS_SCALE * torch.stack([x - MOONS_CENTRE[0], y - MOONS_CENTRE[1]], dim=1)
    else:  # gaussians
        # Centre k sits at angle 2*pi*k/8; each point picks a centre uniformly.
        k = torch.randint(N_GAUSSIANS, (n,), generator=g).to(torch.float64)
        angle = 2 * math.pi * k / N_GAUSSIANS
        points = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)

    points = points + sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return points.to(torch.float32)


def gaussians_log_density(points: torch.Tensor, noise: float | None = None) -> torch.Tensor:
    """The exact log-density of the "gaussians" shape that :func:`sample_toy` draws from, at
    points (n, 2) -> (n,) float64: an equal mixture of N_GAUSSIANS isotropic Gaussians of
    std ``noise`` (None: the shape's default) centred on the circle of radius RADIUS,

        log p(x) = log (1/K) sum_k N(x; mu_k, sigma^2 I),  mu_k = RADIUS (cos 2pi k/K, sin 2pi k/K).

    Its mean over held-out points is the lowest negative log-likelihood any model can
    expect there: the entropy of the shape. Computed with logsumexp, so it stays finite far
    from every centre."""
    sigma = DEFAULT_NOISE["gaussians"] if noise is None else float(noise)
    if sigma <= 0:
        raise ValueError(f"the density needs noise > 0, got {noise}")
    angle = 2 * math.pi * torch.arange(N_GAUSSIANS, dtype=torch.float64) / N_GAUSSIANS
    centres = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (K, 2)
    d2 = (points.to(torch.float64)[:, None, :] - centres[None]).square().sum(-1)  # (n, K)
    log_normal = -d2 / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)  # 2-D: -log(2 pi sigma^2)
    return torch.logsumexp(log_normal, dim=1) - math.log(N_GAUSSIANS)
