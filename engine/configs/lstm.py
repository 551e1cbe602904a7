"""Hyperparameters and dashboard of the LSTM recipe (torch-free). The corpus, tokeniser and
sampling settings are the GPT lesson's own, so the two lessons take the same values."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.configs.gpt import DASHBOARD as GPT_DASHBOARD
from engine.configs.gpt import GPTConfig
from engine.panes import HiddenStatePane, Tab
from engine.schema import ConfigError, param


def like_gpt(name: str):
    """The GPT config's declaration of ``name`` (default, range, help), for this config."""
    f = GPTConfig.__dataclass_fields__[name]
    return field(default=f.default, metadata=f.metadata)


@dataclass
class LSTMConfig:
    embed: int = param(64, "size of a token's vector (the embedding)", low=4, high=4096)
    hidden: int = param(128, "size of the hidden state h and cell c in every layer", low=4, high=8192)
    layers: int = param(2, "LSTM layers stacked (each reads the hidden states of the one below)", low=1, high=8)
    dropout: float = param(0.0, "dropout between layers and before the output (0 for short runs)", low=0.0, high=0.9)
    corpus: str = like_gpt("corpus")
    corpus_path: str = like_gpt("corpus_path")
    tokenizer: str = like_gpt("tokenizer")
    vocab_size: int = like_gpt("vocab_size")
    batch_size: int = param(32, "streams of text read side by side (the corpus is cut into this many strips)",
                            low=1, high=4096)
    bptt: int = param(32, "tokens per chunk: how far back gradients flow (truncated backpropagation through time)",
                      low=2, high=4096)
    carry_state: bool = param(True, "carry the hidden state from one chunk to the next (false: start every "
                              "chunk from zeros)")
    clip: float = param(1.0, "gradient clipping: scale the gradient down to at most this norm (0 turns it off)",
                        low=0.0, high=1000.0)
    lr: float = param(3e-3, "peak Adam learning rate (applies live)", low=1e-5, high=1e-1, live=True, log=True)
    warmup: int = param(50, "steps over which the learning rate rises from 0 to lr", low=0, high=100_000)
    steps: int = param(5000, "optimisation steps before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for the initial weights, the strips' offsets and sampling", low=0,
                      high=2**31 - 1)
    temperature: float = like_gpt("temperature")
    top_k: int = like_gpt("top_k")
    top_p: float = like_gpt("top_p")
    max_new_tokens: int = like_gpt("max_new_tokens")

    def __post_init__(self):
        if self.corpus == "file" and not self.corpus_path.strip():
            raise ConfigError("corpus=file needs corpus_path=PATH (a UTF-8 text file)")


GPT_TABS = {tab.id: tab for tab in GPT_DASHBOARD}
# The GPT lesson's Train tab (curves, a sample) and Sample tab (the sampling panel), then our own.
DASHBOARD = (
    GPT_TABS["tab-train"],
    GPT_TABS["tab-sample"],
    Tab("Hidden state", "tab-hidden", (HiddenStatePane("hidden", "hidden"),)),
)
