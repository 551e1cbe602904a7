"""The digit classifier that judges generated samples: it must read digits and must not be
fooled by noise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.data.digits import make_digits
from engine.metrics import digit_classifier as dc
from engine.metrics.digit_classifier import (DigitClassifier, accuracy, get_digit_classifier, score_digits,
                                             train_digit_classifier)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def clf(cache: Path) -> DigitClassifier:
    # A small, quick version of the real training run (same code path).
    return train_digit_classifier(seed=0, n=4000, epochs=2, cache_dir=cache)


Heldout = tuple[torch.Tensor, torch.Tensor]


@pytest.fixture(scope="module")
def heldout() -> Heldout:
    images, labels = make_digits(1000, seed=2024)  # never seen in training
    return images.unsqueeze(1).float() / 255, labels  # (N, 1, 28, 28), (N,)


def test_small_and_in_eval_mode(clf: DigitClassifier) -> None:
    assert sum(p.numel() for p in clf.parameters()) < 100_000
    assert not clf.training
    assert clf(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_reads_heldout_digits(clf: DigitClassifier, heldout: Heldout) -> None:
    images, labels = heldout
    assert accuracy(clf, images, labels) >= 0.9
    assert clf.heldout_accuracy >= 0.9


def test_scores_real_digits_above_noise_and_blank(clf: DigitClassifier, heldout: Heldout) -> None:
    images, _ = heldout
    real = score_digits(clf, images)
    assert set(real) == {"recognisability", "coverage", "confident"}
    assert all(0.0 <= v <= 1.0 for v in real.values())
    assert real["recognisability"] > 0.85
    assert real["coverage"] == 1.0

    g = torch.Generator().manual_seed(0)
    noise = score_digits(clf, torch.rand(500, 1, 28, 28, generator=g))
    black = score_digits(clf, torch.zeros(500, 1, 28, 28))
    assert noise["recognisability"] < real["recognisability"] - 0.3
    assert black["recognisability"] < real["recognisability"] - 0.3
    assert black["coverage"] <= 0.1  # every blank image gets the same answer: collapse
    assert noise["confident"] < 0.1


def test_coverage_detects_mode_collapse(clf: DigitClassifier, heldout: Heldout) -> None:
    images, labels = heldout
    only_ones_and_sevens = images[(labels == 1) | (labels == 7)]
    collapsed = score_digits(clf, only_ones_and_sevens)
    assert collapsed["coverage"] == pytest.approx(0.2)
    assert collapsed["recognisability"] > 0.8  # recognisable, yet collapsed


def test_score_accepts_unbatched_channel_and_empty(clf: DigitClassifier, heldout: Heldout) -> None:
    images, _ = heldout
    a = score_digits(clf, images[:100])
    b = score_digits(clf, images[:100, 0])  # (N, 28, 28)
    assert a == pytest.approx(b)
    assert score_digits(clf, torch.zeros(0, 1, 28, 28))["coverage"] == 0.0
    with pytest.raises(ValueError):
        score_digits(clf, torch.zeros(4, 3, 28, 28))


def test_get_digit_classifier_caches_and_survives_corruption(cache: Path, clf: DigitClassifier,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_train(**_: object) -> DigitClassifier:
        calls.append(1)
        return clf  # skip the full-size training: the caching logic is what is under test

    monkeypatch.setattr(dc, "train_digit_classifier", fake_train)
    first = get_digit_classifier(cache_dir=cache)
    assert calls == [1] and not first.training
    (path,) = cache.glob("digit-classifier-*.pt")
    second = get_digit_classifier(cache_dir=cache)  # from the file this time
    assert calls == [1]
    x = torch.rand(8, 1, 28, 28)
    assert torch.allclose(second(x), clf(x), atol=1e-6)
    assert second.heldout_accuracy == pytest.approx(clf.heldout_accuracy)

    path.write_bytes(b"\x00garbage")  # a corrupt cache means: train again, not crash
    third = get_digit_classifier(cache_dir=cache)
    assert calls == [1, 1] and isinstance(third, DigitClassifier)


def test_default_cache_respects_genstudio_home(tmp_path: Path, clf: DigitClassifier,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSTUDIO_HOME", str(tmp_path))
    monkeypatch.setattr(dc, "train_digit_classifier", lambda **_: clf)
    get_digit_classifier()
    assert list((tmp_path / "cache").glob("digit-classifier-*.pt"))
