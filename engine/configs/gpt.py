"""Hyperparameters and dashboard of the GPT recipe (torch-free: the studio builds its form,
sampling panel and attention viewer from this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.panes import AttentionPane, Curves, SamplerPane, Tab, TextPane
from engine.schema import ConfigError, param

# model -> (layers, heads, width, context). "10m" is the ~10M-parameter GPU model.
MODELS = {
    "tiny": (4, 4, 128, 64),
    "10m": (6, 6, 384, 256),
}
SAMPLING = ("temperature", "top_k", "top_p", "max_new_tokens")


@dataclass
class GPTConfig:
    distributed: ClassVar[bool] = True  # trains on several processes: genstudio train gpt --nproc N

    model: str = param("tiny", "size: tiny (CPU, 0.8M parameters), 10m (GPU: 6 layers, 6 heads, width 384, "
                       "context 256) or custom (the four values below)", choices=("tiny", "10m", "custom"))
    layers: int = param(4, "Transformer blocks (model=custom only)", low=1, high=48)
    heads: int = param(4, "attention heads per block; width must divide by it (model=custom only)", low=1, high=64)
    width: int = param(128, "size of every token's vector (model=custom only)", low=8, high=4096)
    context: int = param(64, "the most tokens the model sees at once (model=custom only)", low=8, high=4096)
    dropout: float = param(0.0, "dropout after attention and MLP (0 for short runs)", low=0.0, high=0.9)
    corpus: str = param("python-docs", "text to learn: python-docs (ships with Python) or file (corpus_path)",
                        choices=("python-docs", "file"))
    corpus_path: str = param("", "a UTF-8 text file to learn from (with corpus=file)", path="file")
    tokenizer: str = param("char", "char: one token per character; word: one per word or punctuation mark",
                           choices=("char", "word"))
    vocab_size: int = param(4000, "words kept by the word tokeniser (the rest become one unknown token)",
                            low=100, high=100_000)
    batch_size: int = param(32, "sequences per step (each of context tokens)", low=1, high=4096)
    lr: float = param(2e-3, "peak AdamW learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    warmup: int = param(100, "steps over which the learning rate rises from 0 to lr", low=0, high=100_000)
    weight_decay: float = param(0.1, "AdamW weight decay on the weight matrices", low=0.0, high=1.0)
    steps: int = param(1200, "optimisation steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for the initial weights, the batches and sampling", low=0, high=2**31 - 1)
    compile: bool = param(False, "torch.compile the model (pays back on GPUs in runs of minutes)")
    temperature: float = param(0.8, "sampling: below 1 sharpens the distribution, above 1 flattens it, 0 is greedy",
                               low=0.0, high=5.0, live=True)
    top_k: int = param(0, "sampling: keep only the k most likely tokens (0 keeps all)", low=0, high=100_000, live=True)
    top_p: float = param(1.0, "sampling: keep the most likely tokens whose probabilities add up to p (1 keeps all)",
                         low=0.01, high=1.0, live=True)
    max_new_tokens: int = param(200, "sampling: how many tokens to generate", low=1, high=2000, live=True)

    def __post_init__(self):
        if self.model != "custom":
            fixed = dict(zip(("layers", "heads", "width", "context"), MODELS[self.model]))
            chosen = {k: getattr(self, k) for k in fixed}
            default = dict(zip(fixed, MODELS["tiny"]))
            changed = [k for k in fixed if chosen[k] != default[k] and chosen[k] != fixed[k]]
            if changed:
                raise ConfigError(f"{', '.join(changed)} only apply with model=custom (model={self.model} fixes "
                                  f"them); add model=custom")
            for k, v in fixed.items():
                setattr(self, k, v)
        if self.width % self.heads:
            raise ConfigError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        if self.corpus == "file" and not self.corpus_path.strip():
            raise ConfigError("corpus=file needs corpus_path=PATH (a UTF-8 text file)")


DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        TextPane("sample", "train-sample", height=9),
    ), vertical=True),
    Tab("Sample", "tab-sample", (SamplerPane("generation", "sampler"),)),
    Tab("Attention", "tab-attention", (AttentionPane("attention", "attention", title="self-attention"),)),
)
