"""Hyperparameters and dashboard of the world-model recipe (torch-free): V, a VAE, learns
the game's frames; M, an LSTM with a mixture-density head, learns what comes next; C, a
linear controller, is evolved inside M's dream and then plays the real game."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Curves, ImagePane, Tab
from engine.schema import ConfigError, param


@dataclass
class WorldModelConfig:
    episodes: int = param(1000, "episodes of the game played at random to collect frames (the only real play "
                          "before C is tested)", low=8, high=100_000)
    wander: float = param(0.8, "while collecting, the chance the random paddle repeats its last move (0: a new "
                          "random move every step)", low=0.0, high=0.99)
    z_dim: int = param(8, "length of V's code z for one frame", low=1, high=64)
    width: int = param(16, "channels of V's first conv layer; the second doubles it", low=4, high=128)
    beta: float = param(1.0, "weight of V's KL term", low=0.0, high=10.0)
    lr: float = param(2e-3, "Adam learning rate of V (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    vae_steps: int = param(1200, "steps that train V on single frames", low=1, high=10_000_000)
    batch_size: int = param(64, "frames per step of V", low=2, high=4096)
    hidden: int = param(64, "M's LSTM units (C also reads them)", low=4, high=1024)
    mixtures: int = param(5, "Gaussians in M's mixture for each dimension of z", low=1, high=32)
    rnn_lr: float = param(3e-3, "Adam learning rate of M (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    rnn_steps: int = param(4000, "steps that train M on the encoded episodes, after V", low=1, high=10_000_000)
    seq_len: int = param(32, "steps of an episode M reads in one training sequence", low=2, high=100)
    rnn_batch: int = param(32, "sequences per step of M", low=1, high=4096)
    popsize: int = param(32, "candidate controllers the evolution strategy tries per generation (even)",
                         low=4, high=1024)
    dreams: int = param(4, "dreamed episodes that score each candidate (their mean return is its fitness)",
                        low=1, high=256)
    sigma: float = param(0.5, "the evolution strategy's first step size", low=0.001, high=10.0, log=True)
    temperature: float = param(1.15, "the dream's temperature: above 1, M's predictions are drawn wilder, a harder "
                               "world than the real one (applies live)", low=0.1, high=3.0, live=True)
    max_steps: int = param(100, "steps before an episode ends anyway, in the game and in the dream",
                           low=10, high=1000)
    steps: int = param(5400, "steps in all: vae_steps for V, rnn_steps for M, and one step per generation of C "
                       "for the rest", low=3, high=10_000_000)
    seed: int = param(0, "random seed for the game, initial weights and sampling", low=0, high=2**31 - 1)

    def __post_init__(self):
        if self.vae_steps + self.rnn_steps >= self.steps:
            raise ConfigError(f"vae_steps + rnn_steps ({self.vae_steps + self.rnn_steps}) must be below steps "
                              f"({self.steps}): the controller evolves for the steps that remain")
        if self.popsize % 2:
            raise ConfigError(f"popsize ({self.popsize}) must be even: candidates come in mirrored pairs")


GRID = (30, 2)  # the image grids: 28-pixel frames with 2 pixels of padding

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        # Real frames beside V's reconstructions of them, in pairs.
        ImagePane("frames", "wm-frames", placeholder="frames appear once training starts: {start}", tile=GRID,
                  group=2, side=True),
    )),
    Tab("Dream", "tab-dream", (
        # The same start and the same actions, played in the game (left of each pair) and
        # in M's dream (right), step by step.
        ImagePane("rollout", "wm-rollout", placeholder="the dream appears once M trains: {start}", tile=GRID,
                  group=2),
        ImagePane("frames", "wm-recon", placeholder="", tile=GRID, group=2),
    ), vertical=True),
)
