"""MuseGAN, written to be read: a generator of four-voice music whose input is split into
four kinds of noise, and a critic that scores whole phrases (trained as a WGAN-GP).

A phrase is 4 tracks (soprano, alto, tenor, bass) x `bars` bars x 16 steps; at each step a
track sounds one of `classes` choices: a rest or a pitch. The generator's input says what
each part of the music may depend on:

    chords  one vector per piece, unrolled over the bars; shared by all tracks
    style   one vector per piece, the same in every bar and track
    melody  one vector per track, unrolled over the bars: each voice's own line
    groove  one vector per track, the same in every bar: each voice's own manner

For every bar and track, the four are joined and a bar generator (one per track) turns
them into that bar. Change one input and only what it reaches changes: a new melody
vector for the alto redraws the alto and nothing else (no other voice reads it), a new
chords vector can change every voice, bar by bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

INPUTS = ("chords", "style", "melody", "groove")


@dataclass
class MuseGANArgs:
    classes: int  # a rest plus the pitches of the window
    bars: int = 2
    steps: int = 16  # per bar: 16th notes in 4/4
    tracks: int = 4
    z_dim: int = 32  # size of each of the four noise vectors
    width: int = 128  # hidden channels of the generator and the critic


def group_steps(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, T, C) -> (B, T / k, k C): k neighbouring time steps side by side, so one linear
    layer reads them together (a convolution whose kernel equals its stride, as a matmul,
    which is much faster on a CPU for sizes this small)."""
    B, T, C = x.shape
    return x.reshape(B, T // k, k * C)


class Upsample(nn.Module):
    """(B, T, C_in) -> (B, 2 T, C_out): each time step becomes two, each by its own linear
    map of the step (a transposed convolution with kernel = stride = 2), then batch norm
    and ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.lin = nn.Linear(c_in, 2 * c_out)
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        h = self.lin(x).reshape(B * T * 2, -1)  # (B*2T, C_out): the two halves are the two new steps
        return torch.relu(self.norm(h)).view(B, 2 * T, -1)


class TemporalNetwork(nn.Module):
    """z (B, z_dim) -> (B, bars, z_dim): one vector for the whole piece becomes one per
    bar, so what it controls can develop from bar to bar instead of repeating."""

    def __init__(self, a: MuseGANArgs):
        super().__init__()
        self.bars, self.z_dim = a.bars, a.z_dim
        self.net = nn.Sequential(
            nn.Linear(a.z_dim, a.width), nn.BatchNorm1d(a.width), nn.ReLU(),
            nn.Linear(a.width, a.bars * a.z_dim), nn.BatchNorm1d(a.bars * a.z_dim), nn.ReLU(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, self.bars, self.z_dim)  # (B, bars, z_dim)


class BarGenerator(nn.Module):
    """One track's bar: the four inputs joined (B, 4 z_dim) -> logits (B, steps, classes).
    A linear layer makes one vector per beat; two upsamplings double the time resolution
    twice (beats -> 8ths -> 16ths); a last linear layer scores every class at every step."""

    def __init__(self, a: MuseGANArgs):
        super().__init__()
        self.beats, self.width = a.steps // 4, a.width
        self.fc = nn.Sequential(nn.Linear(4 * a.z_dim, a.width * self.beats), nn.BatchNorm1d(a.width * self.beats),
                                nn.ReLU())
        half = a.width // 2
        self.to_8ths = Upsample(a.width, half)
        self.to_16ths = Upsample(half, half)
        self.out = nn.Linear(half, a.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x).view(-1, self.beats, self.width)  # (B, 4, width): one vector per beat
        h = self.to_16ths(self.to_8ths(h))  # (B, 8, width/2) -> (B, 16, width/2)
        return self.out(h)  # (B, steps, classes)


class Generator(nn.Module):
    def __init__(self, a: MuseGANArgs):
        super().__init__()
        self.args = a
        self.chords_over_time = TemporalNetwork(a)  # shared by the tracks
        self.melody_over_time = nn.ModuleList(TemporalNetwork(a) for _ in range(a.tracks))  # one per track
        self.bar_generators = nn.ModuleList(BarGenerator(a) for _ in range(a.tracks))

    def forward(self, chords: torch.Tensor, style: torch.Tensor, melody: torch.Tensor,
                groove: torch.Tensor) -> torch.Tensor:
        """chords, style (B, z_dim); melody, groove (B, tracks, z_dim) ->
        logits (B, tracks, bars, steps, classes)."""
        a = self.args
        B = chords.shape[0]
        chords_t = self.chords_over_time(chords)  # (B, bars, z)
        tracks = []
        for t in range(a.tracks):
            melody_t = self.melody_over_time[t](melody[:, t])  # (B, bars, z)
            x = torch.cat([chords_t,
                           style[:, None].expand(-1, a.bars, -1),  # the same in every bar
                           melody_t,
                           groove[:, t, None].expand(-1, a.bars, -1)], dim=2)  # (B, bars, 4z)
            bars = self.bar_generators[t](x.reshape(B * a.bars, -1))  # (B*bars, steps, classes)
            tracks.append(bars.view(B, a.bars, a.steps, a.classes))
        return torch.stack(tracks, dim=1)  # (B, tracks, bars, steps, classes)

    def probabilities(self, **inputs: torch.Tensor) -> torch.Tensor:
        """softmax over the classes at every step: what the critic sees of a generated
        phrase (a real one is one-hot)."""
        return self(**inputs).softmax(dim=-1)


def draw_inputs(n: int, a: MuseGANArgs, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Fresh noise for n phrases: {"chords": (n, z), "style": (n, z), "melody": (n, tracks, z),
    "groove": (n, tracks, z)}, each standard normal."""
    shapes = {"chords": (n, a.z_dim), "style": (n, a.z_dim), "melody": (n, a.tracks, a.z_dim),
              "groove": (n, a.tracks, a.z_dim)}
    return {k: torch.randn(s, generator=generator).to(device) for k, s in shapes.items()}


class Critic(nn.Module):
    """A phrase (B, tracks, bars, steps, classes) of probabilities -> a score (B,).

    At each step the four tracks' classes sit side by side, so the first layer sees all
    voices at once (the harmony), in pairs of steps; the next layers join pairs into
    beats and beats into bars, and the last ones judge the whole phrase. No batch norm
    (the gradient penalty is per sample) and no sigmoid (a critic scores, it does not
    classify)."""

    def __init__(self, a: MuseGANArgs):
        super().__init__()
        self.pairs = nn.Linear(2 * a.tracks * a.classes, a.width)  # 8th notes, all voices
        self.beats = nn.Linear(2 * a.width, a.width)
        self.bars = nn.Linear(4 * a.width, a.width)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(a.bars * a.width, a.width), nn.LeakyReLU(0.2),
                                  nn.Linear(a.width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, bars, S, K = x.shape
        h = x.permute(0, 2, 3, 1, 4).reshape(B, bars * S, T * K)  # (B, time, tracks*classes)
        h = F.leaky_relu(self.pairs(group_steps(h, 2)), 0.2)  # (B, bars*8, width)
        h = F.leaky_relu(self.beats(group_steps(h, 2)), 0.2)  # (B, bars*4, width)
        h = F.leaky_relu(self.bars(group_steps(h, 4)), 0.2)  # (B, bars, width)
        return self.head(h).squeeze(1)  # (B,)
