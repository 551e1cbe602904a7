"""Hyperparameters and dashboard of the PixelCNN recipe (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.sources import IMAGE_SOURCES, SOURCE_HELP
from engine.panes import Curves, ImagePane, RasterPane, Tab
from engine.schema import param


@dataclass
class PixelCNNConfig:
    dataset: str = param("digits", SOURCE_HELP + "; digit-like sources are drawn at 28x28 grey, faces and "
                         "folders in colour at image_size", choices=IMAGE_SOURCES)
    data_path: str = param("", "folder holding MNIST files, or a folder of images, when dataset needs one",
                           path="dir")
    image_size: int = param(16, "side of faces and folder images in pixels (every pixel is one more step "
                            "when drawing)", choices=(16, 24, 32))
    levels: int = param(4, "grey levels per channel: each pixel's softmax has this many classes", low=2, high=16)
    width: int = param(32, "feature maps in every layer", low=4, high=512)
    blocks: int = param(4, "residual blocks after the first layer (each widens what a pixel sees by a ring)",
                        low=0, high=32)
    first_kernel: int = param(17, "kernel k of the first (mask A) layer: it sees every pixel up to k // 2 rows "
                              "up and k // 2 columns to each side", choices=(3, 5, 7, 9, 11, 13, 15, 17, 19, 21))
    positions: bool = param(True, "add a learned vector per row and per column to the first layer's features, "
                            "so a pixel knows where in the image it is")
    batch_size: int = param(32, "images per training step", low=1, high=4096)
    lr: float = param(8e-3, "peak Adam learning rate, cosine-decayed to a tenth by the last step (applies live)",
                      low=1e-5, high=1e-1, live=True, log=True)
    steps: int = param(1600, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)
    train_size: int = param(20000, "embedded digits or faces generated for training (validation adds 256)",
                            low=256, high=200_000)
    samples: int = param(64, "images drawn from a fixed seed for the grid and the scores at every refresh (each "
                         "is drawn pixel by pixel; coverage needs 50 or more)", low=4, high=1024)
    temperature: float = param(1.0, "sampling: divides the logits; below 1 draws the likeliest level more often "
                               "(applies live)", low=0.05, high=3.0, live=True)


GRID = (30, 2)  # the sample grid of digits: 28-pixel tiles with 2 pixels of padding

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no samples yet", tile=GRID, side=True),
    )),
    # The images are drawn pixel by pixel; the raster view replays that order and, on
    # request (the "draw" action), follows a new drawing as the engine makes it.
    Tab("Raster", "tab-raster", (RasterPane("raster", "raster", action="draw"),)),
    Tab("Field", "tab-field", (
        ImagePane("field", "field", placeholder="the receptive field appears once training starts"),
        ImagePane("field-layers", "field-layers", placeholder="", tile=GRID, side=True),
    )),
)
