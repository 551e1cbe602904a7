"""Hyperparameters and dashboard of the 2-D GAN recipe (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Curves, ImagePane, Tab
from engine.schema import param

SHAPES = ("curve", "ring", "moons", "gaussians")  # engine.data.toy2d.TOY_SHAPES
STEP_MODES = ("both", "discriminator", "generator")


@dataclass
class GAN2DConfig:
    shape: str = param("curve", "the 2-D shape the generator must learn", choices=SHAPES)
    noise_dim: int = param(2, "size of the generator's input noise z", low=1, high=64)
    hidden: int = param(64, "units in each hidden layer of both networks", low=4, high=1024)
    layers: int = param(2, "hidden layers in each network", low=1, high=6)
    lr_g: float = param(3e-4, "generator learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    lr_d: float = param(3e-4, "discriminator learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    step_mode: str = param("both", "which network each step trains (applies live)", choices=STEP_MODES, live=True)
    batch_size: int = param(512, "real and generated points per step", low=8, high=65536)
    steps: int = param(6000, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)


DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("field", "train-field", placeholder="no points yet", side=True),
    )),
    Tab("Field", "tab-field", (
        ImagePane("field", "field", placeholder="the points and the discriminator's map appear once training starts"),
    )),
)
