"""Hyperparameters and dashboard of the English-to-French translator recipe (torch-free:
the studio builds its form, translate box and alignment view from this)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import AttentionPane, Curves, Tab, TranslatePane
from engine.schema import ConfigError, param


@dataclass
class TranslatorConfig:
    width: int = param(128, "size of every token's vector (d_model); must divide by heads", low=16, high=1024)
    heads: int = param(4, "attention heads in every attention layer", choices=(1, 2, 4, 8))
    layers: int = param(2, "encoder layers, and as many decoder layers", low=1, high=12)
    ff: int = param(256, "hidden size of each position's feed-forward network", low=16, high=8192)
    dropout: float = param(0.0, "dropout in attention and feed-forward (0 for short runs)", low=0.0, high=0.9)
    lr: float = param(2e-3, "peak AdamW learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    warmup: int = param(100, "steps over which the learning rate rises from 0 to lr", low=0, high=100_000)
    batch_size: int = param(64, "sentence pairs per step", low=1, high=4096)
    steps: int = param(1500, "optimisation steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for the data, the initial weights and the batches", low=0, high=2**31 - 1)
    train_size: int = param(20000, "generated sentence pairs to train on (dataset=generated)", low=100, high=1_000_000)
    dataset: str = param("generated", "generated (numbers, dates and sentences written by our code) or file "
                         "(data_path)", choices=("generated", "file"))
    data_path: str = param("", "a UTF-8 file of english<TAB>french pairs, one a line (dataset=file)",
                           path="file")
    beam: int = param(1, "beams when translating: 1 is greedy decoding (applies live)", choices=(1, 2, 4, 8), live=True)

    def __post_init__(self):
        if self.width % self.heads:
            raise ConfigError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        if self.dataset == "file" and not self.data_path.strip():
            raise ConfigError("dataset=file needs data_path=PATH (a UTF-8 file of english<TAB>french lines)")


DASHBOARD = (
    Tab("Train", "tab-train", (Curves(),)),
    Tab("Translate", "tab-translate", (
        TranslatePane("translation", "translate", params=("beam",)),
        AttentionPane("translation", "alignment", title="cross-attention"),
    ), vertical=True),
)
