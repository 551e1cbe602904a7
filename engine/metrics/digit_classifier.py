"""A small CNN that reads digits, used to score what a generative model draws.

We cannot judge generated digits by eye at every step, so we ask a classifier trained (by
our own code, on the embedded procedural digits) two questions:

* does each sample look like *some* digit? (the classifier is confident), and
* do the samples cover all ten digits? (a model that collapsed onto a few classes does not).

The classifier trains in a few seconds on the CPU and is cached in the GenStudio cache
folder, keyed by the digit generator's version, so it is trained once per machine.
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
from engine.data.digits import DIGITS_VERSION, load_digits, make_digits

# Bump when the architecture or the training recipe changes (old cache files are ignored).
CLASSIFIER_VERSION = 1
# The classifier's training digits use their own seed, distinct from the VAE's default (0),
# so the judge has never seen the exact images a model was trained on.
TRAIN_SEED = 12345
HELDOUT_SEED = 54321

Log = Callable[[str], None] | None


class DigitClassifier(nn.Module):
    """(B, 1, 28, 28) floats in [0, 1] -> (B, 10) logits. About 30k parameters.

    Strided convolutions instead of full-resolution convs + pooling: four times cheaper on
    a CPU, and digits at 28x28 need no more."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),  # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),  # (B, 32, 7, 7)
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),  # (B, 64, 7, 7)
            nn.AdaptiveAvgPool2d(3),  # (B, 64, 3, 3): keeps the coarse layout (a 6 vs a 9)
            nn.Flatten(),  # (B, 576)
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(576, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, 10)


def _non_digits(B: int, g: torch.Generator) -> torch.Tensor:
    """Images that are clearly not digits, (B, 1, 28, 28) in [0, 1]: flat grey, uniform
    noise, salt noise and smooth random blobs (what an untrained generator draws).

    A classifier trained only on digits extrapolates wildly: it calls uniform noise a digit
    with 100% confidence. Training it to answer "all ten classes equally likely" on these
    (outlier exposure, no extra class) makes its confidence mean something."""
    kind = torch.randint(0, 4, (B, 1, 1, 1), generator=g)
    level = torch.rand(B, 1, 1, 1, generator=g)
    flat = level.expand(B, 1, 28, 28)
    noise = torch.rand(B, 1, 28, 28, generator=g) * (0.2 + 0.8 * level)
    salt = (torch.rand(B, 1, 28, 28, generator=g) < 0.3 * level).float()
    coarse = torch.rand(B, 1, 4, 4, generator=g)  # (B, 1, 4, 4) -> smooth (B, 1, 28, 28)
    blobs = F.interpolate(coarse, size=28, mode="bicubic", align_corners=False)
    blobs = ((blobs - 0.3 - 0.4 * level) * 4).clamp(0, 1)
    return torch.where(kind == 0, flat, torch.where(kind == 1, noise, torch.where(kind == 2, salt, blobs)))


def _shift(x: torch.Tensor, g: torch.Generator, max_px: int = 2) -> torch.Tensor:
    """Move each image by up to max_px in x and y (zero fill): (B, 1, 28, 28) -> same.

    Generated samples are not perfectly centred; the judge should not care."""
    B = x.shape[0]
    padded = F.pad(x[:, 0], (max_px,) * 4)  # (B, 28+2m, 28+2m)
    dy, dx = torch.randint(0, 2 * max_px + 1, (2, B, 1), generator=g)  # (B, 1) each
    rows = (dy + torch.arange(28))[:, :, None]  # (B, 28, 1)
    cols = (dx + torch.arange(28))[:, None, :]  # (B, 1, 28)
    return padded[torch.arange(B)[:, None, None], rows, cols].unsqueeze(1)  # (B, 1, 28, 28)


def train_digit_classifier(device: str | torch.device = "cpu", seed: int = 0, n: int = 30000,
                           log: Log = None, cache_dir: Path | None = None,
                           epochs: int = 2) -> DigitClassifier:
    """Train a fresh classifier on ``n`` embedded digits and return it in eval mode.

    The held-out accuracy (on 2,000 freshly generated digits) is stored on the model as
    ``heldout_accuracy`` and reported through ``log``. The global RNG is left untouched, so
    a training run that asks for the classifier midway keeps its own random stream.
    """
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    dev = torch.device(device)
    images, labels = load_digits(n, TRAIN_SEED, cache_dir)  # (n, 28, 28) uint8, (n,)
    with isolated_rng(seed, dev) as g:  # g: batches and augmentation
        model = DigitClassifier().to(dev)
        say(f"training the digit classifier on {n} digits ({epochs} epochs)")

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            x = _shift(images[idx].unsqueeze(1).float().div(255), g)  # (b, 1, 28, 28)
            # Ink strength varies between pens and between models: dim some digits.
            x = x * (0.6 + 0.4 * torch.rand(x.shape[0], 1, 1, 1, generator=g))
            junk = _non_digits(max(1, x.shape[0] // 8), g)  # (j, 1, 28, 28)
            logits = model(torch.cat([x, junk]).to(dev))  # (b + j, 10)
            b = x.shape[0]
            # No label smoothing: it would cap the confidence on clean digits below 1,
            # and the non-digit images below already teach the model when to doubt.
            loss = F.cross_entropy(logits[:b], labels[idx].to(dev))
            # Non-digits: cross-entropy against the uniform distribution over the classes.
            return loss - 0.5 * F.log_softmax(logits[b:], dim=1).mean()

        fit_classifier(model, n, epochs, 3e-3, batch_loss, g, say)
    test_x, test_y = make_digits(2000, HELDOUT_SEED)
    acc = accuracy(model, test_x.unsqueeze(1).float().div(255), test_y)
    model.heldout_accuracy = acc
    say(f"digit classifier: held-out accuracy {acc:.2%} in {time.perf_counter() - t0:.1f}s")
    return model


@torch.inference_mode()
def _probs(clf: DigitClassifier, images: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Softmax probabilities (N, 10) for images (N, 1, 28, 28) or (N, 28, 28) in [0, 1]."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"expected images of shape (N, 1, 28, 28), got {tuple(images.shape)}")
    device = next(clf.parameters()).device
    was_training = clf.training
    clf.eval()
    out = [F.softmax(clf(images[i:i + chunk].to(device, torch.float32)), dim=1).cpu()
           for i in range(0, images.shape[0], chunk)]
    clf.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 10)


def accuracy(clf: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images (N, 1, 28, 28) in [0, 1] whose predicted class equals labels (N,)."""
    return (_probs(clf, images).argmax(1) == labels.cpu()).float().mean().item()


def score_digits(clf: DigitClassifier, images: torch.Tensor) -> dict[str, float]:
    """Judge generated digits, images float (N, 1, 28, 28) in [0, 1].

    recognisability: mean over samples of the classifier's top softmax probability. High
        means each sample looks clearly like *some* digit; blurry blends of two digits,
        scribbles, blank images and noise score low (about 0.1, i.e. "any of ten").
    coverage: fraction of the ten classes that are the top class of at least max(1, N/50)
        samples. A model that suffered mode collapse (draws only 1s and 7s, say) has low
        coverage even when every sample is recognisable. Needs N of a few hundred to be
        meaningful; with N < 50 one sample per class suffices.
    confident: fraction of samples whose top probability is at least 0.9: how many are
        unambiguous, rather than the average above.
    """
    probs = _probs(clf, images)  # (N, 10)
    n = probs.shape[0]
    if n == 0:
        return {"recognisability": 0.0, "coverage": 0.0, "confident": 0.0}
    top, cls = probs.max(dim=1)  # (N,), (N,)
    counts = torch.bincount(cls, minlength=10)  # (10,)
    return {
        "recognisability": top.mean().item(),
        "coverage": int((counts >= max(1.0, n / 50)).sum()) / 10,  # exact: 0.1, 0.2, ...
        "confident": int((top >= 0.9).sum()) / n,
    }


def get_digit_classifier(device: str | torch.device = "cpu", cache_dir: Path | None = None,
                         log: Log = None) -> DigitClassifier:
    """The cached classifier in eval mode, training (and caching) it on first use."""
    folder = Path(cache_dir) if cache_dir is not None else rundir.cache_dir()
    path = folder / f"digit-classifier-d{DIGITS_VERSION}-c{CLASSIFIER_VERSION}.pt"
    return cached_classifier(path, DigitClassifier, lambda: train_digit_classifier(device=device, log=log, cache_dir=folder),
                             device, log, "digit classifier")
