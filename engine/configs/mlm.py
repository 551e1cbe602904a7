"""Hyperparameters and dashboard of the masked language model (torch-free). The corpus and
its settings are the GPT lesson's own; the tokens are always words, so a blank is a word."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.configs.lstm import like_gpt
from engine.panes import AttentionPane, Curves, FillPane, Tab, TextPane
from engine.schema import ConfigError, param


@dataclass
class MLMConfig:
    tokenizer: ClassVar[str] = "word"  # one token per word or punctuation mark (spaces are dropped)

    layers: int = param(2, "Transformer blocks", low=1, high=48)
    heads: int = param(4, "attention heads per block; width must divide by it", low=1, high=64)
    width: int = param(64, "size of every token's vector", low=8, high=4096)
    context: int = param(32, "the most tokens (words and punctuation) the model reads at once", low=8, high=4096)
    dropout: float = param(0.0, "dropout after attention and MLP (0 for short runs)", low=0.0, high=0.9)
    mask_rate: float = param(0.15, "share of the words chosen for the model to predict in every training sequence "
                             "(the held-out blanks stay at BERT's 0.15)",
                             low=0.01, high=0.9)
    corpus: str = like_gpt("corpus")
    corpus_path: str = like_gpt("corpus_path")
    vocab_size: int = like_gpt("vocab_size")
    batch_size: int = param(128, "sequences per step (each of context tokens)", low=1, high=4096)
    lr: float = param(5e-3, "peak AdamW learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    warmup: int = param(100, "steps over which the learning rate rises from 0 to lr", low=0, high=100_000)
    weight_decay: float = param(0.1, "AdamW weight decay on the weight matrices", low=0.0, high=1.0)
    steps: int = param(1800, "optimisation steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for the initial weights, the batches and their masks", low=0, high=2**31 - 1)

    def __post_init__(self):
        if self.width % self.heads:
            raise ConfigError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        if self.corpus == "file" and not self.corpus_path.strip():
            raise ConfigError("corpus=file needs corpus_path=PATH (a UTF-8 text file)")


DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        TextPane("guesses", "train-guesses", placeholder="no guesses yet: {start}", height=8),
    ), vertical=True),
    Tab("Fill", "tab-fill", (FillPane("fill", "fill"),)),
    Tab("Attention", "tab-attention", (AttentionPane("attention", "attention", title="self-attention, both ways"),)),
)
