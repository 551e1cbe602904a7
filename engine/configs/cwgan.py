"""Hyperparameters and dashboard of the conditional WGAN-GP recipe on cartoon faces
(torch-free: the studio builds its form, attribute picker and latent explorer from this)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Controls, Curves, ImagePane, Tab
from engine.schema import param

# The attributes a learner can ask for ("any" lets each face draw its own); the values match
# engine.data.faces.ATTRIBUTE_VALUES, with yes/no for the two-valued ones.
YES_NO = ("any", "yes", "no")
HAIR = ("any", "blond", "black", "brown", "red")  # engine.data.faces.HAIR_COLOURS
# Latent arithmetic: the direction that adds an attribute to faces that lack it.
DIRECTIONS = ("glasses", "smiling", "hat", "blond to black")
PICK_PARAMS = ("pick_glasses", "pick_hair", "pick_smiling", "pick_hat")


@dataclass
class CWGANConfig:
    size: int = param(32, "image size in pixels: 32 for CPUs, 64 for GPUs", choices=(32, 64))
    noise_dim: int = param(64, "size of the noise z; the attribute labels are added to it", low=2, high=512)
    width: int = param(16, "channels of the generator's last and the critic's first layer", low=8, high=256)
    lr: float = param(4e-4, "Adam learning rate of both networks (applies live)", low=1e-5, high=1e-2, live=True, log=True)
    critic_steps: int = param(2, "critic updates per generator update (applies live)", low=1, high=10, live=True)
    gp_weight: float = param(10.0, "weight of the gradient penalty (applies live)", low=0.0, high=100.0, live=True)
    batch_size: int = param(32, "faces per critic and generator update", low=4, high=4096)
    steps: int = param(3000, "generator updates before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)
    train_size: int = param(20000, "embedded faces generated for training", low=256, high=200_000)
    pick_glasses: str = param("any", "attribute picker: glasses on the Picked faces", choices=YES_NO, live=True)
    pick_hair: str = param("any", "attribute picker: hair colour on the Picked faces", choices=HAIR, live=True)
    pick_smiling: str = param("any", "attribute picker: smiling on the Picked faces", choices=YES_NO, live=True)
    pick_hat: str = param("any", "attribute picker: hat on the Picked faces", choices=YES_NO, live=True)
    explore: str = param("glasses", "latent explorer: the direction added to faces", choices=DIRECTIONS, live=True)


GRID = (34, 2)  # 32-pixel faces with 2 pixels of padding
FACE_SCALE = 0.75  # faces need more pixels than digits to show a smile or glasses

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no faces yet", tile=GRID, side=True, min_scale=FACE_SCALE),
    )),
    Tab("Picker", "tab-picker", (
        Controls(PICK_PARAMS, "picker", "Choose the attributes; the generator draws faces that have them."),
        ImagePane("picked", "picked", placeholder="the picked faces appear once training starts", tile=GRID,
                  group=2, min_scale=FACE_SCALE),  # (generated | real) pairs
    ), vertical=True),
    Tab("Explorer", "tab-explorer", (
        Controls(("explore",), "explorer", "Each row is one face; left to right, more of the direction is added."),
        ImagePane("explore", "explore", placeholder="the latent explorer appears once training starts"),
    ), vertical=True),
)
