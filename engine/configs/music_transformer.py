"""Hyperparameters and dashboard of the music Transformer recipe: the GPT of the Transformers
lesson, reading and writing event tokens of Bach's chorales (torch-free: the studio builds
its form, the continuation panel and the attention viewer from this)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import AttentionPane, Curves, PianoRollPane, Tab
from engine.schema import ConfigError, param

CONTINUE = ("temperature", "prompt_piece", "prompt_bars")  # the continuation panel's boxes


@dataclass
class MusicTransformerConfig:
    dataset: str = param("chorales", "music to learn: chorales (Bach, from music21's corpus) or midi (data_path)",
                         choices=("chorales", "midi"))
    data_path: str = param("", "a folder of your .mid/.midi files (with dataset=midi); 4/4 is assumed", path="dir")
    max_pieces: int = param(0, "read only the first N pieces (0 = all)", low=0, high=100_000)
    layers: int = param(4, "Transformer blocks", low=1, high=48)
    heads: int = param(4, "attention heads per block; width must divide by it", low=1, high=64)
    width: int = param(128, "size of every token's vector", low=8, high=4096)
    context: int = param(128, "the most tokens the model sees at once (a bar is about 24)", low=16, high=4096)
    dropout: float = param(0.1, "dropout after attention and MLP (the chorales are few)", low=0.0, high=0.9)
    batch_size: int = param(16, "sequences per step (each of context tokens)", low=1, high=4096)
    lr: float = param(2e-3, "peak AdamW learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    warmup: int = param(100, "steps over which the learning rate rises from 0 to lr", low=0, high=100_000)
    weight_decay: float = param(0.1, "AdamW weight decay on the weight matrices", low=0.0, high=1.0)
    steps: int = param(600, "optimisation steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for the initial weights, the batches and sampling", low=0, high=2**31 - 1)
    temperature: float = param(1.0, "sampling: below 1 sharpens the distribution, above 1 flattens it, 0 is greedy",
                               low=0.0, high=5.0, live=True)
    top_k: int = param(0, "sampling: keep only the k most likely tokens (0 keeps all)", low=0, high=100_000,
                       live=True)
    prompt_piece: int = param(1, "continuation: which held-out piece gives the prompt (1 = the first)",
                              low=1, high=100_000, live=True)
    prompt_bars: int = param(4, "continuation: bars of that piece given as the prompt", low=1, high=16, live=True)
    new_bars: int = param(4, "continuation: bars the model writes after the prompt", low=1, high=32, live=True)

    def __post_init__(self):
        if self.width % self.heads:
            raise ConfigError(f"width ({self.width}) must be a multiple of heads ({self.heads})")


DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        PianoRollPane("sample", "train-roll", placeholder="no continuation yet: {start}"),
    ), vertical=True),
    Tab("Continue", "tab-continue", (
        PianoRollPane("continuation", "continue-roll", action="continue", params=CONTINUE,
                      placeholder="r (or Enter in a box) continues the prompt once training has started"),
    )),
    Tab("Attention", "tab-attention", (
        AttentionPane("attention", "attention", title="self-attention over music tokens"),
    )),
)
