"""Distances between two point clouds: how far generated points are from real ones.

Both work on samples of any dimension d (the lessons use d = 2) and need no density:

  sliced_wasserstein  the average, over random directions, of the 1-D earth mover's distance
                      between the two clouds projected on that direction
  energy_distance     2 E|X-Y| - E|X-X'| - E|Y-Y'|, from all pairwise distances

Neither is zero for two independent samples of the same distribution: finite samples differ.
`reference_scale` measures that noise floor for a toy shape, together with the distance of
a Gaussian blob fitted to the shape, so a lesson can say "below this, the model has learned
the shape" with a threshold that is honest about both ends.
"""

from __future__ import annotations

import torch

from engine.data.toy2d import sample_toy

# Seeds used when the caller passes no generator: the metrics are then deterministic, so the
# same two clouds always get the same number and a threshold means the same thing each time.
DEFAULT_SEED = 0
MAX_ENERGY_POINTS = 2000  # energy distance is O(N*M); more points add little precision


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both clouds as float64 (N, d) and (M, d) with the same d and at least one point."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"expected two (N, d) tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dimension mismatch: {a.shape[1]} vs {b.shape[1]}")
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both point clouds need at least one point")
    # float64: sums over millions of pairs, and exact zeros for identical inputs.
    return a.detach().to("cpu", torch.float64), b.detach().to("cpu", torch.float64)


def sliced_wasserstein(
    a: torch.Tensor,
    b: torch.Tensor,
    n_projections: int = 128,
    generator: torch.Generator | None = None,
) -> float:
    """Sliced Wasserstein-1 distance between point clouds a (N, d) and b (M, d).

        SW_1(a, b) = E_theta [ W_1(theta . a, theta . b) ],  theta uniform on the unit sphere,

    estimated as the mean over `n_projections` random unit directions. In 1-D the earth
    mover's distance has a closed form through the quantile functions (inverse CDFs):

        W_1(p, q) = integral_0^1 | F_p^-1(s) - F_q^-1(s) | ds.

    For samples, F^-1 is a step function: sorting N projected points gives F^-1(s) = the
    (floor(s*N)+1)-th smallest on s in [i/N, (i+1)/N). When N == M this is the mean of
    |a_sorted - b_sorted|. When N != M we integrate exactly on the common grid made of both
    sets of steps {i/N} and {j/M}: on each cell of that grid both quantile functions are
    constant, so the integral is the sum of cell width * |difference|.

    The result is in the units of the points. Directions come from `generator`; None uses a
    fixed seed, so the same inputs always give the same value.
    """
    a, b = _check_pair(a, b)
    if generator is None:
        generator = torch.Generator().manual_seed(DEFAULT_SEED)
    n, m, d = len(a), len(b), a.shape[1]

    # Uniform directions on the sphere: normalised standard Gaussian vectors (the Gaussian
    # is rotation invariant, so its direction is uniform).
    theta = torch.randn(d, n_projections, generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)

    # Project (x . theta for every point and direction) and sort each direction's column.
    pa = (a @ theta).sort(dim=0).values  # (N, P)
    pb = (b @ theta).sort(dim=0).values  # (M, P)

    # Common grid: right edges of all cells, i/N and j/M for i, j >= 1, merged and sorted.
    edges = torch.cat([torch.arange(1, n + 1, dtype=torch.float64) / n,
                       torch.arange(1, m + 1, dtype=torch.float64) / m]).sort().values
    widths = torch.diff(edges, prepend=edges.new_zeros(1))
    # Evaluate each quantile function at the cell's midpoint: index floor(s * N). Midpoints
    # of cells of non-zero width lie strictly inside a step; empty cells get weight 0.
    mid = edges - widths / 2
    ia = (mid * n).floor().long().clamp(0, n - 1)
    ib = (mid * m).floor().long().clamp(0, m - 1)

    # W_1 per direction = sum_cells width * |F_a^-1 - F_b^-1|, then the mean over directions.
    w1 = (widths[:, None] * (pa[ia] - pb[ib]).abs()).sum(dim=0)  # (P,)
    return float(w1.mean())


def _subsample(x: torch.Tensor, max_points: int) -> torch.Tensor:
    """At most `max_points` rows of x, a fixed random subset (the same for the same size).

    Random rather than every k-th row, so a cloud stored in some order (one moon, then the
    other) is still represented evenly.
    """
    if len(x) <= max_points:
        return x
    g = torch.Generator().manual_seed(DEFAULT_SEED)
    return x[torch.randperm(len(x), generator=g)[:max_points]]


def energy_distance(a: torch.Tensor, b: torch.Tensor, max_points: int = MAX_ENERGY_POINTS) -> float:
    """Energy distance between point clouds a (N, d) and b (M, d):

        D(X, Y) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|,

    with X, X' independent draws from a and Y, Y' from b, and |.| the Euclidean norm.
    D >= 0, and D = 0 if and only if the two distributions are the same (Szekely & Rizzo);
    sqrt(D) is a metric. D itself is in the units of the points, as each term is a mean
    distance.

    The expectations are means over all pairs, including each point with itself (the
    "V-statistic"): that is exactly the energy distance between the two empirical
    distributions, so it is never negative and is exactly 0 for identical clouds. Each side
    is first cut to at most `max_points` points by a fixed random subset (cost O(N*M)).
    """
    a, b = _check_pair(a, b)
    a, b = _subsample(a, max_points), _subsample(b, max_points)

    # Direct differences rather than the |x|^2 + |y|^2 - 2 x.y trick: that one loses
    # precision for nearby points and would leave identical clouds a hair above 0.
    def mean_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist").mean()

    d = 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)
    return max(float(d), 0.0)  # rounding can leave a tiny negative; the true value is >= 0


def reference_scale(shape: str, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """Both distances at the two ends of a learning curve for a toy shape.

    Returns a dict with
      sw_floor, energy_floor   real vs another independent real sample of n points: the
                               noise floor, the best a perfect model can score with n points
      sw_blob, energy_blob     real vs n points from the Gaussian fitted to it (its mean and
                               full covariance): a model that has found where the points are
                               and how they spread, but not the shape
    A lesson's "learned the shape" threshold belongs between the two, e.g. their geometric
    mean. Deterministic for a given (shape, n, seed).
    """
    g = torch.Generator().manual_seed(seed)
    real = sample_toy(shape, n, generator=g).to(torch.float64)
    other = sample_toy(shape, n, generator=g).to(torch.float64)

    # Gaussian fit: mu = mean, Sigma = covariance; a draw is mu + L z with L L^T = Sigma
    # (Cholesky) and z standard normal, so it has exactly that mean and covariance.
    mu = real.mean(dim=0)
    sigma = torch.cov(real.T)
    chol = torch.linalg.cholesky(sigma)
    blob = mu + torch.randn(n, real.shape[1], generator=g, dtype=torch.float64) @ chol.T

    return {
        "sw_floor": sliced_wasserstein(real, other),
        "sw_blob": sliced_wasserstein(real, blob),
        "energy_floor": energy_distance(real, other),
        "energy_blob": energy_distance(real, blob),
    }


if __name__ == "__main__":  # python -m engine.metrics.distance2d: print the reference table
    from engine.data.toy2d import TOY_SHAPES

    print(f"{'shape':<10} {'sw_floor':>9} {'sw_blob':>9} {'energy_floor':>13} {'energy_blob':>12}")
    for name in TOY_SHAPES:
        r = reference_scale(name)
        print(f"{name:<10} {r['sw_floor']:9.4f} {r['sw_blob']:9.4f} "
              f"{r['energy_floor']:13.5f} {r['energy_blob']:12.5f}")
