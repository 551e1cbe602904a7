"""The networks of a CycleGAN: a generator that turns an image of one domain into one of
the other, and a PatchGAN discriminator that judges an image patch by patch.

A CycleGAN has two of each (engine/recipes/cyclegan.py): G_AB and G_BA translate A -> B and
B -> A, D_A and D_B judge whether an image is a real member of A or of B. Images are in
[-1, 1]. Both networks use instance normalisation: each image is normalised on its own, so
one face's colours never leak into another's through batch statistics, and a translation
does not depend on what else is in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class CycleGANArgs:
    width: int = 16  # channels of the first conv; each of the two downsamplings doubles it
    res_blocks: int = 2  # residual blocks at the bottleneck of the generator
    channels: int = 3  # RGB


def norm(c: int) -> nn.Module:
    """Instance norm without learned scale or running statistics (as in CycleGAN): train and
    eval modes compute the same thing."""
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class ResBlock(nn.Module):
    """x + F(x), F = two 3x3 convs: the block only has to learn a change to x, and most of a
    face (everything but the hair) needs none."""

    def __init__(self, c: int):
        super().__init__()
        self.f = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)  # (B, c, h, w)


class Generator(nn.Module):
    """An image of one domain -> an image of the other, same size: encoder (a 7x7 conv and two
    stride-2 convs), residual blocks at 1/4 resolution, decoder (two transposed convs and a
    7x7 conv). Reflection padding avoids the dark borders that zero padding draws.

    One change from the CycleGAN paper: the network outputs a *change* that is added to the
    input, G(x) = x + net(x), and its last conv starts at zero, so G starts as the identity.
    The paper's generator redraws the whole image through a tanh; in the few hundred steps a
    CPU affords, that could not yet redraw glasses and mouths (in our runs, after 700 steps
    its round trips were still off by 0.08 a pixel and 40% of faces lost an attribute),
    while this one keeps every face and only has to learn the hair. Outputs are not clamped
    to [-1, 1]; the views and scores clamp."""

    def __init__(self, a: CycleGANArgs):
        super().__init__()
        w = a.width
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(a.channels, w, 7), norm(w), nn.ReLU(inplace=True),  # (B, w, S, S)
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), norm(2 * w), nn.ReLU(inplace=True),  # (B, 2w, S/2, S/2)
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), norm(4 * w), nn.ReLU(inplace=True),  # (B, 4w, S/4, S/4)
        ]
        layers += [ResBlock(4 * w) for _ in range(a.res_blocks)]  # (B, 4w, S/4, S/4)
        layers += [
            nn.ConvTranspose2d(4 * w, 2 * w, 3, stride=2, padding=1, output_padding=1),  # (B, 2w, S/2, S/2)
            norm(2 * w), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1),  # (B, w, S, S)
            norm(w), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3), nn.Conv2d(w, a.channels, 7),  # (B, 3, S, S): the change
        ]
        nn.init.zeros_(layers[-1].weight)  # no change at first: G(x) = x
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)  # (B, 3, S, S) -> (B, 3, S, S)


class Discriminator(nn.Module):
    """PatchGAN: an image -> a map of logits, one per overlapping patch, each saying "this
    patch looks like a real image of my domain". Judging patches instead of the whole image
    has fewer parameters and pushes every region to look right.

    For 32x32 faces the map is 6x6 and each logit sees a 34x34 window (a whole face at 32 px,
    about half of one at 64 px). The loss is least squares on these raw outputs, so there is
    no sigmoid."""

    def __init__(self, a: CycleGANArgs):
        super().__init__()
        w = a.width
        self.net = nn.Sequential(
            nn.Conv2d(a.channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),  # (B, w, S/2, S/2)
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), norm(2 * w), nn.LeakyReLU(0.2, inplace=True),  # (B, 2w, S/4, S/4)
            nn.Conv2d(2 * w, 4 * w, 4, padding=1), norm(4 * w), nn.LeakyReLU(0.2, inplace=True),  # (B, 4w, S/4-1, S/4-1)
            nn.Conv2d(4 * w, 1, 4, padding=1),  # (B, 1, S/4-2, S/4-2): one score per patch
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
