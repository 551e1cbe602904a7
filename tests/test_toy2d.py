"""Toy 2-D point clouds (engine.data.toy2d) and the distances between clouds
(engine.metrics.distance2d) that the GAN and diffusion lessons score with."""

from __future__ import annotations

import pytest
import torch

from engine.data.toy2d import TOY_SHAPES, sample_toy
from engine.metrics.distance2d import energy_distance, reference_scale, sliced_wasserstein

DISTANCES = [sliced_wasserstein, energy_distance]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- sample_toy ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", TOY_SHAPES)
def test_shape_dtype_and_size(shape):
    for n in (0, 1, 7, 500):
        points = sample_toy(shape, n, _gen(0))
        assert points.shape == (n, 2)
        assert points.dtype == torch.float32


@pytest.mark.parametrize("shape", TOY_SHAPES)
def test_deterministic_given_the_generator(shape):
    assert torch.equal(sample_toy(shape, 300, _gen(5)), sample_toy(shape, 300, _gen(5)))
    assert not torch.equal(sample_toy(shape, 300, _gen(5)), sample_toy(shape, 300, _gen(6)))


@pytest.mark.parametrize("shape", TOY_SHAPES)
def test_normalised_to_zero_mean_and_the_documented_box(shape):
    points = sample_toy(shape, 5000, _gen(1))
    assert points.mean(dim=0).abs().max() < 0.1
    # The shapes lie within [-2.5, 2.5]^2; only the noise tail may step a little outside.
    assert points.abs().max() < 2.75
    # ... and they fill it: no shape collapsed to a tiny blob.
    assert points.std(dim=0).min() > 0.5
    bare = sample_toy(shape, 5000, _gen(1), noise=0.0)
    assert bare.abs().max() <= 2.5


def test_noise_controls_the_spread():
    # The ring's radius is 2; its spread around that radius is the noise std.
    for noise in (0.02, 0.2):
        radius = sample_toy("ring", 5000, _gen(2), noise=noise).norm(dim=1)
        assert radius.mean() == pytest.approx(2.0, abs=0.05)
        assert radius.std() == pytest.approx(noise, rel=0.15)


def test_unknown_shape_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        sample_toy("spiral", 10)
    for shape in TOY_SHAPES:
        assert shape in str(err.value)


# -- distances -------------------------------------------------------------------------------

@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_samples_are_at_distance_zero(distance):
    points = sample_toy("moons", 800, _gen(3))
    assert distance(points, points) == pytest.approx(0.0, abs=1e-9)
    # A reordering is the same cloud.
    shuffled = points[torch.randperm(len(points), generator=_gen(4))]
    assert distance(points, shuffled) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("distance", DISTANCES)
def test_distance_grows_with_a_shift(distance):
    a = sample_toy("gaussians", 1000, _gen(5))
    b = sample_toy("gaussians", 700, _gen(6))  # an independent sample, of another size
    direction = torch.tensor([0.6, 0.8])
    values = [distance(a, b + s * direction) for s in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(values, values[1:])), values


def test_sliced_wasserstein_of_a_pure_shift():
    # Shifting a cloud by v moves every projection on theta by theta . v, so
    # SW_1 = |v| E|cos angle| = |v| * 2/pi in 2-D (up to the Monte Carlo over directions).
    a = sample_toy("ring", 500, _gen(7))
    shift = torch.tensor([1.0, 0.0])
    sw = sliced_wasserstein(a, a + shift, n_projections=2000)
    assert sw == pytest.approx(2 / torch.pi, rel=0.03)


def test_sliced_wasserstein_with_unequal_sizes_is_exact_in_1d():
    # In 1-D every direction is +-1, so SW_1 is the exact W_1: from {0, 1} (mass 1/2 each)
    # to {0, 0, 1} (mass 2/3 at 0, 1/3 at 1) moves 1/6 of the mass a distance 1.
    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[0.0], [0.0], [1.0]])
    assert sliced_wasserstein(a, b, n_projections=4) == pytest.approx(1 / 6)


@pytest.mark.parametrize("distance", DISTANCES)
def test_symmetric(distance):
    a = sample_toy("curve", 600, _gen(8))
    b = sample_toy("ring", 900, _gen(9))
    assert distance(a, b) == pytest.approx(distance(b, a), rel=1e-9)


def test_distances_are_deterministic():
    a = sample_toy("moons", 3000, _gen(10))  # above the energy distance's subsample size
    b = sample_toy("moons", 2500, _gen(11))
    assert sliced_wasserstein(a, b) == sliced_wasserstein(a, b)
    assert energy_distance(a, b) == energy_distance(a, b)
    assert energy_distance(a, b) >= 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        sliced_wasserstein(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError):
        energy_distance(torch.zeros(5, 2), torch.zeros(0, 2))


@pytest.mark.parametrize("shape", TOY_SHAPES)
def test_real_vs_real_is_well_below_real_vs_gaussian_fit(shape):
    ref = reference_scale(shape, n=1500)
    # The noise floor sits far below a blob that has not learned the shape, so a lesson
    # threshold between them separates "learned" from "not learned" with room to spare.
    assert ref["sw_floor"] < ref["sw_blob"] / 2, ref
    assert ref["energy_floor"] < ref["energy_blob"] / 4, ref
