"""The embedded digit generator and the local-data loaders (no downloads, ever)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.data import digits as digits_mod
from engine.data.digits import DIGITS_VERSION, load_digits, make_digits
from engine.data.images import DataError, load_image_folder, load_torchvision_mnist


def test_same_seed_gives_identical_bytes() -> None:
    a_img, a_lab = make_digits(300, seed=7)
    b_img, b_lab = make_digits(300, seed=7)
    assert torch.equal(a_img, b_img)
    assert torch.equal(a_lab, b_lab)


def test_different_seeds_give_different_digits() -> None:
    a_img, a_lab = make_digits(300, seed=1)
    b_img, b_lab = make_digits(300, seed=2)
    assert not torch.equal(a_lab, b_lab)
    # Even the same class must be drawn differently under another seed.
    a0 = a_img[a_lab == 0][0].float()
    b0 = b_img[b_lab == 0][0].float()
    assert (a0 - b0).abs().mean() > 5


def test_shapes_dtypes_and_mnist_like_ink() -> None:
    images, labels = make_digits(500, seed=0)
    assert images.shape == (500, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (500,) and labels.dtype == torch.int64
    assert int(labels.min()) == 0 and int(labels.max()) == 9
    assert int(images.max()) >= 200  # strokes are bright ...
    border = torch.cat([images[:, :2].flatten(1), images[:, -2:].flatten(1),
                        images[:, :, :2].flatten(1), images[:, :, -2:].flatten(1)], dim=1)
    assert border.float().mean() < 2  # ... on black, leaving MNIST's empty margin
    mean_ink = images.float().mean().item() / 255
    assert 0.07 < mean_ink < 0.2  # MNIST's mean pixel is 0.13
    # Every single image has a digit in it (no blank renders).
    assert (images.flatten(1).amax(1) > 150).all()
    # Ink is centred: its centre of mass lies near the middle like MNIST.
    w = images.float()
    ys = (w.sum(2) * torch.arange(28)).sum(1) / w.sum((1, 2))
    xs = (w.sum(1) * torch.arange(28)).sum(1) / w.sum((1, 2))
    assert (ys - 13.5).abs().max() < 3.5 and (xs - 13.5).abs().max() < 3.5


def test_labels_are_balanced() -> None:
    _, labels = make_digits(1000, seed=3)
    assert torch.bincount(labels, minlength=10).tolist() == [100] * 10
    _, labels = make_digits(23, seed=3)
    counts = torch.bincount(labels, minlength=10)
    assert counts.max() - counts.min() <= 1


def test_zero_digits() -> None:
    images, labels = make_digits(0, seed=0)
    assert images.shape == (0, 28, 28) and labels.shape == (0,)


def test_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = load_digits(200, seed=5, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1 and f"v{DIGITS_VERSION}" in files[0].name and "n200" in files[0].name
    ref_img, ref_lab = make_digits(200, seed=5)
    assert torch.equal(images, ref_img) and torch.equal(labels, ref_lab)

    # A second load must come from the file, not the generator.
    def fail(*_args: object) -> None:
        raise AssertionError("regenerated although the cache was valid")

    monkeypatch.setattr(digits_mod, "make_digits", fail)
    again_img, again_lab = load_digits(200, seed=5, cache_dir=tmp_path)
    assert torch.equal(again_img, ref_img) and torch.equal(again_lab, ref_lab)


def test_corrupt_cache_is_regenerated(tmp_path: Path) -> None:
    load_digits(100, seed=9, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(b"not a torch file at all")
    images, labels = load_digits(100, seed=9, cache_dir=tmp_path)
    ref_img, ref_lab = make_digits(100, seed=9)
    assert torch.equal(images, ref_img) and torch.equal(labels, ref_lab)
    # and the cache was repaired
    blob = torch.load(path, weights_only=True)
    assert torch.equal(blob["images"], ref_img)


def test_default_cache_dir_respects_genstudio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSTUDIO_HOME", str(tmp_path))
    load_digits(50, seed=1)
    assert list((tmp_path / "cache").glob("digits-*.pt"))


# ------------------------------------------------------------------ image folders

def _save(path: Path, size: tuple[int, int], mode: str = "RGB", colour: object = (200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def test_image_folder_loads_recursively_sorted_and_resized(tmp_path: Path) -> None:
    _save(tmp_path / "b.png", (40, 20), colour=(255, 255, 255))  # wide: centre-cropped
    _save(tmp_path / "a.jpg", (16, 16), colour=(0, 0, 0))
    _save(tmp_path / "sub" / "c.bmp", (30, 50), colour=(255, 0, 0))
    (tmp_path / "notes.txt").write_text("not an image")
    grey = load_image_folder(str(tmp_path), size=12, channels=1)
    assert grey.shape == (3, 1, 12, 12) and grey.dtype == torch.uint8
    # sorted by path: a.jpg (black), b.png (white), sub/c.bmp (red -> mid grey)
    assert grey[0].max() < 10 and grey[1].min() > 245 and 50 < grey[2].float().mean() < 110
    rgb = load_image_folder(str(tmp_path), size=8, channels=3)
    assert rgb.shape == (3, 3, 8, 8)
    assert rgb[2, 0].min() > 245 and rgb[2, 1].max() < 10  # red stays red
    assert load_image_folder(str(tmp_path), size=8, limit=2).shape[0] == 2


def test_image_folder_skips_unreadable_files(tmp_path: Path) -> None:
    _save(tmp_path / "good.png", (10, 10))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    messages: list[str] = []
    images = load_image_folder(str(tmp_path), log=messages.append)
    assert images.shape == (1, 1, 28, 28)
    assert any("skipped 1" in m for m in messages)


def test_image_folder_all_unreadable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="could be read"):
        load_image_folder(str(tmp_path))


def test_empty_image_folder_raises_helpful_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match=r"no images in .*\.png"):
        load_image_folder(str(tmp_path))


def test_missing_image_folder_raises_helpful_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="does not exist") as info:
        load_image_folder(str(missing))
    assert str(missing) in str(info.value)


# ------------------------------------------------------------------ MNIST

@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_missing_mnist_says_where_files_go(tmp_path: Path, name: str, folder: str) -> None:
    with pytest.raises(DataError) as info:
        load_torchvision_mnist(name, str(tmp_path), train=True)
    message = str(info.value)
    assert str(tmp_path / folder / "raw" / "train-images-idx3-ubyte") in message
    assert "never downloads" in message
    assert not (tmp_path / folder).exists()  # and nothing was fetched or created


def test_unknown_dataset_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset"):
        load_torchvision_mnist("cifar", str(tmp_path), train=True)


def _write_idx(path: Path, data: torch.Tensor, magic: int) -> None:
    """Write an IDX file (the MNIST format): big-endian magic, sizes, then raw bytes."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    path.write_bytes(header + data.numpy().tobytes())


def test_local_mnist_copy_loads(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = make_digits(20, seed=0)
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte", images, 0x0803)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels.to(torch.uint8), 0x0801)
    got_images, got_labels = load_torchvision_mnist("mnist", str(tmp_path), train=False)
    assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
    assert got_images.dtype == torch.uint8 and got_labels.dtype == torch.int64
    # Pointing at the raw folder itself works too.
    again, _ = load_torchvision_mnist("mnist", str(raw), train=True)
    assert torch.equal(again, images)
