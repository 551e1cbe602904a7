"""A scoring classifier trained once per machine and kept in the GenStudio cache.

The digit, face and shape classifiers that score generated samples are all kept the same
way: a file ``{"state": weights, "accuracy": held-out accuracy, ...}`` written atomically,
loaded with ``weights_only=True``, trained under a file lock so that two engines starting
at once train it once, and trained again (with a message) when the file is damaged.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from engine import rundir
from engine.cachetools import file_lock, one_cycle_adamw


def fit_classifier(model: nn.Module, n: int, epochs: int, lr: float, batch_loss: Callable[[torch.Tensor], torch.Tensor],
                   generator: torch.Generator, say: Callable[[str], None], batch: int = 128) -> nn.Module:
    """The training loop the scoring classifiers share: ``epochs`` passes over ``n`` examples
    in batches, shuffled by ``generator``, AdamW with a one-cycle schedule peaking at ``lr``.
    ``batch_loss(indices)`` returns the loss of one batch (augmenting it as it likes)."""
    opt, sched = one_cycle_adamw(model, lr, epochs * math.ceil(n / batch))
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch):
            loss = batch_loss(order[i:i + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        say(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
    return model.eval()


def _load(path: Path, build: Callable[[], nn.Module], device) -> nn.Module | None:
    """The cached model, or None if the file is missing or damaged."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = build()
        model.load_state_dict(blob["state"])
        acc = blob["accuracy"]
        model.heldout_accuracy = {k: float(v) for k, v in acc.items()} if isinstance(acc, dict) else float(acc)
        return model.to(device).eval()
    except Exception:  # noqa: BLE001 - any damage means "train again"
        return None


def cached_classifier(path: Path, build: Callable[[], nn.Module], train: Callable[[], nn.Module],
                      device: str | torch.device = "cpu", log: Callable[[str], None] | None = None,
                      what: str = "classifier", extra: dict[str, Any] | None = None) -> nn.Module:
    """The classifier cached at ``path`` in eval mode on ``device``, made by ``train()`` (which
    returns a model with ``heldout_accuracy``, a float or a dict of floats) the first time.
    ``build()`` makes an untrained model of the same shape, to load the weights into."""
    model = _load(path, build, device)
    if model is not None:
        return model
    with file_lock(path.with_name(path.name + ".lock")):
        model = _load(path, build, device)  # another process may have trained it while we waited
        if model is not None:
            return model
        if log is not None:
            why = "the cached one is damaged" if path.exists() else "none is cached yet"
            log(f"training a {what} ({why}; once per machine)")
        # A recipe may ask for its judge inside its views, under torch.inference_mode() or
        # no_grad(); training needs gradients whatever the caller's mode (StyleGAN's first
        # views on a fresh machine failed with "element 0 of tensors does not require grad").
        with torch.inference_mode(False), torch.enable_grad():
            model = train()
        buf = io.BytesIO()
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"state": state, "accuracy": model.heldout_accuracy, **(extra or {})}, buf)
        rundir.atomic_write_bytes(path, buf.getvalue())
    return model
