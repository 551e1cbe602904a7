"""The face attribute classifier that judges generated faces: it must read every attribute
of held-out faces, train deterministically and leave the caller's random stream alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.data.faces import ATTRIBUTE_CLASSES, FACE_ATTRIBUTES, FACES_VERSION, HAIR_COLOURS, faces_with, make_faces
from engine.metrics import face_classifier as fc
from engine.metrics.face_classifier import (CLASSIFIER_VERSION, FaceClassifier, attribute_accuracy, attribute_probs,
                                            get_face_classifier, predict_attributes, train_face_classifier)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def clf(cache: Path) -> FaceClassifier:
    # A smaller, quicker version of the real training run (same code path).
    return train_face_classifier(seed=0, n=8000, epochs=3, cache_dir=cache)


Heldout = tuple[torch.Tensor, dict[str, torch.Tensor]]


@pytest.fixture(scope="module")
def heldout() -> Heldout:
    images, labels = make_faces(1000, seed=2024)  # never seen in training
    return images.float() / 255, labels  # (N, 3, 32, 32) in [0, 1], {name: (N,)}


def test_small_and_in_eval_mode(clf: FaceClassifier) -> None:
    assert sum(p.numel() for p in clf.parameters()) < 100_000
    assert not clf.training
    out = clf(torch.zeros(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (2, c) for k, c in ATTRIBUTE_CLASSES.items()}


def test_reads_every_attribute_of_heldout_faces(clf: FaceClassifier, heldout: Heldout) -> None:
    images, labels = heldout
    acc = attribute_accuracy(clf, images, labels)
    assert set(acc) == set(FACE_ATTRIBUTES)
    assert min(acc.values()) >= 0.97, acc
    assert set(clf.heldout_accuracy) == set(FACE_ATTRIBUTES)
    assert min(clf.heldout_accuracy.values()) >= 0.97, clf.heldout_accuracy


def test_judges_a_cyclegan_domain(clf: FaceClassifier) -> None:
    """All-black-hair faces are read as black hair: what a blond -> black translation is
    scored against."""
    black = HAIR_COLOURS.index("black")
    images, _ = faces_with({"hair": black}, 200, seed=77)
    hair = predict_attributes(clf, images)["hair"]
    assert (hair == black).float().mean() > 0.97


def test_predictions_probabilities_and_inputs(clf: FaceClassifier, heldout: Heldout) -> None:
    images, labels = heldout
    pred = predict_attributes(clf, images[:50])
    assert all(p.dtype == torch.int64 and p.shape == (50,) for p in pred.values())
    probs = attribute_probs(clf, images[:50])
    assert all(torch.allclose(p.sum(1), torch.ones(50)) for p in probs.values())
    # uint8 faces in 0..255 are read like floats in [0, 1].
    as_bytes = (images[:50] * 255).round().to(torch.uint8)
    assert all(torch.equal(predict_attributes(clf, as_bytes)[k], pred[k]) for k in FACE_ATTRIBUTES)
    # Only the attributes given are scored; empty input is fine; wrong shapes are refused.
    assert set(attribute_accuracy(clf, images[:50], {"hair": labels["hair"][:50]})) == {"hair"}
    assert predict_attributes(clf, torch.zeros(0, 3, 32, 32))["hair"].shape == (0,)
    with pytest.raises(ValueError):
        predict_attributes(clf, torch.zeros(4, 1, 32, 32))
    # A 64 px classifier reads 64 px faces (averaged down to its 32 px trunk).
    assert FaceClassifier(64)(torch.zeros(2, 3, 64, 64))["hair"].shape == (2, len(HAIR_COLOURS))


def test_training_is_deterministic_and_leaves_global_rng_alone(cache: Path) -> None:
    torch.manual_seed(123)
    before, threads = torch.random.get_rng_state(), torch.get_num_threads()
    a = train_face_classifier(seed=1, n=256, epochs=1, cache_dir=cache)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.get_num_threads() == threads
    b = train_face_classifier(seed=1, n=256, epochs=1, cache_dir=cache)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_get_face_classifier_caches_and_survives_corruption(cache: Path, clf: FaceClassifier,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_train(**kwargs: object) -> FaceClassifier:
        calls.append(int(kwargs["size"]))  # type: ignore[call-overload]
        return clf  # skip the full-size training: the caching logic is what is under test

    monkeypatch.setattr(fc, "train_face_classifier", fake_train)
    first = get_face_classifier(cache_dir=cache)
    assert calls == [32] and not first.training
    (path,) = cache.glob("face-classifier-*.pt")
    assert f"f{FACES_VERSION}" in path.name and "s32" in path.name and f"c{CLASSIFIER_VERSION}" in path.name
    second = get_face_classifier(cache_dir=cache)  # from the file this time
    assert calls == [32] and second is not clf
    x = torch.rand(8, 3, 32, 32)
    assert all(torch.allclose(second(x)[k], clf(x)[k], atol=1e-5) for k in FACE_ATTRIBUTES)
    assert second.heldout_accuracy == pytest.approx(clf.heldout_accuracy)

    path.write_bytes(b"\x00garbage")  # a corrupt cache means: train again, not crash
    third = get_face_classifier(cache_dir=cache)
    assert calls == [32, 32] and isinstance(third, FaceClassifier)


def test_default_cache_respects_genstudio_home(tmp_path: Path, clf: FaceClassifier,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSTUDIO_HOME", str(tmp_path))
    monkeypatch.setattr(fc, "train_face_classifier", lambda **_: clf)
    get_face_classifier()
    assert list((tmp_path / "cache").glob("face-classifier-*-s32-*.pt"))
