"""One data vocabulary for image recipes: every image recipe accepts the embedded digits and
faces, local MNIST and Fashion-MNIST, and a folder, under the same names and with the same
errors, at the size its model needs; the digit scores apply whenever the data are digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.data.images import DataError, as_digits, fit_images, load_image_source
from engine.data.sources import IMAGE_SOURCES
from engine.recipes import build_recipe
from engine.recipes.base import RunContext
from engine.registry import RECIPES
from engine.schema import specs

IMAGE_RECIPES = ("vae", "dcgan", "diffusion")
TINY = {"vae": {"width": 8, "batch_size": 8, "train_size": 256},
        "dcgan": {"width": 8, "noise_dim": 8, "batch_size": 8, "train_size": 256},
        "diffusion": {"base": 4, "batch_size": 8, "train_size": 256, "timesteps": 50}}


def write_mnist(root: Path, n: int = 40) -> None:
    """A tiny MNIST in torchvision's layout: ROOT/MNIST/raw/<the four idx files>."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    from engine.data.digits import make_digits

    images, labels = make_digits(n, seed=3)
    for split in ("train", "t10k"):
        head = (0x0803).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
        (raw / f"{split}-images-idx3-ubyte").write_bytes(head + images.numpy().tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes((0x0801).to_bytes(4, "big") + n.to_bytes(4, "big")
                                                         + labels.to(torch.uint8).numpy().tobytes())


def test_fit_images_pads_resizes_and_converts_channels():
    grey = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    padded = fit_images(grey, 32, 1)
    assert padded.shape == (2, 1, 32, 32) and padded[0, 0, 0, 0] == 0 and padded[0, 0, 2, 2] == 200
    assert fit_images(grey, 28, 3).shape == (2, 3, 28, 28)
    rgb = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    rgb[:, 1] = 255  # pure green
    small = fit_images(rgb, 28, 1)
    assert small.shape == (1, 1, 28, 28) and int(small[0, 0, 10, 10]) == round(0.587 * 255)
    assert fit_images(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), 64, 3).shape == (1, 3, 64, 64)
    assert as_digits(torch.rand(3, 3, 32, 32)).shape == (3, 1, 28, 28)
    assert torch.equal(as_digits(padded.float() / 255), grey.float() / 255)  # a padded digit crops back exactly


@pytest.mark.parametrize("recipe", IMAGE_RECIPES)
def test_every_image_recipe_offers_every_source(recipe):
    dataset = next(s for s in specs(RECIPES[recipe].config) if s.name == "dataset")
    assert set(IMAGE_SOURCES) <= set(dataset.choices)
    assert next(s for s in specs(RECIPES[recipe].config) if s.name == "data_path").path == "dir"


@pytest.mark.parametrize("recipe", IMAGE_RECIPES)
def test_faces_train_in_every_image_recipe(recipe):
    torch.manual_seed(0)
    r = build_recipe(recipe, {**TINY[recipe], "dataset": "faces"}, RunContext(device=torch.device("cpu")))
    assert r.x_train.shape[1] == 3  # colour
    metrics = r.train_step()
    assert all(torch.isfinite(v) for v in metrics.values())
    assert "quality/recognisability" not in r.evaluate()  # faces are not digits
    images = r.sample_images(2, torch.Generator().manual_seed(0))
    assert images.shape[1] == 3 and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("recipe", IMAGE_RECIPES)
def test_local_mnist_is_scored_as_digits(tmp_path, recipe):
    write_mnist(tmp_path)
    torch.manual_seed(0)
    r = build_recipe(recipe, {**TINY[recipe], "dataset": "mnist", "data_path": str(tmp_path)},
                     RunContext(device=torch.device("cpu")))
    assert r.x_train.shape[1:] == (1, 28, 28) and len(r.x_train) == 40
    r.train_step()
    assert "quality/recognisability" in r.evaluate()


@pytest.mark.parametrize("recipe", IMAGE_RECIPES)
def test_the_same_errors_in_every_image_recipe(tmp_path, recipe):
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 30), (i * 50, 0, 0)).save(few / f"{i}.png")
    messages = []
    for values in ({"dataset": "folder"}, {"dataset": "mnist"}, {"dataset": "folder", "data_path": str(few)},
                   {"dataset": "fashion-mnist", "data_path": str(tmp_path)}):
        with pytest.raises(DataError) as e:
            build_recipe(recipe, {**TINY[recipe], **values}, RunContext(device=torch.device("cpu")))
        messages.append(str(e.value))
    assert "needs data_path=FOLDER" in messages[0] and "never downloads" in messages[1]
    assert "holds only 3 readable images" in messages[2] and "FashionMNIST" in messages[3]


def test_a_folder_is_loaded_at_the_size_and_channels_asked_for(tmp_path):
    for i in range(24):
        Image.new("L", (50, 40), i * 10).save(tmp_path / f"{i:02d}.png")
    data = load_image_source("folder", str(tmp_path), 32, 3, 0, 256, 0)
    assert data.train.shape == (20, 3, 32, 32) and data.val.shape == (4, 3, 32, 32) and not data.digits
