"""A small style-based generator (StyleGAN-like) for 32x32 RGB faces, and its critic.

Read top to bottom:

* `MappingNetwork` turns noise z into a style vector w with a small MLP. z is drawn from a
  plain Gaussian; w is free to take whatever shape the data needs (its attributes need not
  be tangled up just because z is round).
* `AdaIN` is how a style enters a layer: normalise each channel of each image to mean 0 and
  spread 1, then scale and shift it by numbers computed from w.
* `NoiseInput` adds fresh per-pixel noise, scaled by a learned amount per channel: the
  random detail (where a curl or a speck falls) that the style need not decide.
* `Generator`: a learned constant 4x4 map, then one level per resolution (4, 8, 16, 32),
  each two 3x3 convolutions with noise, LeakyReLU and AdaIN. Every layer takes its own w,
  so two faces' styles can be mixed layer by layer (`mix_styles`).
  Instead of progressive growing (train 4x4, then add 8x8, ...) every level has a 1x1
  "to RGB" layer and the picture is the sum of their outputs, each upsampled to 32x32 (the
  skip outputs of StyleGAN2): low levels draw the coarse picture from the start and higher
  levels learn to add detail, with no schedule of growing.
* `Critic`: the conditional GAN lesson's critic with its label term left out; trained with
  the same Wasserstein loss and gradient penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.cwgan import Critic as LabelledCritic, CWGANArgs

RESOLUTIONS = (4, 8, 16, 32)  # one level each; two styled layers per level
N_LAYERS = 2 * len(RESOLUTIONS)  # 8 styles per face: layer 2i and 2i + 1 are at RESOLUTIONS[i]


def layer_resolution(layer: int) -> int:
    """The side of the feature map styled by layer ``layer`` (0..7): 4, 4, 8, 8, 16, ..."""
    return RESOLUTIONS[layer // 2]


def layers_up_to(resolution: int) -> int:
    """How many layers work at ``resolution`` or below: the crossover that gives those
    layers one face's style and the rest another's (8 -> 4)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    return 2 * (RESOLUTIONS.index(resolution) + 1)


@dataclass
class StyleGANArgs:
    z_dim: int = 64  # size of the noise z
    w_dim: int = 64  # size of the style vector w
    mapping_layers: int = 4  # depth of the MLP z -> w
    width: int = 16  # channels at 32x32; doubled at each halving of the side, up to max_channels
    max_channels: int = 64


def channels(a: StyleGANArgs, resolution: int) -> int:
    return min(a.max_channels, a.width * (32 // resolution))  # 32: width, 16: 2 width, ...


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim): normalise z to length sqrt(z_dim), then an MLP."""

    def __init__(self, a: StyleGANArgs):
        super().__init__()
        layers: list[nn.Module] = []
        dim = a.z_dim
        for _ in range(a.mapping_layers):
            linear = nn.Linear(dim, a.w_dim)
            # He initialisation for LeakyReLU: w keeps the size of z through every layer. With
            # PyTorch's default (smaller) weights, w shrank layer by layer, every face got
            # almost the same style, and the faces all looked alike.
            nn.init.kaiming_normal_(linear.weight, a=0.2)
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.LeakyReLU(0.2)]
            dim = a.w_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # pixel norm: only z's direction counts
        return self.net(z)  # (B, w_dim)


class AdaIN(nn.Module):
    """Adaptive instance normalisation:

        AdaIN(x, w) = y_s(w) * (x - mean(x)) / std(x) + y_b(w)

    mean and std per image and channel, over the pixels; (y_s, y_b) = an affine map of w,
    one scale and one shift per channel. Normalising first wipes out the previous layer's
    style (its channel means and spreads), so each layer's look is set by its own w."""

    def __init__(self, ch: int, w_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(ch)  # (x - mean) / std per image and channel, no learned affine
        self.style = nn.Linear(w_dim, 2 * ch)  # w -> (y_s - 1, y_b)
        nn.init.normal_(self.style.weight, std=w_dim ** -0.5)  # each style number ~ N(0, 1) for a w of unit size
        nn.init.zeros_(self.style.bias)  # y_s = 1, y_b = 0 on average

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # x (B, C, H, W), w (B, w_dim)
        scale, shift = self.style(w)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        return (1 + scale) * self.norm(x) + shift


class NoiseInput(nn.Module):
    """x + b * noise, noise (B, 1, H, W) ~ N(0, 1) shared by the channels, b a learned scale
    per channel (starting at 0: the network decides how much randomness each channel wants)."""

    def __init__(self, ch: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1, ch, 1, 1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.scale * noise


class StyledLayer(nn.Module):
    """conv 3x3 -> + noise -> LeakyReLU -> AdaIN(w): one of the generator's eight layers."""

    def __init__(self, c_in: int, c_out: int, w_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.noise = NoiseInput(c_out)
        self.adain = AdaIN(c_out, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.adain(F.leaky_relu(self.noise(self.conv(x), noise), 0.2), w)


class Level(nn.Module):
    """Two styled layers at one resolution (the first after doubling the side, except at
    4x4), and a 1x1 convolution to RGB for the skip output."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, first: bool):
        super().__init__()
        self.first = first
        self.layer1 = StyledLayer(c_in, c_out, w_dim)
        self.layer2 = StyledLayer(c_out, c_out, w_dim)
        self.to_rgb = nn.Conv2d(c_out, 3, 1)

    def forward(self, x, w1, w2, n1, n2) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.first:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # (B, C, 2H, 2W)
        x = self.layer2(self.layer1(x, w1, n1), w2, n2)
        return x, self.to_rgb(x)  # features (B, C_out, H, W), RGB (B, 3, H, W)


def broadcast(w: torch.Tensor) -> torch.Tensor:
    """One w per face (B, w_dim) -> the same w for each of the 8 layers (B, 8, w_dim)."""
    return w[:, None, :].expand(-1, N_LAYERS, -1)


def mix_styles(w_coarse: torch.Tensor, w_fine: torch.Tensor, crossover: int) -> torch.Tensor:
    """Style mixing: layers 0 .. crossover-1 take w_coarse, the rest w_fine.

    w_coarse, w_fine (B, w_dim) -> ws (B, 8, w_dim). crossover = layers_up_to(8) = 4 gives the
    4x4 and 8x8 layers (pose, head shape, what sits where) to one face, and the 16x16 and
    32x32 layers (colours, texture) to the other."""
    if not 0 <= crossover <= N_LAYERS:
        raise ValueError(f"crossover must be in 0..{N_LAYERS}, got {crossover}")
    take_coarse = (torch.arange(N_LAYERS, device=w_coarse.device) < crossover)[None, :, None]  # (1, 8, 1)
    return torch.where(take_coarse, w_coarse[:, None, :], w_fine[:, None, :])


class Generator(nn.Module):
    """Styles ws (B, 8, w_dim) and noise (a list of 8 maps (B, 1, H, W), or None: fresh
    noise) -> an image (B, 3, 32, 32), roughly in [-1, 1] like the data (no tanh: the
    critic keeps it there).

    `mapping` is part of the generator, so `styles(z)` gives the ws of plain faces."""

    def __init__(self, a: StyleGANArgs):
        super().__init__()
        self.mapping = MappingNetwork(a)
        c4 = channels(a, 4)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))  # the same input for every face
        levels, c_in = [], c4
        for i, res in enumerate(RESOLUTIONS):
            levels.append(Level(c_in, channels(a, res), a.w_dim, first=i == 0))
            c_in = channels(a, res)
        self.levels = nn.ModuleList(levels)

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) -> ws (B, 8, w_dim): the same w for every layer."""
        return broadcast(self.mapping(z))

    def forward(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        B = ws.shape[0]
        if noise is None:
            noise = make_noise(B, ws.device)
        x = self.const.expand(B, -1, -1, -1)  # (B, C, 4, 4)
        rgb = None
        for i, level in enumerate(self.levels):
            x, out = level(x, ws[:, 2 * i], ws[:, 2 * i + 1], noise[2 * i], noise[2 * i + 1])
            # Skip outputs: the picture so far, doubled in size, plus this level's addition.
            rgb = out if rgb is None else F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + out
        return rgb  # (B, 3, 32, 32)


def make_noise(batch: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None,
               layers: range | None = None) -> list[torch.Tensor]:
    """Noise maps for the 8 layers: (batch, 1, side, side) ~ N(0, 1) for the layers in
    ``layers`` (all by default), zeros for the others (no randomness there). Drawn on the CPU
    from ``generator`` when given, so a view can repeat its draws exactly."""
    keep = range(N_LAYERS) if layers is None else layers
    out = []
    for i in range(N_LAYERS):
        side = layer_resolution(i)
        if i in keep:
            n = torch.randn(batch, 1, side, side, generator=generator) if generator is not None else \
                torch.randn(batch, 1, side, side, device=device)
        else:
            n = torch.zeros(batch, 1, side, side)
        out.append(n.to(device))
    return out


class Critic(LabelledCritic):
    """image (B, 3, 32, 32) -> score (B,), higher = more real: the conditional GAN lesson's
    critic (strided convolutions, layer norm, no sigmoid) without its label term, since this
    generator is told no labels."""

    def __init__(self, width: int):
        super().__init__(CWGANArgs(size=32, width=width))
        del self.embed  # the label projection: no labels here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x)).squeeze(1)  # (B,)
