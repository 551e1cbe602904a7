"""Mode collapse, measured: how many generated samples have a near-twin among the others.

A generator that collapsed draws the same few images over and over, whatever the noise.
The digit classifier's coverage notices when whole classes go missing; this notices
collapse *within* a class too (a hundred copies of one particular 7), and needs no
classifier, so it also works on a folder of the learner's own pictures.
"""

from __future__ import annotations

import torch

# Threshold on the root-mean-square pixel difference (images in [0, 1]) below which two
# samples count as near-duplicates. How it was chosen (N = 256 samples, measured with this
# code on the embedded digits):
#
# * real digits: over ten sets of 256 (seed 4242), the nearest other digit is never closer
#   than RMS 0.04; the closest pairs (always two 1s, the digit with the least ink) are
#   mostly at 0.05-0.07 (1st percentile ~0.06), the median at ~0.18. Real digits score
#   0.000 at 0.04 (0.001 at 0.05, 0.002 at 0.06);
# * copies of one digit with a little pixel noise (sigma 0.03) are at RMS ~0.03, and an
#   untrained generator, which draws the same grey smudge for every z, scores 1.0;
# * a DCGAN trained with the default preset scores 0.00-0.01 (two samples in 256 at most).
#
# So 0.04 is the largest round value at which real data scores exactly 0: a sample with a
# neighbour closer than that is closer than any two real digits ever are. Pixel space
# rather than the digit classifier's feature space: it works for any images (a folder of
# the learner's pictures has no classifier), and "almost the same picture" is what the
# learner sees in the grid; in feature space two quite different 7s would be close, which
# is not collapse. The price: RMS is smaller for images with little ink, so thin digits
# (1s) are the first to be called near-twins.
NEAR_DUPLICATE_RMS = 0.04


def nearest_neighbour_rms(images: torch.Tensor) -> torch.Tensor:
    """For each image (N, C, H, W) in [0, 1], the RMS pixel distance to its nearest *other*
    image: d_i = min_{j != i} sqrt(mean((x_i - x_j)^2)). Returns (N,)."""
    x = images.detach().float().flatten(1)  # (N, D)
    d2 = torch.cdist(x, x).pow(2) / x.shape[1]  # (N, N) mean squared difference
    d2.fill_diagonal_(float("inf"))  # an image is not its own neighbour
    return d2.min(dim=1).values.clamp_min(0).sqrt()


def near_duplicate_rate(images: torch.Tensor, threshold: float = NEAR_DUPLICATE_RMS) -> float:
    """Fraction of images whose nearest other image is closer than ``threshold`` (RMS pixel
    difference, see NEAR_DUPLICATE_RMS). 0: all distinct, as real data; 1: every image has a
    twin (full collapse). Meant for a few hundred samples: with many more, even real images
    find closer neighbours."""
    if images.shape[0] < 2:
        return 0.0
    return (nearest_neighbour_rms(images) < threshold).float().mean().item()
