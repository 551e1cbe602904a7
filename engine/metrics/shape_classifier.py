"""A small CNN that reads shape, colour, size and position, used to score what a
text-to-image model draws for a prompt.

"a small red circle at the top left": did the model draw a circle, red, small, at the top
left? We answer with a classifier trained by our own code on the captioned shapes of
engine.data.shapes: one shared trunk, one head per attribute. A prompt counts as followed
when every attribute it names is read back right.

It trains in a few seconds on the CPU and is cached in the GenStudio cache folder, keyed by
the shape drawing's version and this file's version, so it is trained once per machine.
Images of any size are area-averaged to 32x32 first, so one classifier serves every size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine import rundir
from engine.metrics.cached import cached_classifier, fit_classifier
from engine.cachetools import isolated_rng
from engine.device import one_thread
from engine.data.shapes import ATTRIBUTE_CLASSES, ATTRIBUTES, SHAPES_VERSION, make_shapes

# Bump when the architecture or the training recipe changes (old cache files are ignored).
CLASSIFIER_VERSION = 1
# Its own seeds: the judge never trains on the exact images a generative model trains on.
TRAIN_SEED = 34567
HELDOUT_SEED = 76543
WORK_SIZE = 32

Log = Callable[[str], None] | None


class ShapeClassifier(nn.Module):
    """(B, 3, S, S) floats in [0, 1] -> {attribute: (B, classes) logits}. ~45k parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # (B, 16, 32, 32)
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),  # (B, 32, 16, 16)
            nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.BatchNorm2d(48), nn.ReLU(),  # (B, 48, 8, 8)
            nn.Conv2d(48, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),  # (B, 64, 4, 4)
            nn.Flatten(),  # (B, 1024): keeps where the shape is
            nn.Dropout(0.2),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(1024, k) for name, k in ATTRIBUTE_CLASSES.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[-1] != WORK_SIZE:
            x = F.adaptive_avg_pool2d(x, WORK_SIZE)  # (B, 3, 32, 32)
        features = self.trunk(x)
        return {name: head(features) for name, head in self.heads.items()}  # (B, k) each


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Generated images are never quite clean: vary brightness and contrast a little and add
    a little pixel noise, so the judge reads the attributes, not the exact pixel values."""
    B = x.shape[0]
    gain = 1 + 0.1 * (2 * torch.rand(B, 1, 1, 1, generator=g) - 1)
    shift = 0.04 * (2 * torch.rand(B, 1, 1, 1, generator=g) - 1)
    noise = 0.03 * torch.randn(x.shape, generator=g)
    return ((x - 0.5) * gain + 0.5 + shift + noise).clamp(0, 1)


def train_shape_classifier(device: str | torch.device = "cpu", seed: int = 0, n: int = 8000, epochs: int = 2,
                           log: Log = None) -> ShapeClassifier:
    """Train a fresh classifier on n drawn shapes (32x32); eval mode. Its accuracy per
    attribute on 2,000 held-out shapes is stored as ``heldout_accuracy``. The global RNG is
    left untouched, so a run that asks for the judge midway keeps its random stream."""
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    dev = torch.device(device)
    images, labels = make_shapes(n, TRAIN_SEED, WORK_SIZE)
    targets = torch.stack([labels[name] for name in ATTRIBUTES], dim=1)  # (n, 4)
    with isolated_rng(seed, dev) as g, one_thread():
        model = ShapeClassifier().to(dev)
        say(f"training the shape classifier on {n} shapes ({epochs} epochs)")

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            x = _augment(images[idx].float().div(255), g).to(dev)
            y = targets[idx].to(dev)
            logits = model(x)
            return sum(F.cross_entropy(logits[name], y[:, a]) for a, name in enumerate(ATTRIBUTES))

        fit_classifier(model, n, epochs, 4e-3, batch_loss, g, say)
    test_x, test_y = make_shapes(2000, HELDOUT_SEED, WORK_SIZE)
    acc = score_prompts(model, test_x, test_y)
    model.heldout_accuracy = acc
    shown = ", ".join(f"{name} {value:.1%}" for name, value in acc.items())
    say(f"shape classifier: held-out accuracy {shown} in {time.perf_counter() - t0:.1f}s")
    return model


@torch.inference_mode()
def predict(clf: ShapeClassifier, images: torch.Tensor, chunk: int = 1024) -> dict[str, torch.Tensor]:
    """The most likely class per attribute: {attribute: int64 (N,)} on the CPU, for images
    (N, 3, S, S): floats in [0, 1], or uint8."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        images = images.float().div(255)
    device = next(clf.parameters()).device
    was_training = clf.training
    clf.eval()
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in ATTRIBUTES}
    for i in range(0, images.shape[0], chunk):
        logits = clf(images[i:i + chunk].to(device, torch.float32))
        for name in ATTRIBUTES:
            parts[name].append(logits[name].argmax(1).cpu())
    clf.train(was_training)
    return {name: torch.cat(p) if p else torch.zeros(0, dtype=torch.long) for name, p in parts.items()}


def matches(clf: ShapeClassifier, images: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per attribute, a bool (N,): did the classifier read what was asked? A label of -1
    (the prompt did not say) matches anything; attributes missing from labels likewise."""
    pred = predict(clf, images)
    n = images.shape[0]
    out = {}
    for name in ATTRIBUTES:
        want = labels[name].cpu().long() if name in labels else torch.full((n,), -1)
        out[name] = (pred[name] == want) | (want < 0)
    return out


def score_prompts(clf: ShapeClassifier, images: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Prompt accuracy of images drawn for prompts with these labels:
    {"shape", "colour", "position", "size": the share of images whose attribute was read as
    asked; "all": the share with every attribute right}. -1 labels match anything."""
    ok = matches(clf, images, labels)
    n = max(1, images.shape[0])
    out = {name: ok[name].sum().item() / n for name in ("shape", "colour", "position", "size")}
    every = torch.stack([ok[name] for name in ATTRIBUTES]).all(0)
    out["all"] = every.sum().item() / n
    return out


def get_shape_classifier(device: str | torch.device = "cpu", cache_dir: Path | None = None,
                         log: Log = None) -> ShapeClassifier:
    """The cached classifier in eval mode, trained (and cached) on first use."""
    folder = Path(cache_dir) if cache_dir is not None else rundir.cache_dir()
    path = folder / f"shape-classifier-v{SHAPES_VERSION}-c{CLASSIFIER_VERSION}.pt"
    return cached_classifier(path, ShapeClassifier, lambda: train_shape_classifier(device=device, log=log),
                             device, log, "shape classifier")
