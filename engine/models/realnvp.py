"""RealNVP written to be read: a normalizing flow, an invertible map f from data x to a
latent z with a standard Gaussian density, built from affine coupling layers.

Because f is invertible and its Jacobian determinant is cheap, the density of x is exact
(the change-of-variables formula):

    log p(x) = log N(f(x); 0, I) + log |det df/dx|

f is a chain of bijections; each one returns its output and the log |det| of its own
Jacobian, and the chain adds them up. A coupling layer keeps the coordinates its mask
marks 1 and moves the others by a scale and a shift computed from the kept ones, so its
Jacobian is triangular: the determinant is the product of the scales. The next layer's
mask is the complement, so every coordinate is moved by some layer.

Sampling runs the chain backwards: z ~ N(0, I), then each layer's inverse, last first.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from engine.models.gan2d import mlp

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------------------
# Masks: which coordinates a coupling layer keeps (1) and which it transforms (0).
# ----------------------------------------------------------------------------------------

def alternating_masks(dim: int, layers: int) -> list[torch.Tensor]:
    """For points: layer i keeps coordinates whose index has parity i % 2. In 2-D: keep x,
    move y; then keep y, move x; and so on."""
    parity = torch.arange(dim) % 2  # (dim,)
    return [(parity == i % 2).float() for i in range(layers)]


def checkerboard_masks(size: int, layers: int) -> list[torch.Tensor]:
    """For images: a checkerboard (RealNVP's spatial mask) and its complement, in turn. A
    kept pixel's four neighbours are all transformed, so a convolution sees close context."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    board = (rows + cols) % 2  # (H, W)
    return [(board == i % 2).float()[None] for i in range(layers)]  # each (1, H, W)


# ----------------------------------------------------------------------------------------
# The networks inside the coupling layers: kept coordinates in, raw scale and shift out.
# They need not be invertible: the coupling layer is invertible whatever they compute.
# ----------------------------------------------------------------------------------------

class PointNet(nn.Module):
    """An MLP for points: (B, dim) kept coordinates -> (B, dim) raw scales, (B, dim) shifts."""

    def __init__(self, dim: int, hidden: int, depth: int = 2):
        super().__init__()
        self.net = mlp(dim, 2 * dim, hidden, depth, nn.SiLU)

    def forward(self, kept: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(kept).chunk(2, dim=1)  # (B, dim), (B, dim)


class ConvNet(nn.Module):
    """Three 3x3 convolutions for images: (B, 1, H, W) kept pixels, plus the mask as a second
    channel so the network can tell a dark kept pixel from a hidden one, -> (B, 1, H, W)
    raw scales and (B, 1, H, W) shifts."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, 2, 3, padding=1),
        )

    def forward(self, kept: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask.expand(len(kept), *mask.shape)  # (B, 1, H, W)
        return self.net(torch.cat([kept, m], dim=1)).chunk(2, dim=1)


# ----------------------------------------------------------------------------------------
# Bijections. Each maps x -> (y, log |det dy/dx|) per example, and has an exact inverse.
# ----------------------------------------------------------------------------------------

def sum_per_example(t: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B,): the log-det of an elementwise map is the sum of its log-slopes."""
    return t.flatten(1).sum(1)


class Coupling(nn.Module):
    """An affine coupling layer with a fixed binary mask m (1 = kept):

        s, t = net(m * x)                      (computed from the kept part only)
        y    = m * x + (1 - m) * (x * exp(s) + t)
        log |det dy/dx| = sum over moved coordinates of s

    The Jacobian is triangular (a moved coordinate depends on itself and on kept ones; a
    kept one only on itself), so its determinant is the product of its diagonal, exp(s).
    The inverse needs no inverse of the network: the kept part is y's kept part, so s and
    t can be recomputed, then x = (y - t) * exp(-s) on the moved part.
    """

    def __init__(self, mask: torch.Tensor, net: nn.Module, scale_bound: float):
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = net
        self.scale_bound = scale_bound
        # Start as the identity (s = t = 0): the untrained flow is the base Gaussian, and
        # no layer begins by blowing its input up or squashing it.
        last = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s, t for the moved coordinates (zero on the kept ones). s = b * tanh(raw / b)
        stays within (-b, b), b = scale_bound: one layer can stretch by at most e^b, so an
        unlucky step cannot send exp(s) to infinity (or the log-det to NaN)."""
        raw, shift = self.net(kept, self.mask)
        b = self.scale_bound
        moved = 1 - self.mask
        return moved * b * torch.tanh(raw / b), moved * shift

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kept = x * self.mask
        s, t = self.scale_shift(kept)
        y = kept + (1 - self.mask) * (x * s.exp() + t)  # s = t = 0 on kept coordinates
        return y, sum_per_example(s)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        kept = y * self.mask  # equal to x's kept part: the layer did not touch it
        s, t = self.scale_shift(kept)
        return kept + (1 - self.mask) * (y - t) * (-s).exp()


class Rescale(nn.Module):
    """A fixed affine map y = (x - shift) / scale: puts the data at zero mean and unit spread,
    where the base Gaussian is. log |det| = -D log scale (D coordinates per example)."""

    def __init__(self, shift: torch.Tensor, scale: float):
        super().__init__()
        self.register_buffer("shift", shift)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = x[0].numel()
        return (x - self.shift) / self.scale, x.new_full((len(x),), -d * math.log(self.scale))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.scale + self.shift


class Logit(nn.Module):
    """For pixels in (0, 1): y = logit(p), p = a + (1 - 2a) x, so the flow works on the whole
    real line instead of a box (RealNVP's preprocessing). a keeps p away from 0 and 1,
    where the logit is infinite. dy/dx = (1 - 2a) / (p (1 - p)) per pixel."""

    def __init__(self, a: float = 0.05):
        super().__init__()
        self.a = a

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.a + (1 - 2 * self.a) * x
        y = p.log() - (-p).log1p()
        log_slope = math.log(1 - 2 * self.a) - p.log() - (-p).log1p()
        return y, sum_per_example(log_slope)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(y) - self.a) / (1 - 2 * self.a)  # may stray just outside [0, 1]


# ----------------------------------------------------------------------------------------
# The flow: preprocessing, then the couplings, then the Gaussian.
# ----------------------------------------------------------------------------------------

class RealNVP(nn.Module):
    """f = couplings after a fixed preprocessing bijection; z = f(x) ~ N(0, I)."""

    def __init__(self, prep: nn.Module, couplings: list[Coupling]):
        super().__init__()
        self.prep = prep
        self.couplings = nn.ModuleList(couplings)
        self.register_buffer("example", torch.zeros(tuple(couplings[0].mask.shape)))  # one x's shape

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (z, log |det dz/dx|): the log-dets of the chain add up (the chain rule)."""
        h, log_det = self.prep(x)
        for layer in self.couplings:
            h, ld = layer(h)
            log_det = log_det + ld
        return h, log_det

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(z; 0, I) + log |det dz/dx|, per example: (B,)."""
        z, log_det = self(x)
        d = z[0].numel()
        log_base = -0.5 * sum_per_example(z.square()) - 0.5 * d * LOG_2PI
        return log_base + log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z -> x: every layer's inverse, last layer first."""
        for layer in reversed(self.couplings):
            z = layer.inverse(z)
        return self.prep.inverse(z)

    def sample(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """n draws: z ~ N(0, T^2 I), pulled back to x. T < 1 keeps to the likelier middle
        of the Gaussian: cleaner, less varied samples."""
        z = torch.randn(n, *self.example.shape, generator=generator).to(self.example.device)
        return self.inverse(temperature * z)

    def push_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x, then its state after the preprocessing and after every coupling: L + 2 tensors."""
        h = self.prep(x)[0]
        stages = [x, h]
        for layer in self.couplings:
            h = layer(h)[0]
            stages.append(h)
        return stages

    def pull_stages(self, z: torch.Tensor) -> list[torch.Tensor]:
        """z, then its state after each inverse coupling (last first), then x: L + 2 tensors,
        listed from x's end to z's so they line up with push_stages."""
        stages = [z]
        for layer in reversed(self.couplings):
            z = layer.inverse(z)
            stages.append(z)
        stages.append(self.prep.inverse(z))
        return stages[::-1]


def point_flow(dim: int, layers: int, hidden: int, scale_bound: float, shift: torch.Tensor,
               scale: float) -> RealNVP:
    """A flow for points (B, dim): rescale, then ``layers`` couplings with alternating masks."""
    couplings = [Coupling(m, PointNet(dim, hidden), scale_bound) for m in alternating_masks(dim, layers)]
    return RealNVP(Rescale(shift, scale), couplings)


def image_flow(size: int, layers: int, channels: int, scale_bound: float) -> RealNVP:
    """A flow for one-channel images (B, 1, size, size) in [0, 1]: the logit, then ``layers``
    couplings with checkerboard masks."""
    couplings = [Coupling(m, ConvNet(channels), scale_bound) for m in checkerboard_masks(size, layers)]
    return RealNVP(Logit(), couplings)
