"""Hyperparameters and dashboard of the latent diffusion recipe (torch-free): an autoencoder
trains first (or comes from a finished VQ-VAE run), then the diffusion lesson's U-Net
learns to draw its latents."""

from __future__ import annotations

from dataclasses import dataclass

from engine.configs.diffusion import SAMPLER_STEPS
from engine.data.sources import IMAGE_SOURCES, SOURCE_HELP
from engine.panes import Curves, ImagePane, Tab, TimelinePane
from engine.schema import ConfigError, param


@dataclass
class LatentDiffusionConfig:
    dataset: str = param("digits", SOURCE_HELP + "; all are drawn at 28x28, faces in colour", choices=IMAGE_SOURCES)
    data_path: str = param("", "folder holding MNIST files, or a folder of images, when dataset needs one",
                           path="dir")
    train_size: int = param(20000, "embedded digits or faces generated for training (validation adds 2,000)",
                            low=256, high=200_000)
    autoencoder_run: str = param("", "a finished vqvae run (or latent_diffusion run) whose autoencoder to use: "
                                 "then phase 1 is skipped and every step trains the U-Net", path="dir")
    latent_channels: int = param(4, "C, the numbers in each cell of the autoencoder's 7x7 latent grid",
                                 low=1, high=16)
    ae_width: int = param(32, "channels of the autoencoder's first conv layer; its encoder doubles it once",
                          low=4, high=256)
    kl_weight: float = param(1e-3, "weight of the autoencoder's KL term: small, so the latents keep the detail",
                             low=0.0, high=10.0)
    ae_lr: float = param(2e-3, "Adam learning rate of the autoencoder (applies live)", low=1e-5, high=1e-1,
                         live=True, log=True)
    ae_steps: int = param(600, "steps that train the autoencoder; then every image is encoded once and the U-Net "
                          "trains for the rest", low=1, high=10_000_000)
    base: int = param(32, "U-Net channels at the latent grid's full 7x7 resolution, doubled at 4x4", low=4,
                      high=256)
    lr: float = param(2e-3, "peak AdamW learning rate of the U-Net (warmup, then cosine decay; applies live)",
                      low=1e-5, high=1e-1, live=True, log=True)
    ema_decay: float = param(0.995, "how slowly the averaged U-Net weights used for sampling follow the trained ones",
                             low=0.0, high=0.9999)
    batch_size: int = param(64, "images (autoencoder) or latent grids (U-Net) per step", low=4, high=4096)
    steps: int = param(2600, "training steps in all: ae_steps for the autoencoder, the rest for the U-Net",
                       low=2, high=10_000_000)
    sampler_steps: int = param(25, "DDIM steps used by the samples, the timeline and the scores (applies live)",
                               choices=SAMPLER_STEPS, live=True)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)

    def __post_init__(self):
        if not self.autoencoder_run and self.ae_steps >= self.steps:
            raise ConfigError(f"ae_steps ({self.ae_steps}) must be below steps ({self.steps}): the U-Net trains "
                              f"for steps - ae_steps")


GRID = (30, 2)  # the image grids: 28-pixel tiles with 2 pixels of padding

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", tile=GRID, side=True),
    )),
    Tab("Latents", "tab-latents", (
        # Each held-out digit as a triple: the image, its latent grid (one small square per
        # channel) and the decoder's picture of that latent.
        ImagePane("recon", "recon", placeholder="the latents appear once training starts: {start}", tile=GRID,
                  group=3),
        # Latents drawn by the U-Net beside what they decode to.
        ImagePane("drawn", "drawn", placeholder="the U-Net's latents appear once it trains", tile=GRID, group=2),
    ), vertical=True),
    Tab("Timeline", "tab-timeline", (
        TimelinePane("timeline", "timeline-meta", "timeline"),
    )),
)
