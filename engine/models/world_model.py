"""A world model in three parts: V sees, M predicts, C acts.

Read top to bottom:

- V is the VAE lesson's model (engine/models/vae.py), imported by the recipe as it is: it
  squeezes a 28x28 frame of the game into a short code z.
- M is an LSTM that reads z_t and the action a_t and predicts the next code z_{t+1} as a
  mixture of Gaussians (a mixture-density network, MDN), and whether this step ends the
  episode. Run on its own predictions, M is a dream of the game.
- C is the smallest possible policy: one linear unit on [z_t, h_t] (the code and M's
  hidden state), squashed by tanh and read as left, stay or right.
- An evolution strategy (ES) trains C with no gradients at all: it tries perturbed copies
  of C's weights, scores each by its return, and moves toward the better ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# -- M: an LSTM with a mixture-density head --

@dataclass
class MDNRNNArgs:
    z_dim: int = 8  # length of V's code
    hidden: int = 64  # LSTM units
    mixtures: int = 5  # Gaussians in the mixture, for every dimension of z


class MDNOut(NamedTuple):
    """M's prediction for every step: for each dimension d of the next z, a mixture of K
    Gaussians with weights exp(log_pi), means mu and scales exp(log_sigma), each (..., K, D);
    and the logit of "this step ends the episode", (...)."""

    log_pi: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor
    done_logit: torch.Tensor


class MDNRNN(nn.Module):
    """(z_t, a_t, state) -> (prediction of z_{t+1} and of done, new state, h)."""

    def __init__(self, a: MDNRNNArgs):
        super().__init__()
        self.args = a
        self.lstm = nn.LSTM(a.z_dim + 1, a.hidden, batch_first=True)  # input: z and the move (-1, 0, 1)
        # One linear head: K weights, K means and K log-scales for each of the D dimensions,
        # plus one number for done.
        self.head = nn.Linear(a.hidden, 3 * a.mixtures * a.z_dim + 1)

    def forward(self, z: torch.Tensor, move: torch.Tensor, state=None) -> tuple[MDNOut, tuple, torch.Tensor]:
        x = torch.cat([z, move.unsqueeze(-1)], -1)  # (B, T, D + 1)
        h, state = self.lstm(x, state)  # (B, T, H)
        out = self.head(h)  # (B, T, 3KD + 1)
        K, D = self.args.mixtures, self.args.z_dim
        mix = out[..., :-1].unflatten(-1, (3, K, D))  # (B, T, 3, K, D)
        log_pi = F.log_softmax(mix[..., 0, :, :], dim=-2)  # the weights sum to 1 over the K Gaussians
        # log sigma kept in a sane band: sigma from e^-6 to e^2 (a vanishing scale would send
        # the likelihood to infinity on one lucky point).
        log_sigma = mix[..., 2, :, :].clamp(-6.0, 2.0)
        return MDNOut(log_pi, mix[..., 1, :, :], log_sigma, out[..., -1]), state, h


def mdn_nll(pred: MDNOut, target: torch.Tensor) -> torch.Tensor:
    """-log p(target) under the mixture, summed over the D dimensions: (..., D) -> (...).

    log p(z_d) = log sum_k pi_k N(z_d; mu_k, sigma_k)
               = logsumexp_k [log pi_k - log sigma_k - log sqrt(2 pi) - (z_d - mu_k)^2 / (2 sigma_k^2)]
    (logsumexp keeps it finite where every term alone would underflow)."""
    t = target.unsqueeze(-2)  # (..., 1, D): the same target for every component
    log_n = -pred.log_sigma - LOG_SQRT_2PI - 0.5 * ((t - pred.mu) / pred.log_sigma.exp()).square()
    return -torch.logsumexp(pred.log_pi + log_n, dim=-2).sum(-1)


def world_loss(pred: MDNOut, z_next: torch.Tensor, crash: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """M's loss over the real steps of a batch (mask (B, T) is 1 where a step was played):
    the MDN's negative log-likelihood of the next code per step, plus the cross-entropy of
    its done prediction against what happened."""
    n = mask.sum().clamp(min=1)
    nll = (mdn_nll(pred, z_next) * mask).sum() / n
    done = (F.binary_cross_entropy_with_logits(pred.done_logit, crash, reduction="none") * mask).sum() / n
    return {"loss": nll + done, "nll": nll, "done": done}


def sample_next(pred: MDNOut, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """Draw z_{t+1} from M's mixture, made wilder by the temperature tau: the weights become
    softmax(log pi / tau) (tau > 1 flattens them: unlikely components come up more often)
    and every scale grows to sigma * sqrt(tau). (..., K, D) -> (..., D)."""
    K = pred.log_pi.shape[-2]
    logits = (pred.log_pi / temperature).movedim(-2, -1).reshape(-1, K)  # (N*D, K)
    k = torch.multinomial(logits.softmax(-1), 1, generator=generator).view(*pred.mu.shape[:-2], 1, -1)  # (..., 1, D)
    mu = pred.mu.gather(-2, k).squeeze(-2)
    sigma = pred.log_sigma.gather(-2, k).squeeze(-2).exp() * math.sqrt(temperature)
    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
    return mu + sigma * eps


# -- C: a linear controller --

def controller_size(z_dim: int, hidden: int) -> int:
    """C's parameters: one weight per input of [z, h], and a bias."""
    return z_dim + hidden + 1


def act(theta: torch.Tensor, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """C for a batch of controllers, one row of theta per episode: (N, D + H + 1), (N, D),
    (N, H) -> actions (N,) in {0: left, 1: stay, 2: right}.

    c = tanh(w . [z, h] + b), then left below -1/3, right above 1/3, stay between."""
    c = torch.tanh((theta[:, :-1] * torch.cat([z, h], -1)).sum(-1) + theta[:, -1])  # (N,)
    return (c > -1 / 3).long() + (c > 1 / 3).long()


@torch.no_grad()
def dream(m: MDNRNN, theta: torch.Tensor, z0: torch.Tensor, steps: int, temperature: float,
          generator: torch.Generator, record: bool = False) -> dict[str, torch.Tensor]:
    """Play C inside M's dream: start from real codes z0 (N, D) with an empty memory, and at
    every step let C act on (z, h), let M predict the next z and whether the episode ends,
    draw both, and go on from the drawn z. The return counts the steps survived, as the game
    does. With ``record``, also the codes (N, steps + 1, D) and actions (N, steps) played."""
    n = z0.shape[0]
    z, state = z0, None
    h = z0.new_zeros(n, m.args.hidden)
    alive = torch.ones(n, dtype=torch.bool, device=z0.device)
    ret = torch.zeros(n, device=z0.device)
    zs, actions = [z0], []
    for _ in range(steps):
        a = act(theta, z, h)  # (N,)
        pred, state, hs = m(z.unsqueeze(1), (a - 1).float().unsqueeze(1), state)
        h = hs[:, 0]
        p_done = torch.sigmoid(pred.done_logit[:, 0])
        crash = torch.rand(n, generator=generator).to(z.device) < p_done  # the dream draws its crashes too
        ret += (alive & ~crash).float()
        alive &= ~crash
        z = sample_next(MDNOut(*(t[:, 0] for t in pred)), temperature, generator)
        if record:
            zs.append(z)
            actions.append(a)
        elif not alive.any():
            break
    out = {"return": ret}
    if record:
        out["z"], out["actions"] = torch.stack(zs, 1), torch.stack(actions, 1)
    return out


# -- the evolution strategy --

class ES:
    """An evolution strategy with one step size for every direction (the mean and step-size
    updates of CMA-ES, without its covariance matrix).

    Each generation: draw lambda candidates x_i = m + sigma * eps_i, eps_i ~ N(0, I), in
    mirrored pairs (eps and -eps, which cancels much of the sampling noise); score them; move
    the mean to a weighted average of the best mu = lambda / 2:

        m <- m + sigma * sum_i w_i eps_(i)      (w_i falls with the rank i, sums to 1)

    The step size follows the evolution path p, a running sum of those steps: when
    successive steps point the same way, p grows longer than a random walk's and sigma
    grows; when they cancel, sigma shrinks (cumulative step-size adaptation)."""

    def __init__(self, dim: int, popsize: int, sigma: float, generator: torch.Generator):
        self.dim, self.popsize, self.generator = dim, popsize + popsize % 2, generator
        self.mean = torch.zeros(dim)
        self.sigma = torch.tensor(float(sigma))
        self.path = torch.zeros(dim)
        mu = self.popsize // 2
        w = math.log(mu + 0.5) - torch.log(torch.arange(1, mu + 1, dtype=torch.float64))
        self.weights = (w / w.sum()).float()  # (mu,)
        self.mu_eff = 1.0 / self.weights.square().sum().item()  # how many parents the weights are worth
        self.c = (self.mu_eff + 2) / (dim + self.mu_eff + 5)
        self.damping = 1 + 2 * max(0.0, math.sqrt((self.mu_eff - 1) / (dim + 1)) - 1) + self.c
        self.chi = math.sqrt(dim) * (1 - 1 / (4 * dim) + 1 / (21 * dim * dim))  # E |N(0, I)|
        self.eps: torch.Tensor | None = None

    def ask(self) -> torch.Tensor:
        """(lambda, dim): this generation's candidates."""
        half = torch.randn(self.popsize // 2, self.dim, generator=self.generator)
        self.eps = torch.cat([half, -half])
        return self.mean + self.sigma * self.eps

    def tell(self, fitness: torch.Tensor) -> None:
        """Move toward the candidates with the highest fitness (lambda,)."""
        best = torch.argsort(fitness.cpu(), descending=True, stable=True)[: len(self.weights)]
        step = self.weights @ self.eps[best]  # (dim,)
        self.mean = self.mean + self.sigma * step
        self.path = (1 - self.c) * self.path + math.sqrt(self.c * (2 - self.c) * self.mu_eff) * step
        self.sigma = (self.sigma * math.exp(self.c / self.damping * (self.path.norm().item() / self.chi - 1))).clamp(
            1e-3, 10.0)

    def state_dict(self) -> dict:
        return {"mean": self.mean.clone(), "sigma": self.sigma.clone(), "path": self.path.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.sigma, self.path = state["mean"].clone(), state["sigma"].clone(), state["path"].clone()
