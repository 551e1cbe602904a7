"""Hyperparameters and dashboard of the denoising diffusion recipe (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.data.sources import IMAGE_SOURCES, SOURCE_HELP
from engine.panes import ActionPane, Controls, Curves, ImagePane, PlotPane, Tab, TimelinePane
from engine.schema import param

SHAPES = ("curve", "ring", "moons", "gaussians")  # engine.data.toy2d.TOY_SHAPES
SAMPLER_STEPS = (10, 25, 50, 100)


@dataclass
class DiffusionConfig:
    distributed: ClassVar[bool] = True  # trains on several processes: genstudio train diffusion --nproc N

    # The CPU preset (base 16, batch 32, lr 1e-3, linear schedule), chosen by scoring 64
    # fixed-seed DDIM-25 samples with the digit classifier after equal training time, one
    # thread on a busy 2-core machine: batch 64 and 32 scored alike per second (0.68 after
    # 167 s, 0.69 after 162 s at lr 2e-3); lr 1e-3 beat 2e-3 and 4e-3 (0.79, 0.75, 0.54 after
    # 2,000 steps); the cosine schedule trailed linear (0.51 against 0.69 after 1,600 steps).
    dataset: str = param("digits", SOURCE_HELP + ", or toy2d (2-D points); digit-like sources train at 28x28 "
                         "grey, faces at 32x32 RGB, a folder at image_size", choices=(*IMAGE_SOURCES, "toy2d"))
    toy_shape: str = param("moons", "the 2-D shape to learn, when dataset = toy2d", choices=SHAPES)
    data_path: str = param("", "folder holding MNIST files, or a folder of images, when dataset needs one",
                           path="dir")
    image_size: int = param(32, "side of the folder images in pixels (centre-cropped, resized, RGB)",
                            choices=(28, 32, 64))
    prediction: str = param("v", "what the U-Net outputs: eps (the added noise, as in DDPM) or v (a mix of "
                            "noise and image that learns faster here)", choices=("eps", "v"))
    schedule: str = param("linear", "noise schedule: linear betas (Ho et al.) or cosine alpha_bar (Nichol & Dhariwal)",
                          choices=("linear", "cosine"))
    timesteps: int = param(1000, "T: noising steps from a clean image to pure noise", low=50, high=4000)
    base: int = param(16, "U-Net channels at full resolution, doubled further down (toy2d: the MLP has 8x as many units)",
                      low=4, high=256)
    batch_size: int = param(32, "images (or points) per training step", low=4, high=4096)
    lr: float = param(1e-3, "AdamW learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    ema_decay: float = param(0.995, "how slowly the averaged weights used for sampling follow the trained ones",
                             low=0.0, high=0.9999)
    steps: int = param(5000, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)
    train_size: int = param(20000, "embedded digits or faces generated for training (validation adds 256)",
                            low=256, high=200_000)
    sampler_steps: int = param(25, "DDIM steps used by the samples, the timeline and the scores (applies live)",
                               choices=SAMPLER_STEPS, live=True)


GRID = (30, 2)  # the recipe's image grids: 28-pixel digits with 2 pixels of padding

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", tile=GRID, side=True),
    )),
    Tab("Forward", "tab-forward", (
        PlotPane("schedule", "schedule"),
        ImagePane("forward", "forward", placeholder="the noised digits appear once training starts"),
    ), vertical=True),
    Tab("Timeline", "tab-timeline", (
        TimelinePane("timeline", "timeline-meta", "timeline"),
    )),
    Tab("Samplers", "tab-samplers", (
        Controls(("sampler_steps",), "sampler-steps", "DDIM steps for the comparison"),
        # The comparison runs the full DDPM chain: too slow for the periodic views, so it is
        # made on request (the button sends the "compare" action with sampler_steps).
        ActionPane("compare", "compare", "compare", "Compare DDPM and DDIM", params=("sampler_steps",)),
    ), vertical=True),
)
