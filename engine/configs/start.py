"""Hyperparameters and dashboard of the "Start here" recipe: a classifier and a generative
model trained side by side on the same labelled points (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Curves, ImagePane, Tab, TextPane
from engine.schema import param

CLASSES = ("blue", "orange")  # engine.data.classes2d.CLASS_NAMES


@dataclass
class StartConfig:
    noise: float = param(0.35, "std of each of the eight clusters (wider: the classes overlap more)",
                         low=0.05, high=1.0)
    components: int = param(4, "Gaussians per class in the generative model (the data has 4 per class)",
                            low=1, high=16)
    hidden: int = param(32, "units in each of the classifier's two hidden layers", low=2, high=512)
    train_size: int = param(2000, "labelled training points (2,000 more are held out)", low=10, high=200_000)
    batch_size: int = param(256, "training points per step", low=1, high=65536)
    lr: float = param(0.05, "Adam learning rate of both models, cosine-decayed to a tenth by the last step "
                      "(applies live)", low=1e-4, high=1.0, live=True, log=True)
    steps: int = param(1000, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for the data, initial weights and batches", low=0, high=2**31 - 1)
    sample_class: str = param("both", "which class the generative model draws new points of: both (y ~ p(y)), "
                              "or one class (x ~ p(x | y)) (applies live)", choices=("both", *CLASSES), live=True)


DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", side=True),
    )),
    Tab("Samples", "tab-samples", (
        ImagePane("samples", "samples", placeholder="the generative model's new points appear once training starts"),
        TextPane("classifier", "classifier-panel", placeholder="the classifier's answer appears once training starts"),
    )),
    Tab("Classifier", "tab-classifier", (
        ImagePane("boundary", "boundary", placeholder="the classifier's boundary appears once training starts"),
    )),
    Tab("Density", "tab-density", (
        ImagePane("density", "density", placeholder="the learned density appears once training starts"),
    )),
)
