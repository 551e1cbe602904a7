"""Real image data, read from the learner's own disk. GenStudio never downloads anything:
these loaders only read files that are already there and say exactly what is missing.

Both return uint8 tensors, the same convention as the embedded digits, so every recipe can
treat them alike (divide by 255 for floats in [0, 1]).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.data.sources import DIGIT_SOURCES, IMAGE_SOURCES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

# torchvision's class names decide the folder it looks in: ROOT/<ClassName>/raw/<file>.
_MNIST_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataError(ValueError):
    """The data a run asked for is missing or unusable; the message says how to fix it."""


def _mnist_root(name: str, root: str) -> Path | None:
    """Find the folder torchvision wants as ``root``, forgiving a learner who points at
    ROOT/MNIST or ROOT/MNIST/raw instead of ROOT. None when the files are not there."""
    folder = _MNIST_FOLDERS[name]
    given = Path(root).expanduser()
    for candidate in (given, given.parent, given.parent.parent):
        raw = candidate / folder / "raw"
        if all((raw / f).is_file() for f in _MNIST_FILES):
            return candidate
    return None


def load_torchvision_mnist(name: str, root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST or Fashion-MNIST from a local copy: images uint8 (N, 28, 28), labels int64 (N,).

    ``name`` is "mnist" or "fashion-mnist". The files must already be unpacked under
    ROOT/MNIST/raw/ (or ROOT/FashionMNIST/raw/); a DataError explains the layout otherwise.
    """
    if name not in _MNIST_FOLDERS:
        raise DataError(f"unknown dataset {name!r}: expected one of {sorted(_MNIST_FOLDERS)}")
    folder = _MNIST_FOLDERS[name]
    layout = "\n".join(f"  {Path(root or 'ROOT') / folder / 'raw' / f}" for f in _MNIST_FILES)
    hint = (f"{name} was not found. GenStudio never downloads data; put the four unpacked "
            f"(not .gz) files here:\n{layout}\nthen set the data path to "
            f"{root or 'ROOT'} (the folder that contains {folder}/).")
    if not root:
        raise DataError(f"no data path given. {hint}")
    found = _mnist_root(name, root)
    if found is None:
        raise DataError(hint)

    from torchvision import datasets  # imported here: only this loader needs it

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    try:
        ds = cls(str(found), train=train, download=False)
    except Exception as e:  # noqa: BLE001 - truncated or foreign files: say so plainly
        raise DataError(f"could not read {name} from {found / folder / 'raw'}: {e}") from e
    images = ds.data.to(torch.uint8).contiguous()  # (N, 28, 28)
    labels = ds.targets.to(torch.int64).contiguous()  # (N,)
    return images, labels


def _find_images(folder: Path) -> list[Path]:
    """Every image file under ``folder``, recursively, in a stable (sorted) order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()  # stable walk order on every file system
        for f in sorted(filenames):
            if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith("."):
                found.append(Path(dirpath) / f)
    return sorted(found)


def load_image_folder(path: str, size: int = 28, channels: int = 1, limit: int | None = None,
                      *, log: Callable[[str], None] | None = None) -> torch.Tensor:
    """Every image under ``path`` as uint8 (N, channels, size, size).

    Each image is centre-cropped to a square (so nothing is squashed), resized, and converted
    to greyscale (channels=1) or RGB (channels=3). Files PIL cannot read are skipped and
    counted; ``log`` (if given) hears how many. ``limit`` stops after that many good images.
    """
    from PIL import Image, ImageOps  # imported here: only this loader needs PIL

    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels}")
    if size < 1:
        raise DataError(f"size must be positive, got {size}")
    if not path:
        raise DataError("no image folder given: set the data path to a folder of .png/.jpg images")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist (or is not a folder): "
                        f"point the data path at a folder holding {'/'.join(IMAGE_SUFFIXES)} files")
    files = _find_images(folder)
    if not files:
        raise DataError(f"no images in {folder}: expected files ending in {', '.join(IMAGE_SUFFIXES)} "
                        f"(subfolders are searched too)")

    mode = "L" if channels == 1 else "RGB"
    out: list[np.ndarray] = []
    skipped = 0
    for f in files:
        if limit is not None and len(out) >= limit:
            break
        try:
            with Image.open(f) as im:
                im.seek(0)  # first frame of an animated GIF/WebP
                im = ImageOps.exif_transpose(im)  # phone photos: honour the rotation tag
                if im.mode in ("RGBA", "LA", "P"):
                    # Composite transparency onto black (the background our digits use),
                    # otherwise hidden pixels under alpha would show up as garbage.
                    rgba = im.convert("RGBA")
                    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                    im = Image.alpha_composite(background, rgba)
                im = im.convert(mode)
                w, h = im.size
                side = min(w, h)
                left, top = (w - side) // 2, (h - side) // 2
                im = im.crop((left, top, left + side, top + side))
                im = im.resize((size, size), Image.Resampling.LANCZOS)
                arr = np.asarray(im, dtype=np.uint8)  # (size, size) or (size, size, 3)
        except Exception:  # noqa: BLE001 - PIL raises many types for broken files
            skipped += 1
            continue
        out.append(arr[None] if channels == 1 else arr.transpose(2, 0, 1))  # (C, size, size)

    if skipped and log is not None:
        log(f"skipped {skipped} unreadable image file(s) in {folder}")
    if not out:
        raise DataError(f"none of the {skipped} image file(s) in {folder} could be read")
    return torch.from_numpy(np.stack(out))  # (N, C, size, size)


# -- one vocabulary for every image recipe --

MIN_IMAGES = 20


@dataclass
class ImageData:
    """Images as uint8 (N, C, S, S) at the size and channels the model asked for."""

    train: torch.Tensor
    val: torch.Tensor
    train_labels: torch.Tensor | None  # digit classes (digits and MNIST-style sources), else None
    val_labels: torch.Tensor | None
    digits: bool  # True when the digit classifier's scores apply


def fit_images(x: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, H) -> (N, channels, size, size): grey becomes RGB by copying it, RGB
    becomes grey by luminance; a few pixels short are padded with black (digits keep their
    strokes crisp: 28 -> 32 pads 2 on each side), anything else is resized (antialiased)."""
    if x.shape[1] != channels:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:  # ITU-R BT.601 luma
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    side = x.shape[-1]
    if side == size:
        return x.contiguous()
    if size > side and size - side <= 4:
        lo = (size - side) // 2
        return torch.nn.functional.pad(x, (lo, size - side - lo, lo, size - side - lo)).contiguous()
    y = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True,
                                        align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).contiguous()


def load_image_source(dataset: str, data_path: str, size: int, channels: int, train_size: int, val_size: int,
                      seed: int, log: Callable[[str], None] = lambda m: None, model: str = "this model") -> ImageData:
    """Images from any source of IMAGE_SOURCES, with the same errors for every recipe.

    Embedded digits and faces are generated (train_size + val_size, cached); MNIST-style
    sources use the whole local training split and the first val_size test images; a
    folder gives one image in ten (at most val_size) to validation."""
    if dataset not in IMAGE_SOURCES:
        raise DataError(f"unknown dataset {dataset!r}: expected one of {', '.join(IMAGE_SOURCES)}")
    if dataset in ("digits", "faces"):
        n = train_size + val_size
        if dataset == "digits":
            from engine.data.digits import load_digits

            log(f"generating {n:,} embedded digits (seed {seed}; cached after the first time)")
            x, y = load_digits(n, seed)
            x = x.unsqueeze(1)
        else:
            from engine.data.faces import load_faces

            native = 64 if size > 32 else 32
            log(f"drawing {n:,} cartoon faces at {native}x{native} (seed {seed}; cached after the first time)")
            x, _ = load_faces(n, seed, native)
            y = None
        x = fit_images(x, size, channels)
        return ImageData(x[val_size:], x[:val_size], None if y is None else y[val_size:],
                         None if y is None else y[:val_size], dataset == "digits")
    if dataset in ("mnist", "fashion-mnist"):
        if not data_path:
            raise DataError(f"dataset={dataset} needs data_path=FOLDER holding a local copy (GenStudio never downloads)")
        xt, yt = load_torchvision_mnist(dataset, data_path, train=True)
        xv, yv = load_torchvision_mnist(dataset, data_path, train=False)
        return ImageData(fit_images(xt.unsqueeze(1), size, channels), fit_images(xv[:val_size].unsqueeze(1), size, channels),
                         yt, yv[:val_size], dataset in DIGIT_SOURCES)
    if not data_path:
        raise DataError("dataset=folder needs data_path=FOLDER with your images")
    x = load_image_folder(data_path, size=size, channels=channels, log=log)
    if len(x) < MIN_IMAGES:
        raise DataError(f"{data_path} holds only {len(x)} readable images; {model} needs at least {MIN_IMAGES} "
                        f"(hundreds work better)")
    n_val = max(4, min(val_size, len(x) // 10)) if val_size else 0  # none when the caller holds out none (a GAN)
    return ImageData(x[n_val:], x[:n_val], None, None, False)


def as_digits(images: torch.Tensor) -> torch.Tensor:
    """Generated images in [0, 1], (N, C, S, S), as the digit classifier reads them:
    (N, 1, 28, 28) grey (a padded 32 is cropped back, anything else resized)."""
    x = images.float()
    if x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    side = x.shape[-1]
    if side == 28:
        return x
    if 28 < side <= 32:
        lo = (side - 28) // 2
        return x[..., lo:lo + 28, lo:lo + 28]
    return torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
