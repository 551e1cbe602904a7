"""Hyperparameters and dashboard of the CycleGAN recipe (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Curves, ImagePane, Tab
from engine.schema import param

SIZES = (32, 64)  # face sizes in pixels; 64 is four times the work (a GPU preset)


@dataclass
class CycleGANConfig:
    lr: float = param(5e-4, "Adam learning rate of all four networks (applies live)", low=1e-5, high=1e-1,
                      live=True, log=True)
    lr_decay: float = param(0.5, "last share of the steps over which lr falls in a straight line to 0, as in "
                            "the paper (0: constant lr)", low=0.0, high=1.0)
    lambda_cycle: float = param(10.0, "weight of the cycle loss |x - back(there(x))| (applies live)",
                                low=0.0, high=100.0, live=True)
    lambda_identity: float = param(5.0, "weight of the identity loss |y - there(y)|, absolute, not a fraction "
                                   "of lambda_cycle; 0 switches it off (applies live)", low=0.0, high=100.0, live=True)
    size: int = param(32, "face size in pixels (64: four times the work, for a GPU)", choices=SIZES)
    width: int = param(16, "channels of the first conv layer in every network; each downsampling doubles it",
                       low=4, high=128)
    res_blocks: int = param(2, "residual blocks in the middle of each generator", low=0, high=9)
    batch_size: int = param(8, "faces of each domain per training step", low=1, high=512)
    steps: int = param(480, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for the faces, initial weights and sampling", low=0, high=2**31 - 1)
    train_size: int = param(2000, "training faces drawn for each hair colour (unpaired: different people)",
                            low=64, high=50_000)


# The views always show faces at 32 px (64 px faces are averaged down for the screen):
# a tile pitch of 34 px, 2 of them padding.
GRID = (34, 2)

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("cycle_ab", "train-cycle", placeholder="no faces yet", tile=GRID, group=3, side=True),
    )),
    Tab("Translate", "tab-translate", (
        ImagePane("cycle_ab", "cycle-ab", placeholder="blond -> black -> blond appears once training starts",
                  tile=GRID, group=3),
        ImagePane("cycle_ba", "cycle-ba", placeholder="black -> blond -> black appears once training starts",
                  tile=GRID, group=3),
    )),
)
