"""Hyperparameters of the VAE recipe (torch-free, so the studio can build its form)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.data.sources import IMAGE_SOURCES, SOURCE_HELP
from engine.panes import Curves, ImagePane, PointsPane, Tab
from engine.schema import param


@dataclass
class VAEConfig:
    distributed: ClassVar[bool] = True  # trains on several processes: genstudio train vae --nproc N

    latent_dim: int = param(4, "size of the latent code z (2 draws the latent map directly)", low=1, high=64)
    beta: float = param(1.0, "weight of the KL term: >1 smoother latent space, <1 sharper reconstructions", low=0.0, high=20.0)
    lr: float = param(2e-3, "Adam learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    batch_size: int = param(128, "images per training step", low=4, high=4096)
    width: int = param(32, "channels of the first conv layer; the encoder doubles it once", low=4, high=256)
    steps: int = param(2500, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)
    dataset: str = param("digits", SOURCE_HELP, choices=IMAGE_SOURCES)
    data_path: str = param("", "folder holding MNIST files, or a folder of images, when dataset needs one",
                           path="dir")
    train_size: int = param(20000, "embedded digits or faces generated for training (validation adds 2,000)",
                            low=256, high=200_000)


GRID = (30, 2)  # the recipe's image grids: 28-pixel digits with 2 pixels of padding

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", tile=GRID, side=True),
    )),
    Tab("Samples", "tab-samples", (
        ImagePane("samples", "samples", tile=GRID),
        ImagePane("recon", "recon", placeholder="reconstructions appear once training starts", tile=GRID, group=2),
    )),
    Tab("Latent", "tab-latent", (
        PointsPane("latent_map", "latent-map"),
        ImagePane("latent_walk", "walk", placeholder="the latent walk appears once training starts", height=10),
    ), vertical=True),
)
