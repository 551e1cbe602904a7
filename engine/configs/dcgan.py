"""Hyperparameters and dashboard of the DCGAN recipe (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.data.sources import IMAGE_SOURCES, SOURCE_HELP
from engine.panes import Curves, ImagePane, Tab
from engine.schema import param


@dataclass
class DCGANConfig:
    distributed: ClassVar[bool] = True  # trains on several processes: genstudio train dcgan --nproc N

    noise_dim: int = param(64, "size of the generator's input noise z", low=1, high=512)
    width: int = param(32, "channels of D's first conv and G's last; doubled at each scale", low=4, high=256)
    lr_g: float = param(1e-3, "generator learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    lr_d: float = param(1e-3, "discriminator learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    batch_size: int = param(64, "real and generated images per step", low=8, high=4096)
    steps: int = param(3000, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)
    dataset: str = param("digits", SOURCE_HELP + "; digit-like sources train at 28x28 grey, faces and folders at "
                         "64x64 RGB", choices=IMAGE_SOURCES)
    data_path: str = param("", "folder holding MNIST files, or a folder of images, when dataset needs one",
                           path="dir")
    train_size: int = param(20000, "embedded digits or faces generated for training", low=256, high=200_000)


GRID = (30, 2)  # the recipe's image grids: 28-pixel digits with 2 pixels of padding

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", tile=GRID, side=True),
    )),
    Tab("Samples", "tab-samples", (
        ImagePane("samples", "samples", tile=GRID),
        ImagePane("interpolation", "interpolation", tile=GRID,
                  placeholder="the latent interpolation appears once training starts"),
    )),
)
