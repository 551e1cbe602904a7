"""An exponential moving average of a model's weights: the copy that diffusion models (and
any recipe that wants cleaner samples than its jittery training weights) sample from.

    ema <- d * ema + (1 - d) * weights,    d = min(decay, (1 + n) / (10 + n))

after the n-th optimiser step. A diffusion loss is noisy (a random t per image), so the
weights jitter from step to step; their running average draws cleaner images than any
single snapshot (Ho et al. and most later work sample from it). The warm-up of ``d`` keeps
the average from remembering the random initial weights for thousands of steps.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA(nn.Module):
    """``EMA(model, decay)``; call :meth:`update` after every optimiser step and sample from
    ``ema.model``. Buffers (batch-norm statistics, say) are copied, not averaged."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # saved in checkpoints
        self.n = 0  # the same count as a Python int: reading the buffer would sync the GPU

    def decay_now(self) -> float:
        """The decay of the next update: small at first, rising to ``decay``."""
        n = self.n + 1
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.decay_now()
        self.n += 1
        self.updates.fill_(self.n)
        ema, new = list(self.model.parameters()), [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema, new, 1 - d)  # all tensors in one call: ema += (1 - d) (new - ema)
        for mine, theirs in zip(self.model.buffers(), model.buffers()):
            mine.copy_(theirs)

    def set_updates(self, n: int) -> None:
        """Say how many updates the average has had (a checkpoint that did not record it)."""
        self.n = int(n)
        self.updates.fill_(self.n)

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        if "updates" not in state:
            # A checkpoint from before this class: the averaged model's own state dict. The
            # recipe that saved it also saved its step count and passes it to set_updates.
            state = {**{f"model.{k}": v for k, v in state.items()}, "updates": torch.zeros((), dtype=torch.long)}
        out = super().load_state_dict(state, strict=strict, assign=assign)
        self.n = int(self.updates)
        return out
