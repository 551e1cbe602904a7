"""Hyperparameters and dashboard of the VQ-VAE recipe (torch-free): an autoencoder with a
codebook trains first, then a GPT learns the distribution of its codes."""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.sources import IMAGE_SOURCES, SOURCE_HELP
from engine.panes import Curves, ImagePane, Tab
from engine.schema import ConfigError, param


@dataclass
class VQVAEConfig:
    dataset: str = param("digits", SOURCE_HELP + "; all are drawn at 28x28, faces in colour", choices=IMAGE_SOURCES)
    data_path: str = param("", "folder holding MNIST files, or a folder of images, when dataset needs one",
                           path="dir")
    train_size: int = param(20000, "embedded digits or faces generated for training (validation adds 2,000)",
                            low=256, high=200_000)
    codes: int = param(64, "K, the codebook's size: every cell of the 7x7 grid holds one of K codes",
                       low=2, high=1024)
    code_dim: int = param(8, "D, the length of every code vector", low=1, high=256)
    width: int = param(32, "channels of the first conv layer; the encoder doubles it once", low=4, high=256)
    beta: float = param(0.25, "weight of the commitment term, which keeps the encoder's vectors near their codes",
                        low=0.0, high=10.0)
    codebook_init: str = param("data", "data: the codebook starts on encoder vectors of the first batch; random: on "
                               "random normal vectors", choices=("data", "random"))
    restart_after: int = param(200, "move a code that no image in this many batches used onto an encoder vector "
                               "(0: never)", low=0, high=100_000)
    lr: float = param(2e-3, "Adam learning rate of the autoencoder (applies live)", low=1e-5, high=1e-1, live=True,
                      log=True)
    ae_steps: int = param(1000, "steps that train the autoencoder; then its codes are computed once and the "
                          "prior trains for the rest", low=1, high=10_000_000)
    prior_width: int = param(64, "the prior GPT's width (size of every token's vector)", low=8, high=1024)
    prior_layers: int = param(3, "the prior GPT's Transformer blocks", low=1, high=24)
    prior_heads: int = param(4, "the prior GPT's attention heads; prior_width must divide by it", low=1, high=32)
    prior_lr: float = param(2e-3, "peak AdamW learning rate of the prior (warmup, then cosine decay; applies live)",
                            low=1e-5, high=1e-1, live=True, log=True)
    batch_size: int = param(64, "images (autoencoder) or code grids (prior) per step", low=2, high=4096)
    steps: int = param(2500, "training steps in all: ae_steps for the autoencoder, the rest for the prior",
                       low=2, high=10_000_000)
    temperature: float = param(1.0, "sampling the prior: below 1 sharpens every code's distribution (applies live)",
                               low=0.05, high=3.0, live=True)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)

    def __post_init__(self):
        if self.ae_steps >= self.steps:
            raise ConfigError(f"ae_steps ({self.ae_steps}) must be below steps ({self.steps}): the prior trains "
                              f"for steps - ae_steps")
        if self.prior_width % self.prior_heads:
            raise ConfigError(f"prior_width ({self.prior_width}) must be a multiple of prior_heads "
                              f"({self.prior_heads})")


GRID = (30, 2)  # the image grids: 28-pixel tiles with 2 pixels of padding

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", tile=GRID, side=True),
    )),
    Tab("Codes", "tab-codes", (
        # Each held-out digit as a triple: the image, its 7x7 grid of codes (a colour per
        # code) and the decoder's picture of that grid.
        ImagePane("recon", "recon", placeholder="the codes appear once training starts: {start}", tile=GRID,
                  group=3),
        ImagePane("usage", "usage", placeholder="", height=8),
    ), vertical=True),
    Tab("Prior", "tab-prior", (
        ImagePane("samples", "prior-samples", tile=GRID),
        ImagePane("prior_codes", "prior-codes", placeholder="", tile=GRID),
    )),
)
