"""Hyperparameters and dashboard of the style-based generator on cartoon faces (torch-free:
the studio builds its form and the mixing and noise pickers from this)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Controls, Curves, ImagePane, Tab
from engine.schema import param

# Style mixing: the row face's styles drive every layer up to this resolution, the column
# face's the layers above it (engine.models.stylegan.layers_up_to).
COARSE = ("4x4", "8x8", "16x16")
# The Noise tab: which layers get a fresh noise draw in each column (the others keep none).
NOISE_LAYERS = ("all", "4x4-8x8", "16x16-32x32")
FACE_SETS = (1, 2, 3, 4, 5)  # the faces the mixing grid and the noise view are drawn from


@dataclass
class StyleGANConfig:
    z_dim: int = param(64, "size of the noise z fed to the mapping network", low=2, high=512)
    w_dim: int = param(64, "size of the style vector w", low=2, high=512)
    mapping_layers: int = param(4, "layers of the mapping network z -> w", low=1, high=8)
    width: int = param(8, "generator channels at 32x32, doubled at each halving of the side up to 4x", low=2,
                       high=256)
    critic_width: int = param(16, "channels of the critic's first layer; doubled at each halving", low=4, high=256)
    lr: float = param(5e-4, "Adam learning rate of both networks; the mapping network takes a tenth "
                      "(applies live)", low=1e-5, high=1e-2, live=True, log=True)
    critic_steps: int = param(1, "critic updates per generator update (applies live)", low=1, high=10, live=True)
    gp_weight: float = param(10.0, "weight of the critic's gradient penalty (applies live)", low=0.0, high=100.0,
                             live=True)
    mixing_prob: float = param(0.9, "share of training faces drawn from two styles with a random crossover "
                               "(mixing regularisation; applies live)", low=0.0, high=1.0, live=True)
    ema_decay: float = param(0.99, "decay of the moving average of the generator's weights the views draw from",
                             low=0.0, high=0.9999)
    batch_size: int = param(32, "faces per critic and generator update", low=4, high=4096)
    steps: int = param(1500, "generator updates before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)
    train_size: int = param(20000, "embedded faces generated for training", low=256, high=200_000)
    coarse: str = param("8x8", "style mixing: the row face's styles drive the layers up to this size, the column "
                        "face's the rest", choices=COARSE, live=True)
    face_set: int = param(1, "which faces the Mixing and Noise tabs draw", choices=FACE_SETS, live=True)
    noise_in: str = param("all", "Noise tab: the layers that get a fresh noise draw in each column",
                          choices=NOISE_LAYERS, live=True)


GRID = (34, 2)  # 32-pixel faces with 2 pixels of padding
FACE_SCALE = 0.75  # faces need more pixels than digits to show a smile or glasses

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no faces yet", tile=GRID, side=True, min_scale=FACE_SCALE),
    )),
    Tab("Mixing", "tab-mixing", (
        Controls(("coarse", "face_set"), "mix-controls",
                 "Row faces give the coarse styles, column faces the fine ones."),
        ImagePane("mixing", "mixing", placeholder="the style-mixing grid appears once training starts"),
    ), vertical=True),
    Tab("Noise", "tab-noise", (
        Controls(("noise_in", "face_set"), "noise-controls",
                 "One w per row; each column a new noise draw. Last two: spread, no noise."),
        ImagePane("noise", "noise", placeholder="the noise view appears once training starts"),
    ), vertical=True),
)
