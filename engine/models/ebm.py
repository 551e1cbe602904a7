"""An energy-based model written to be read: a network gives every input one number, its
energy E(x), and the model's density is

    p(x) = exp(-E(x)) / Z,    Z = the integral of exp(-E) over every possible x.

Low energy means likely. Z cannot be computed, but neither training nor sampling needs it:

* sampling walks downhill on E with a little noise (Langevin dynamics, :func:`langevin`);
* training (contrastive divergence, :func:`contrastive_divergence`) pushes the energy of
  real data down and the energy of the model's own samples up, until the two agree.

The samples come from a replay buffer (:class:`ReplayBuffer`) of earlier chains, so each
training step continues chains instead of starting every one from noise.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

OnStep = Callable[[int, torch.Tensor], None]  # called with (steps taken, x) as a chain moves


# ----------------------------------------------------------------------------------------
# Energy networks: one number per input, no squashing (any real value is an energy).
# ----------------------------------------------------------------------------------------

class PointEnergy(nn.Module):
    """E(x) for points in the plane: (B, 2) -> (B,). An MLP with SiLU (swish) activations:
    smooth everywhere, so the gradient that Langevin dynamics follows is smooth too (ReLU's
    would be piecewise constant)."""

    def __init__(self, hidden: int = 128, layers: int = 3):
        super().__init__()
        dims = [2] + [hidden] * layers
        blocks: list[nn.Module] = []
        for d_in, d_out in zip(dims, dims[1:]):
            blocks += [nn.Linear(d_in, d_out), nn.SiLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (B, 2) -> (B,)


class DigitEnergy(nn.Module):
    """E(x) for 28x28 images in [-1, 1]: (B, 1, 28, 28) -> (B,).

    Strided convolutions halve the side three times (28 -> 14 -> 7 -> 4), then one linear
    layer reads the whole map. SiLU again, and no batch norm: it would make one image's
    energy depend on the others in its batch, and real and sampled images arrive together."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 5, stride=2, padding=2), nn.SiLU(),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),  # (B, 2w, 7, 7)
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.SiLU(),  # (B, 4w, 4, 4)
            nn.Flatten(),  # (B, 64w)
            nn.Linear(4 * w * 16, 4 * w), nn.SiLU(),  # (B, 4w)
            nn.Linear(4 * w, 1),  # (B, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (B, 1, 28, 28) -> (B,)


# ----------------------------------------------------------------------------------------
# Sampling: Langevin dynamics.
# ----------------------------------------------------------------------------------------

def energy_grad(energy: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """dE/dx for every input in the batch, (B, ...) -> (B, ...).

    The energies are summed first: each input's energy depends on that input alone, so the
    gradient of the sum with respect to x_i is the gradient of E(x_i). Only x gets a
    gradient; the network's own .grad fields are left alone (this is not a training step)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
    return grad


def langevin(
    energy: nn.Module,
    x: torch.Tensor,
    steps: int,
    step_size: float,
    noise: float,
    bounds: tuple[float, float],
    grad_clip: float | None = None,
    generator: torch.Generator | None = None,
    on_step: OnStep | None = None,
) -> torch.Tensor:
    """Run `steps` steps of Langevin dynamics from x (B, ...) and return where they end:

        x <- x - step_size * dE/dx + noise * z,    z ~ N(0, I),

    then clamp x to `bounds` (the range the data lives in). The gradient term walks downhill
    in energy, towards likely inputs; the noise keeps the walk from freezing in the nearest
    dip, so the points spread over the whole low-energy region instead of piling onto its
    lowest spot. With noise = sqrt(2 * step_size) and small steps, the chain's points are
    distributed as p(x) ~ exp(-E(x)); with less noise, as a sharpened version of it.

    `grad_clip` caps each coordinate's gradient (a runaway energy cannot throw a point out of
    range in one step). `generator` draws the noise (None: torch's global random stream);
    `on_step(k, x)` sees x after k steps, k = 0..steps (the views record the chain with it).
    """
    lo, hi = bounds
    x = x.detach().clone()
    if on_step is not None:
        on_step(0, x)
    for k in range(1, steps + 1):
        grad = energy_grad(energy, x)
        if grad_clip is not None:
            grad = grad.clamp(-grad_clip, grad_clip)
        z = torch.randn(x.shape, generator=generator, device=x.device) if generator is not None else torch.randn_like(x)
        x = (x - step_size * grad + noise * z).clamp(lo, hi)
        if on_step is not None:
            on_step(k, x)
    return x


# ----------------------------------------------------------------------------------------
# The replay buffer: persistent chains.
# ----------------------------------------------------------------------------------------

class ReplayBuffer(nn.Module):
    """A fixed number of stored samples, (N, ...): the ends of earlier Langevin chains.

    Each training step takes a batch from it, restarts a small share of that batch from fresh
    noise, runs a few Langevin steps, and writes the results back in the same slots. A slot
    is a chain that is continued a few steps at every visit, so chains grow long (on average
    1 / fresh visits) while each training step pays for only a few steps. The fresh restarts
    keep new chains coming, so the buffer never forgets how to walk out of noise.

    The samples are a registered buffer: they are saved in checkpoints with the model, so a
    resumed run continues the same chains.
    """

    def __init__(self, size: int, shape: tuple[int, ...], bounds: tuple[float, float],
                 generator: torch.Generator):
        super().__init__()
        self.bounds = bounds
        self.register_buffer("items", self.noise((size, *shape), generator))

    def noise(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Fresh chain starts: uniform over the data's range, (n, ...)."""
        lo, hi = self.bounds
        return lo + (hi - lo) * torch.rand(shape, generator=generator)

    def draw(self, n: int, fresh: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(starts (n, ...), slots (n,)): n random stored samples, each replaced by fresh noise
        with probability `fresh`."""
        items = self.items
        slots = torch.randint(0, len(items), (n,), generator=generator)
        restart = torch.rand(n, generator=generator) < fresh  # (n,)
        starts = torch.where(restart.view(-1, *[1] * (items.dim() - 1)),
                             self.noise((n, *items.shape[1:]), generator), items[slots.to(items.device)].cpu())
        return starts.to(items.device), slots

    @torch.no_grad()
    def store(self, x: torch.Tensor, slots: torch.Tensor) -> None:
        """Write the chains' new ends back into their slots."""
        self.items[slots.to(self.items.device)] = x.detach()


# ----------------------------------------------------------------------------------------
# Training: contrastive divergence.
# ----------------------------------------------------------------------------------------

def contrastive_divergence(e_real: torch.Tensor, e_fake: torch.Tensor, alpha: float) -> tuple[torch.Tensor, ...]:
    """The loss for energies of real inputs e_real (B,) and of Langevin samples e_fake (B,):

        loss = mean E(real) - mean E(sample)  +  alpha * (mean E(real)^2 + mean E(sample)^2)

    The first part is the gradient of the negative log-likelihood in disguise: d(-log p)/dθ
    = dE(real)/dθ - E_{x ~ p}[dE(x)/dθ], and the samples stand in for x ~ p (Z's gradient).
    It lowers the energy where the data is and raises it where the model's samples are;
    when the samples look like the data, the two pushes cancel. On its own it only sees
    differences, so both energies could drift off to minus and plus infinity; the alpha term
    holds them near 0. Returns (loss, the contrastive part, the regulariser)."""
    cd = e_real.mean() - e_fake.mean()
    reg = alpha * (e_real.square().mean() + e_fake.square().mean())
    return cd + reg, cd, reg
