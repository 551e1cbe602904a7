"""The DCGAN recipe on tiny CPU configs: finite losses, both architectures (28 and 64 px),
the views and their range, the near-duplicate rate, a folder of RGB images and its errors,
live learning rates, and a full run through the runner with exact resume."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.schema import validate
from engine.configs.dcgan import DCGANConfig
from engine.data.images import DataError
from engine.metrics.diversity import near_duplicate_rate
from engine.models.dcgan import DCGANArgs, Discriminator, Generator, slerp
from engine.recipes.base import RunContext
from engine.recipes.dcgan import N_WALKS, WALK_STEPS, DCGANRecipe
from engine.rundir import RunDir, read_history
from engine.runner import Runner

TINY = {"width": 4, "noise_dim": 8, "batch_size": 16, "train_size": 256}


def recipe(**over) -> DCGANRecipe:
    torch.manual_seed(0)
    return DCGANRecipe(RunContext(device=torch.device("cpu")), DCGANConfig(**{**TINY, **over}))


@pytest.fixture
def untrained_judge(monkeypatch):
    """An untrained digit classifier in place of the cached one: scoring runs in
    milliseconds instead of training the real judge first."""
    from engine.metrics import digit_classifier

    monkeypatch.setattr(digit_classifier, "get_digit_classifier",
                        lambda *a, **k: digit_classifier.DigitClassifier().eval())


@pytest.fixture
def picture_folder(tmp_path):
    """30 small RGB pictures of different sizes (the loader crops and resizes to 64x64)."""
    from PIL import Image, ImageDraw

    folder = tmp_path / "pictures"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(30):
        w, h = 60 + 7 * (i % 5), 64 + 5 * (i % 3)
        colour = tuple(int(c) for c in torch.randint(0, 256, (3,), generator=g))
        im = Image.new("RGB", (w, h), colour)
        ImageDraw.Draw(im).ellipse((10 + i % 7, 12, 40 + i % 11, 50), fill=(255 - colour[0], 40, 200))
        im.save(folder / f"pic{i:02d}.png")
    return folder


def test_losses_are_finite_and_d_outputs_are_probabilities():
    r = recipe()
    for _ in range(5):
        m = r.train_step()
    assert set(m) == {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"}
    assert all(torch.isfinite(v) for v in m.values())
    assert 0 <= m["train/d_real"] <= 1 and 0 <= m["train/d_fake"] <= 1


@pytest.mark.parametrize("size,channels", [(28, 1), (64, 3)])
def test_both_architectures_map_noise_to_images_and_images_to_logits(size, channels):
    a = DCGANArgs(noise_dim=8, width=4, channels=channels, image_size=size)
    G, D = Generator(a), Discriminator(a)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh
    assert D(x).shape == (5,)


def test_slerp_ends_at_both_points_and_keeps_the_norm():
    a, b = torch.randn(64), torch.randn(64)
    z = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(z[0], a, atol=1e-5) and torch.allclose(z[-1], b, atol=1e-5)
    # On the arc the norm stays between the two ends' (a straight line would dip in the middle).
    lo, hi = sorted([a.norm().item(), b.norm().item()])
    assert all(lo - 1e-4 <= n <= hi + 1e-4 for n in z.norm(dim=1).tolist())


def test_views_and_samples_have_the_right_shape_and_range():
    r = recipe()
    r.train_step()
    images = r.sample_images(10, torch.Generator().manual_seed(0))
    assert images.shape == (10, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "interpolation"}
    assert arts["samples"].data.shape == (8 * 30 + 2, 8 * 30 + 2)  # 8x8 grid, 2px padding
    assert arts["interpolation"].data.shape == (N_WALKS * 30 + 2, WALK_STEPS * 30 + 2)
    # The grid comes from fixed noise: drawing it twice gives the same picture.
    assert (r.samples()[0].data == arts["samples"].data).all()


def test_near_duplicate_rate():
    from engine.data.digits import load_digits

    x, _ = load_digits(256, 777)
    real = x.unsqueeze(1).float() / 255
    assert near_duplicate_rate(real) == 0.0  # distinct real digits have no near-twins
    assert near_duplicate_rate(real[:1].repeat(50, 1, 1, 1)) == 1.0  # one image, 50 times
    half = torch.cat([real[:100], real[:1].repeat(100, 1, 1, 1)])
    assert near_duplicate_rate(half) == pytest.approx(0.5, abs=0.02)


def test_evaluate_on_digits(untrained_judge):
    scores = recipe().evaluate()
    assert set(scores) == {"quality/recognisability", "quality/coverage", "quality/near_duplicates"}
    assert all(0 <= v <= 1 for v in scores.values())


def test_folder_of_pictures_trains_at_64_pixels_rgb(picture_folder):
    r = recipe(dataset="folder", data_path=str(picture_folder))
    assert r.x_train.shape == (30, 3, 64, 64) and r.x_train.min() >= -1 and r.x_train.max() <= 1
    m = r.train_step()
    assert all(torch.isfinite(v) for v in m.values())
    assert r.sample_images(3, torch.Generator().manual_seed(0)).shape == (3, 3, 64, 64)
    arts = {a.name: a for a in r.samples()}
    assert arts["samples"].data.shape == (8 * 66 + 2, 8 * 66 + 2, 3)
    assert set(r.evaluate()) == {"quality/near_duplicates"}  # no digit judge for pictures


def test_folder_errors_are_clear(tmp_path, picture_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        recipe(dataset="folder", data_path=str(empty))
    with pytest.raises(DataError, match="needs data_path"):
        recipe(dataset="folder")
    for f in sorted(picture_folder.iterdir())[5:]:
        f.unlink()
    with pytest.raises(DataError, match="only 5 readable images"):
        recipe(dataset="folder", data_path=str(picture_folder))


def test_live_learning_rates():
    r = recipe()
    r.set_live("lr_d", 5e-4)
    r.set_live("lr_g", 2e-4)
    assert r.opt_d.param_groups[0]["lr"] == 5e-4 and r.opt_g.param_groups[0]["lr"] == 2e-4
    assert r.cfg.lr_g == 2e-4
    with pytest.raises(KeyError):
        r.set_live("width", 8)


def test_runs_through_the_runner_and_resumes_exactly(tmp_path, untrained_judge):
    def new(path, steps):
        path.mkdir()
        rd = RunDir(path)
        rd.write_config("dcgan", asdict(validate(DCGANConfig, {**TINY, "steps": steps})), device="cpu")
        return rd

    a = new(tmp_path / "a", 30)
    assert Runner(a.path).run() == 0
    b = new(tmp_path / "b", 15)
    assert Runner(b.path).run() == 0
    cfg = json.loads(b.config_path.read_text())
    cfg["params"]["steps"] = 30
    b.config_path.write_text(json.dumps(cfg))
    assert Runner(b.path).run() == 0
    for net in ("G", "D"):  # weights and batch-norm running statistics
        wa, wb = (load_checkpoint(r.checkpoint_path)["state"][net] for r in (a, b))
        assert all(torch.equal(wa[k], wb[k]) for k in wa), net
    hist = read_history(a)
    assert hist.state == "finished" and {"samples", "interpolation"} <= set(hist.samples)
    assert {"train/loss_d", "train/loss_g", "quality/recognisability", "quality/near_duplicates"} <= set(hist.metrics)
