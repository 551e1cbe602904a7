"""Hyperparameters and dashboard of the prompt-to-image recipe: a text encoder and a
diffusion U-Net trained together on captioned shapes, sampled with classifier-free
guidance (torch-free: the studio builds its form and prompt box from this)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Curves, ImagePane, PromptImagePane, Tab
from engine.schema import param

GUIDANCE_MAX = 15.0


@dataclass
class TextToImageConfig:
    size: int = param(32, "image size in pixels: 32 for CPUs, 64 for GPUs", choices=(32, 64))
    base: int = param(16, "U-Net channels at full resolution (doubled at the lower levels)", low=8, high=256)
    text_dim: int = param(64, "size of the caption vector the text encoder makes", low=8, high=512)
    schedule: str = param("cosine", "noise schedule: how fast the forward process destroys an image",
                          choices=("linear", "cosine"))
    timesteps: int = param(1000, "steps T of the forward (noising) process", low=10, high=4000)
    p_uncond: float = param(0.1, "caption dropout: share of training images shown with the empty caption "
                                 "(teaches the unconditional model guidance needs)", low=0.0, high=0.9)
    batch_size: int = param(32, "images per training step", low=4, high=4096)
    lr: float = param(2e-3, "AdamW learning rate (applies live)", low=1e-5, high=1e-2, live=True, log=True)
    ema_decay: float = param(0.995, "decay of the moving average of the weights the views sample from",
                             low=0.0, high=0.99999)
    steps: int = param(2000, "training steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for data, initial weights and sampling", low=0, high=2**31 - 1)
    train_size: int = param(20000, "captioned shapes drawn for training", low=256, high=200_000)
    sampler_steps: int = param(10, "DDIM steps per sample (applies live): fewer is faster, rougher",
                               choices=(10, 25, 50), live=True)
    guidance: float = param(2.0, "classifier-free guidance scale w (applies live): 0 ignores the caption, "
                                 "1 is the plain conditional model, more follows it harder",
                            low=0.0, high=GUIDANCE_MAX, live=True)
    prompt: str = param("a large red circle at the top left",
                        "the caption the Prompt and Guidance tabs draw (applies live)", live=True)


GRID = (34, 2)  # 32-pixel images with 2 pixels of padding (64-pixel runs are shown at 32)

DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        ImagePane("samples", "train-samples", placeholder="no images yet", side=True, tile=GRID),
    )),
    Tab("Prompt", "tab-prompt", (PromptImagePane("prompted", "prompt", params=("guidance",)),)),
    Tab("Guidance", "tab-guidance", (ImagePane("sweep", "sweep"),)),
)
