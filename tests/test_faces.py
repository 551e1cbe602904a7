"""The procedural cartoon faces: deterministic, labelled, controllable, cached."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.data import faces as faces_mod
from engine.data.faces import (ATTRIBUTE_CLASSES, FACE_ATTRIBUTES, FACES_VERSION, HAIR_COLOURS, draw_faces,
                               faces_with, load_faces, make_faces, random_attributes)

BLOND, BLACK = HAIR_COLOURS.index("blond"), HAIR_COLOURS.index("black")


def test_attribute_tables_agree() -> None:
    assert set(FACE_ATTRIBUTES) == set(ATTRIBUTE_CLASSES)
    assert {"glasses", "hair", "smiling"} <= set(FACE_ATTRIBUTES)
    assert {"blond", "black"} <= set(HAIR_COLOURS) and ATTRIBUTE_CLASSES["hair"] == len(HAIR_COLOURS)


def test_same_seed_gives_identical_bytes() -> None:
    threads = torch.get_num_threads()
    a_img, a_lab = make_faces(100, seed=7)
    assert torch.get_num_threads() == threads  # drawing runs on one thread, then restores
    b_img, b_lab = make_faces(100, seed=7)
    assert torch.equal(a_img, b_img)
    assert all(torch.equal(a_lab[k], b_lab[k]) for k in FACE_ATTRIBUTES)


def test_different_seeds_give_different_faces() -> None:
    a_img, a_lab = make_faces(100, seed=1)
    b_img, b_lab = make_faces(100, seed=2)
    assert not torch.equal(a_lab["hair"], b_lab["hair"])
    assert (a_img.float() - b_img.float()).abs().mean() > 20


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_dtypes_and_ranges(size: int) -> None:
    images, labels = make_faces(64, seed=0, size=size)
    assert images.shape == (64, 3, size, size) and images.dtype == torch.uint8
    assert set(labels) == set(FACE_ATTRIBUTES)
    for name, lab in labels.items():
        assert lab.shape == (64,) and lab.dtype == torch.int64
        assert 0 <= int(lab.min()) and int(lab.max()) < ATTRIBUTE_CLASSES[name]
    x = images.float() / 255
    # Every face is a real picture: dark outlines and light colours, no flat images.
    assert float(x.flatten(1).amin(1).max()) < 0.2 and float(x.flatten(1).amax(1).min()) > 0.7
    assert float(x.flatten(1).std(1).min()) > 0.1
    # A face sits in the middle: skin-coloured pixels (red > green > blue) fill the centre.
    centre = x[:, :, size * 3 // 8: size * 5 // 8, size * 3 // 8: size * 5 // 8]
    skin = (centre[:, 0] > centre[:, 1]) & (centre[:, 1] > centre[:, 2])
    assert skin.float().mean() > 0.5


def test_same_faces_at_every_size() -> None:
    small, lab32 = make_faces(32, seed=4, size=32)
    big, lab64 = make_faces(32, seed=4, size=64)
    assert all(torch.equal(lab32[k], lab64[k]) for k in FACE_ATTRIBUTES)
    shrunk = F.avg_pool2d(big.float(), 2)  # (32, 3, 32, 32): the 64 px drawing, averaged down
    assert (shrunk - small.float()).abs().mean() < 8  # same drawing, only the anti-aliasing differs


def test_zero_faces_and_bad_arguments() -> None:
    images, labels = make_faces(0, seed=0)
    assert images.shape == (0, 3, 32, 32) and all(v.shape == (0,) for v in labels.values())
    with pytest.raises(ValueError):
        make_faces(-1, seed=0)
    with pytest.raises(ValueError, match="unknown"):
        faces_with({"beard": 1}, 4, seed=0)
    with pytest.raises(ValueError):
        faces_with({"hair": len(HAIR_COLOURS)}, 4, seed=0)
    with pytest.raises(ValueError, match="missing"):
        draw_faces({"hair": torch.zeros(3, dtype=torch.long)}, seed=0)


def test_labels_are_balanced_and_independent() -> None:
    labels = random_attributes(1600, seed=3)
    for name, k in ATTRIBUTE_CLASSES.items():
        assert torch.bincount(labels[name], minlength=k).tolist() == [1600 // k] * k
    # Independent: every (glasses, hair) and (smiling, hat) pair about equally common.
    pairs = torch.bincount(labels["glasses"] * 4 + labels["hair"], minlength=8).float()
    assert (pairs - 200).abs().max() < 60
    pairs = torch.bincount(labels["smiling"] * 2 + labels["hat"], minlength=4).float()
    assert (pairs - 400).abs().max() < 80
    counts = torch.bincount(random_attributes(23, seed=1)["hair"], minlength=4)
    assert counts.max() - counts.min() <= 1


def test_faces_with_fixes_attributes_and_keeps_the_rest() -> None:
    images, labels = faces_with({"hair": BLOND, "smiling": 1}, 200, seed=5)
    assert (labels["hair"] == BLOND).all() and (labels["smiling"] == 1).all()
    assert 60 < int(labels["glasses"].sum()) < 140  # the others still vary
    # With nothing fixed it is make_faces; draw_faces reproduces make_faces from its labels.
    ref_img, ref_lab = make_faces(200, seed=5)
    free_img, _ = faces_with({}, 200, seed=5)
    assert torch.equal(free_img, ref_img)
    assert torch.equal(draw_faces(ref_lab, seed=5), ref_img)
    # The other labels are those make_faces would have drawn: the same people.
    for name in ("glasses", "hat"):
        assert torch.equal(labels[name], ref_lab[name])


def _changes(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where two paired batches differ: per face whether anything changed (N,) bool, and per
    image row the fraction of faces changed there (H,)."""
    diff = (a.float() - b.float()).abs().amax(dim=1) > 40  # (N, H, W)
    return diff.flatten(1).any(1), diff.any(dim=2).float().mean(0)


def test_each_attribute_changes_its_own_part_of_the_face() -> None:
    n, seed = 100, 11
    base = {"glasses": 0, "hair": BLOND, "smiling": 0, "hat": 0}
    plain, _ = faces_with(base, n, seed)
    glasses, _ = faces_with({**base, "glasses": 1}, n, seed)
    smiling, _ = faces_with({**base, "smiling": 1}, n, seed)
    hat, _ = faces_with({**base, "hat": 1}, n, seed)
    black, _ = faces_with({**base, "hair": BLACK}, n, seed)

    # Each toggle changes every face (the same people otherwise), and only in its own band
    # of rows of the 32 px image.
    rows = {}
    for name, other in [("glasses", glasses), ("smiling", smiling), ("hat", hat), ("hair", black)]:
        changed, rows[name] = _changes(plain, other)
        assert bool(changed.all()), name
    assert float(rows["hat"][20:].max()) == 0  # hats are on top of the head
    assert float(rows["smiling"][:15].max()) == 0  # the mouth is in the lower half
    assert float(rows["glasses"][:7].max()) == 0 and float(rows["glasses"][22:].max()) == 0  # the eyes
    assert float(rows["hair"][:2].max()) < 1  # the hair is not at the very top of the image...
    # ... and black hair is dark where blond hair is light.
    dark = lambda x: (x.float().amax(dim=1) < 70).float().mean()  # noqa: E731
    assert dark(black) > dark(plain) + 0.05


def test_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = load_faces(60, seed=5, size=32, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.pt")
    assert f"v{FACES_VERSION}" in path.name and "n60" in path.name and "s32" in path.name
    ref_img, ref_lab = make_faces(60, seed=5)
    assert torch.equal(images, ref_img) and all(torch.equal(labels[k], ref_lab[k]) for k in FACE_ATTRIBUTES)

    def fail(*_args: object) -> None:
        raise AssertionError("regenerated although the cache was valid")

    monkeypatch.setattr(faces_mod, "make_faces", fail)
    again_img, again_lab = load_faces(60, seed=5, size=32, cache_dir=tmp_path)
    assert torch.equal(again_img, ref_img) and all(torch.equal(again_lab[k], ref_lab[k]) for k in FACE_ATTRIBUTES)


def test_sizes_are_cached_apart(tmp_path: Path) -> None:
    small, _ = load_faces(10, seed=1, size=32, cache_dir=tmp_path)
    big, _ = load_faces(10, seed=1, size=64, cache_dir=tmp_path)
    assert small.shape[-1] == 32 and big.shape[-1] == 64
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_corrupt_cache_is_regenerated(tmp_path: Path) -> None:
    load_faces(40, seed=9, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(b"not a torch file at all")
    images, labels = load_faces(40, seed=9, cache_dir=tmp_path)
    ref_img, ref_lab = make_faces(40, seed=9)
    assert torch.equal(images, ref_img) and torch.equal(labels["hair"], ref_lab["hair"])
    blob = torch.load(path, weights_only=True)  # and the cache was repaired
    assert torch.equal(blob["images"], ref_img)

    # A readable file with the wrong contents (an older format) is regenerated too.
    torch.save({"images": torch.zeros(3, 3, 32, 32, dtype=torch.uint8), "labels": {}}, path)
    images, _ = load_faces(40, seed=9, cache_dir=tmp_path)
    assert torch.equal(images, ref_img)


def test_default_cache_dir_respects_genstudio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSTUDIO_HOME", str(tmp_path))
    load_faces(8, seed=1)
    assert list((tmp_path / "cache").glob("faces-*.pt"))
