"""A small CNN that reads the attributes of cartoon faces, used to judge what a model draws.

A conditional GAN is asked for "blond, glasses, smiling, no hat": did it draw that? A
CycleGAN turns blond hair black: is the hair black now, and is everything else unchanged?
We answer with a classifier trained (by our own code, on the procedural faces of
engine.data.faces) to read every attribute at once: one shared trunk, one head each.

It trains in seconds on the CPU and is cached in the GenStudio cache folder, keyed by the
face generator's version, the image size and this file's version, so it is trained once
per machine and size.
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
from engine.data.faces import ATTRIBUTE_CLASSES, FACE_ATTRIBUTES, FACES_VERSION, load_faces, make_faces
from engine.cachetools import isolated_rng
from engine.device import one_thread

# Bump when the architecture or the training recipe changes (old cache files are ignored).
CLASSIFIER_VERSION = 1
# Its own seeds: the judge never trains on the exact faces a generative model trains on.
TRAIN_SEED = 23456
HELDOUT_SEED = 65432
WORK_SIZE = 32  # the trunk reads 32x32; larger faces are averaged down to it first

Log = Callable[[str], None] | None


class FaceClassifier(nn.Module):
    """(B, 3, size, size) floats in [0, 1] -> {attribute: (B, classes) logits}. ~60k parameters.

    Faces larger than 32x32 are area-averaged to 32x32 first: every attribute is readable
    at 32 (the data set is designed for that), and one trunk then serves all sizes."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.size = size
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 4, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # (B, 16, 16, 16)
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),  # (B, 32, 8, 8)
            nn.Conv2d(32, 48, 3, padding=1), nn.BatchNorm2d(48), nn.ReLU(),  # (B, 48, 8, 8)
            nn.Conv2d(48, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),  # (B, 64, 4, 4)
            nn.Flatten(),  # (B, 1024): keeps where things are (a hat is on top, a mouth below)
            nn.Dropout(0.2),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(1024, k) for name, k in ATTRIBUTE_CLASSES.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[-1] != WORK_SIZE:
            x = F.adaptive_avg_pool2d(x, WORK_SIZE)  # (B, 3, 32, 32)
        features = self.trunk(x)  # (B, 1024)
        return {name: head(features) for name, head in self.heads.items()}  # (B, k) each


def _augment(x: torch.Tensor, g: torch.Generator, max_px: int = 2) -> torch.Tensor:
    """Mirror half the faces and move each by up to max_px (edges repeated): (B, 3, S, S).

    Every attribute survives a mirror image, and generated faces are never placed exactly
    like the training faces; the judge should not care about either."""
    B, _, S, _ = x.shape
    flip = torch.rand(B, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (max_px,) * 4, mode="replicate")  # (B, 3, S+2m, S+2m)
    dy, dx = torch.randint(0, 2 * max_px + 1, (2, B), generator=g)  # (B,) each
    rows = (dy[:, None] + torch.arange(S))[:, None, :, None]  # (B, 1, S, 1)
    cols = (dx[:, None] + torch.arange(S))[:, None, None, :]  # (B, 1, 1, S)
    x = padded[torch.arange(B)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
    # Models get colours slightly wrong: vary brightness and contrast a little.
    gain = 1 + 0.1 * (2 * torch.rand(B, 1, 1, 1, generator=g) - 1)
    return ((x - 0.5) * gain + 0.5 + 0.04 * (2 * torch.rand(B, 1, 1, 1, generator=g) - 1)).clamp(0, 1)


def train_face_classifier(device: str | torch.device = "cpu", seed: int = 0, n: int | None = None, size: int = 32,
                          log: Log = None, cache_dir: Path | None = None, epochs: int = 3) -> FaceClassifier:
    """Train a fresh classifier on ``n`` generated faces of ``size`` px; eval mode.

    By default n is 16,000 at 32 px and 8,000 above: bigger faces cost four times as much
    to draw, and averaged down to the trunk's 32 px they are no harder to read.

    Its accuracy per attribute on 2,000 held-out faces is stored on the model as
    ``heldout_accuracy`` (a dict) and reported through ``log``. The global RNG is left
    untouched, so a training run that asks for the judge midway keeps its random stream.
    """
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    dev = torch.device(device)
    if n is None:
        n = 16000 if size <= WORK_SIZE else 8000
    images, labels = load_faces(n, TRAIN_SEED, size, cache_dir)  # (n, 3, S, S) uint8, {name: (n,)}
    targets = torch.stack([labels[name] for name in FACE_ATTRIBUTES], dim=1)  # (n, A)
    # One CPU thread: this small net gains little from a second one, and on a busy machine
    # two threads were twice as slow (43 s against 18 s for the default run).
    with isolated_rng(seed, dev) as g, one_thread():  # g: batches and augmentation
        model = FaceClassifier(size).to(dev)
        say(f"training the face classifier on {n} faces of {size}x{size} ({epochs} epochs)")

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            x = _augment(images[idx].float().div(255), g).to(dev)  # (b, 3, S, S)
            y = targets[idx].to(dev)  # (b, A)
            logits = model(x)
            return sum(F.cross_entropy(logits[name], y[:, a]) for a, name in enumerate(FACE_ATTRIBUTES))

        fit_classifier(model, n, epochs, 4e-3, batch_loss, g, say)
    test_x, test_y = make_faces(2000, HELDOUT_SEED, size)
    acc = attribute_accuracy(model, test_x.float().div(255), test_y)
    model.heldout_accuracy = acc
    shown = ", ".join(f"{name} {value:.1%}" for name, value in acc.items())
    say(f"face classifier: held-out accuracy {shown} in {time.perf_counter() - t0:.1f}s")
    return model


@torch.inference_mode()
def attribute_probs(clf: FaceClassifier, images: torch.Tensor, chunk: int = 1024) -> dict[str, torch.Tensor]:
    """Softmax probabilities {attribute: (N, classes)} for faces (N, 3, S, S): floats in
    [0, 1], or uint8 in 0..255."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        images = images.float().div(255)
    device = next(clf.parameters()).device
    was_training = clf.training
    clf.eval()
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in FACE_ATTRIBUTES}
    for i in range(0, images.shape[0], chunk):
        logits = clf(images[i:i + chunk].to(device, torch.float32))
        for name in FACE_ATTRIBUTES:
            parts[name].append(F.softmax(logits[name], dim=1).cpu())
    clf.train(was_training)
    return {name: torch.cat(p) if p else torch.zeros(0, ATTRIBUTE_CLASSES[name]) for name, p in parts.items()}


def predict_attributes(clf: FaceClassifier, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The most likely class per attribute: {attribute: int64 (N,)} for faces (N, 3, S, S)."""
    return {name: p.argmax(1) for name, p in attribute_probs(clf, images).items()}


def attribute_accuracy(clf: FaceClassifier, images: torch.Tensor,
                       labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per attribute, the fraction of faces (N, 3, S, S) whose predicted class equals its
    label (N,). Only the attributes present in ``labels`` are scored; 0.0 for no faces."""
    pred = predict_attributes(clf, images)
    return {name: (pred[name] == labels[name].cpu()).float().mean().item() if len(labels[name]) else 0.0
            for name in FACE_ATTRIBUTES if name in labels}


def get_face_classifier(device: str | torch.device = "cpu", size: int = 32, cache_dir: Path | None = None,
                        log: Log = None) -> FaceClassifier:
    """The cached classifier for faces of ``size`` px in eval mode, trained (and cached) on
    first use."""
    folder = Path(cache_dir) if cache_dir is not None else rundir.cache_dir()
    path = folder / f"face-classifier-f{FACES_VERSION}-s{size}-c{CLASSIFIER_VERSION}.pt"
    return cached_classifier(path, lambda: FaceClassifier(size),
                             lambda: train_face_classifier(device=device, size=size, log=log, cache_dir=folder),
                             device, log, f"face classifier for {size}x{size}", extra={"size": size})
