"""Hyperparameters and dashboard of the energy-based model recipe (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Curves, ImagePane, Tab, TimelinePane
from engine.schema import param

SHAPES = ("curve", "ring", "moons", "gaussians")  # engine.data.toy2d.TOY_SHAPES

# The two datasets need different numbers for the same settings: a 28x28 image's energy
# changes by about as much as a point's when each of its 784 pixels moves a little, so its
# gradient per pixel is hundreds of times smaller and the Langevin step hundreds of times
# larger. The fields' defaults are the toy2d column. A value equal to the other dataset's
# preset counts as "the preset", so switching dataset switches these too; any other value
# is the learner's choice and is kept.
PRESETS: dict[str, dict[str, float | int]] = {
    "toy2d": {"step_size": 0.01, "noise": 0.03, "grad_clip": 0.0, "batch_size": 128, "buffer_size": 2048,
              "fresh": 0.05, "steps": 2000},
    "digits": {"step_size": 10.0, "noise": 0.005, "grad_clip": 0.03, "batch_size": 64, "buffer_size": 8192,
               "fresh": 0.2, "steps": 1000},
}


@dataclass
class EBMConfig:
    dataset: str = param("toy2d", "toy2d (points in the plane) or digits (embedded, 28x28)",
                         choices=("toy2d", "digits"))
    toy_shape: str = param("ring", "the 2-D shape to learn, when dataset = toy2d", choices=SHAPES)
    hidden: int = param(64, "units in each hidden layer of the 2-D energy network (toy2d)", low=8, high=1024)
    width: int = param(16, "channels of the first conv layer of the digit energy network, doubled twice (digits)",
                       low=4, high=128)
    alpha: float = param(0.1, "weight of the alpha * (E_real^2 + E_sample^2) term that keeps energies near 0",
                         low=0.0, high=10.0)
    langevin_steps: int = param(20, "Langevin steps each training step runs on its batch of chains (applies live)",
                                low=1, high=1000, live=True)
    step_size: float = param(0.01, "Langevin: x -= step_size * dE/dx each step (applies live; digits: 10)",
                             low=1e-5, high=1000.0, live=True, log=True)
    noise: float = param(0.03, "Langevin: std of the Gaussian noise added each step (applies live; digits: 0.005)",
                         low=0.0, high=1.0, live=True)
    grad_clip: float = param(0.0, "cap on each coordinate of dE/dx in a Langevin step, 0 for none "
                             "(applies live; digits: 0.03)", low=0.0, high=100.0, live=True)
    fresh: float = param(0.05, "share of each batch of chains restarted from noise instead of the buffer "
                         "(applies live; digits: 0.2)", low=0.0, high=1.0, live=True)
    buffer_size: int = param(2048, "samples kept in the replay buffer (digits: 8192)", low=64, high=100_000)
    batch_size: int = param(128, "real examples, and chains, per training step (digits: 64)", low=4, high=4096)
    lr: float = param(2e-3, "Adam learning rate (applies live)", low=1e-6, high=1e-1, live=True, log=True)
    sample_steps: int = param(100, "Langevin steps the views and scores run from fixed noise (applies live)",
                              low=1, high=2000, live=True)
    steps: int = param(2000, "training steps before the run finishes (digits: 1000)", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights, the buffer and sampling", low=0, high=2**31 - 1)
    train_size: int = param(20000, "embedded digits generated for training (digits)", low=256, high=200_000)

    def __post_init__(self):
        mine = PRESETS[self.dataset]
        for other, preset in PRESETS.items():
            if other == self.dataset:
                continue
            for key, value in preset.items():
                if getattr(self, key) == value and value != mine[key]:
                    setattr(self, key, type(mine[key])(mine[key]))


GRID = (30, 2)  # the digits' image grids: 28-pixel tiles with 2 pixels of padding (a toy picture is no grid)

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", tile=GRID, side=True),
    )),
    Tab("Chains", "tab-chains", (
        TimelinePane("chains", "chains-meta", "chains"),
    )),
    Tab("Buffer", "tab-buffer", (
        ImagePane("buffer", "buffer", placeholder="the replay buffer appears once training starts", tile=GRID),
    )),
)
