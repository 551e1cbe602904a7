"""What a model family provides to the runner. The runner owns the loop, timing, control,
checkpoints and events; a recipe owns the model, the data, one training step and its views."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import torch


@dataclass
class Artifact:
    """One view the recipe produced: an image array (uint8 HxW or HxWx3) or a points dict."""

    name: str
    kind: str  # "image" (an array, saved as PNG) | "points" | "data" (a JSON-ready dict)
    data: Any
    caption: str = ""


@dataclass
class RunContext:
    device: torch.device
    log: Callable[[str], None] = lambda message: None  # the runner passes its event log
    need_data: bool = True  # False when only sampling from a checkpoint
    rank: int = 0  # this process's place among world_size processes training together (DDP)
    world_size: int = 1


@dataclass
class Recipe:
    """Base class; subclasses fill in the methods below."""

    ctx: RunContext
    cfg: Any
    batch_size: int = 1
    train_size: int = 1  # examples in the training set; 0 when every step draws fresh data
    cpu_threads: int | None = None  # tiny models run faster on one CPU thread than on many
    view_interval: float = 3.0  # seconds between refreshes of the views, at the least
    unit: str = "samples"  # what batch_size counts, for the speed shown (GPT: tokens)
    wrapped: dict = field(default_factory=dict)  # name -> its DistributedDataParallel wrapper (torchrun)

    checkpointed: ClassVar[tuple[str, ...]] = ()
    """Attributes the default state_dict() saves under their own names: modules and
    optimisers (their state_dict) and torch.Generators (their random state)."""
    nan_hint: ClassVar[str] = "lower the learning rate (lr) or beta and start again."
    """What the learner should try when the loss becomes NaN or infinite (the runner says it)."""

    ddp_modules: ClassVar[tuple[str, ...]] = ()
    """The modules that train. Under torchrun (``--nproc N``) the runner wraps each in
    DistributedDataParallel, which averages their gradients across the processes during
    backward(); train_step calls them through :meth:`train_module`. Views and evaluation use
    the plain modules (on rank 0 alone: a wrapper's forward would wait for the others)."""

    def train_module(self, name: str) -> torch.nn.Module:
        """The module called ``name`` as train_step should call it: its DDP wrapper under
        torchrun, the module itself otherwise."""
        return self.wrapped.get(name) or getattr(self, name)

    def no_sync(self, name: str):
        """Accumulate ``name``'s gradients locally for one backward: the next backward then
        averages the sum across processes (two forwards, one optimiser step)."""
        wrapper = self.wrapped.get(name)
        return wrapper.no_sync() if wrapper is not None else contextlib.nullcontext()

    def data_seed(self, offset: int) -> int:
        """A seed for this process's data stream: under DDP every process draws its own
        batches (rank 0's stream is the single-process one, so a run is reproducible)."""
        return int(self.cfg.seed) + offset + 7919 * self.ctx.rank

    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimisation step; returns detached scalar tensors (no .item(): the runner
        reads them at the reporting rate)."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Validation and quality metrics (called every few seconds)."""
        return {}

    def samples(self) -> list[Artifact]:
        """The views to show now (called every few seconds and on demand)."""
        return []

    def digit_judge(self):
        """The digit classifier that scores drawn digits (recognisability, coverage), loaded
        from the cache (or fitted there once) on first use and kept as ``self.classifier``."""
        if getattr(self, "classifier", None) is None:
            from engine.metrics.digit_classifier import get_digit_classifier

            self.classifier = get_digit_classifier(self.ctx.device, log=self.ctx.log)
        return self.classifier

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n new images (N, C, H, W) in [0, 1] from the current model, for export."""
        raise NotImplementedError

    def interact(self, name: str, args: dict) -> Iterator[Artifact]:
        """Answer a learner's request (generate from this prompt, translate this sentence):
        yield artifacts as they become ready; the runner writes each one at once, so a
        long answer can arrive in parts. Bad input raises ValueError with a message for
        the learner."""
        raise ValueError(f"this lesson has no {name!r} action")
        yield  # pragma: no cover  (makes this a generator)

    def set_live(self, key: str, value: Any) -> None:
        """Apply a hyperparameter change between steps (only for params marked live)."""
        raise KeyError(key)

    def state_dict(self) -> dict:
        out = {}
        for name in self.checkpointed:
            part = getattr(self, name)
            out[name] = part.get_state() if isinstance(part, torch.Generator) else part.state_dict()
        return out

    def load_state_dict(self, state: dict) -> None:
        for name in self.checkpointed:
            part = getattr(self, name)
            if isinstance(part, torch.Generator):
                part.set_state(state[name].cpu())
            else:
                part.load_state_dict(state[name])


def warmup_cosine(step: int, lr: float, warmup: int, total: int, floor: float = 0.1) -> float:
    """The learning rate at ``step``: a linear warmup from 0 to ``lr`` over ``warmup`` steps
    (large early updates from random weights can wreck attention layers), then a cosine
    decay to ``floor`` x lr at step ``total`` (small steps at the end settle the weights)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
