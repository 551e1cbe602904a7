"""A deep convolutional GAN (DCGAN) for square images: 28x28 digits or 64x64 RGB pictures.

The generator grows an image from noise with transposed convolutions, doubling the side at
each step (7 -> 14 -> 28, or 4 -> 8 -> 16 -> 32 -> 64); the discriminator mirrors it with
strided convolutions that halve the side, down to one logit. Both follow the DCGAN
guidelines (Radford et al., 2015):

* no pooling and no fully connected hidden layers: strided convolutions learn their own
  down-sampling, transposed convolutions their own up-sampling;
* batch norm in both networks, except the generator's output and the discriminator's input
  layers (normalising those would fix the mean and spread of the pixels themselves);
* ReLU in the generator with tanh at the output; LeakyReLU(0.2) in the discriminator;
* weights drawn from N(0, 0.02) (init_weights), Adam with beta1 = 0.5 (the recipe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class DCGANArgs:
    noise_dim: int = 64  # size of z
    width: int = 32  # channels of G's last hidden layer and D's first; doubled per scale step
    channels: int = 1  # image channels: 1 for digits, 3 for RGB pictures
    image_size: int = 28  # 28 or 64


def plan(image_size: int) -> tuple[int, int]:
    """(start side, number of doublings): 28 = 7 * 2^2, 64 = 4 * 2^4."""
    start = {28: 7, 64: 4}.get(image_size)
    if start is None:
        raise ValueError(f"image_size must be 28 or 64, got {image_size}")
    return start, int(math.log2(image_size // start))


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z ~ N(0, I) -> an image G(z) in [-1, 1] (tanh).

    For 28x28 and width w: z (B, nz, 1, 1) -> (B, 2w, 7, 7) -> (B, w, 14, 14) -> (B, 1, 28, 28).
    For 64x64: (B, 8w, 4, 4) -> (B, 4w, 8, 8) -> (B, 2w, 16, 16) -> (B, w, 32, 32) -> (B, 3, 64, 64).
    """

    def __init__(self, a: DCGANArgs):
        super().__init__()
        self.noise_dim = a.noise_dim
        start, n = plan(a.image_size)
        chans = [a.width * 2 ** (n - 1 - i) for i in range(n)]  # e.g. [2w, w] or [8w, 4w, 2w, w]
        # The first layer is a transposed conv with a start x start kernel on a 1x1 input:
        # the same as a linear layer to a start x start feature map, written as a convolution.
        blocks: list[nn.Module] = [nn.ConvTranspose2d(a.noise_dim, chans[0], start, 1, 0, bias=False),
                                   nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        for c_in, c_out in zip(chans, chans[1:]):
            # kernel 4, stride 2, padding 1 doubles the side exactly: out = 2 * in.
            # No bias: the batch norm that follows would subtract it again.
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        # The output layer: no batch norm, tanh squashes pixels into [-1, 1] like the data.
        blocks += [nn.ConvTranspose2d(chans[-1], a.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*blocks)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])  # (B, nz) -> (B, C, S, S)


class Discriminator(nn.Module):
    """An image -> the logit of D(x), the probability that x is real: D(x) = sigmoid(logit).

    For 28x28: (B, 1, 28, 28) -> (B, w, 14, 14) -> (B, 2w, 7, 7) -> (B,) logits.
    For 64x64: (B, 3, 64, 64) -> (B, w, 32, 32) -> ... -> (B, 8w, 4, 4) -> (B,) logits.
    """

    def __init__(self, a: DCGANArgs):
        super().__init__()
        start, n = plan(a.image_size)
        chans = [a.width * 2**i for i in range(n)]  # e.g. [w, 2w] or [w, 2w, 4w, 8w]
        # The input layer: no batch norm, so D sees the real pixel statistics.
        blocks: list[nn.Module] = [nn.Conv2d(a.channels, chans[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(chans, chans[1:]):
            # kernel 4, stride 2, padding 1 halves the side: a learned down-sampling, no pooling.
            blocks += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        # One start x start kernel over the last feature map: a linear read-out as a convolution.
        blocks.append(nn.Conv2d(chans[-1], 1, start, 1, 0))
        self.net = nn.Sequential(*blocks)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()  # (B, C, S, S) -> (B,)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noise vectors a, b (D,) at fractions t (T,) -> (T, D).

    slerp(a, b; t) = sin((1 - t) omega) / sin(omega) a + sin(t omega) / sin(omega) b, with
    omega the angle between a and b. High-dimensional Gaussian noise lies near a sphere of
    radius sqrt(D); the straight line between two samples cuts inside it (its midpoint is
    about 0.7 times as long), where G saw no training noise. The arc stays on the shell.
    """
    omega = torch.arccos(torch.clamp((a / a.norm()) @ (b / b.norm()), -1.0, 1.0))
    t = t[:, None]  # (T, 1)
    if omega.abs() < 1e-4:  # (almost) the same direction: the line is the arc
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
