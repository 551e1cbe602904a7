"""Two models of the same labelled points, written to be read: one discriminative, one
generative.

- The classifier learns p(y | x): given a point x, how likely each class y is. It draws a
  boundary across the plane, and that is all it knows. Ask it for a new point and it has
  nothing to offer: it never modelled where points are.
- The class mixture learns p(y) and p(x | y), so it also has p(x) = sum over y of
  p(y) p(x | y). With those it can score any point (its likelihood), draw new points (pick
  y, then a component, then x), and still classify, by Bayes' rule:
  p(y | x) = p(y) p(x | y) / p(x).

Each class's p(x | y) is a mixture of K Gaussians. Which Gaussian a point came from is a
latent variable: never observed, summed out when the model scores a point, drawn first
when it makes one.

Both are fitted the same way: a loss on a batch, its gradients by autograd, a step of the
optimiser (engine/recipes/start.py). The losses are written here, beside their models.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.gan2d import mlp

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------------------
# The discriminative model: p(y | x).
# ----------------------------------------------------------------------------------------

class Classifier(nn.Module):
    """A small MLP: a point (B, 2) -> one logit per class (B, C). softmax(logits) = p(y | x)."""

    def __init__(self, classes: int = 2, hidden: int = 32, layers: int = 2):
        super().__init__()
        self.net = mlp(2, classes, hidden, layers, nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 2) -> (B, C) logits


def classifier_loss(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy: the mean of -log p(y | x) over the batch, in nats per point. It only
    asks the model to name the right class; where the points lie costs it nothing."""
    logits = model(x)  # the forward pass: (B, C)
    return F.cross_entropy(logits, y)  # = -(log_softmax(logits)[i, y_i]).mean()


# ----------------------------------------------------------------------------------------
# The generative model: p(y) and p(x | y), a mixture of Gaussians per class.
# ----------------------------------------------------------------------------------------

def farthest_points(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k of the points x (N, 2), spread out: a random first one, then each next one the
    point farthest from all chosen so far. Mixture components started this way begin on
    different clusters; started at k random points, two often share a cluster while
    another cluster has none, and gradient descent is slow to move one across."""
    chosen = [int(torch.randint(len(x), (1,), generator=generator))]
    nearest = (x - x[chosen[0]]).norm(dim=1)  # (N,) distance to the closest chosen point
    for _ in range(k - 1):
        chosen.append(int(nearest.argmax()))
        nearest = torch.minimum(nearest, (x - x[chosen[-1]]).norm(dim=1))
    return x[chosen]  # (k, 2)


class ClassMixture(nn.Module):
    """p(x, y) = p(y) p(x | y), with p(x | y) = sum over k of p(k | y) N(x; mu_yk, diag sigma_yk^2).

    Parameters, all free real numbers (softmax and exp turn them into probabilities and
    spreads, so no step of the optimiser can make them invalid):
      class_logits  (C,)        p(y)     = softmax(class_logits)
      mix_logits    (C, K)      p(k | y) = softmax(mix_logits[y])
      means         (C, K, 2)   mu
      log_std       (C, K, 2)   sigma = exp(log_std), one per axis
    """

    def __init__(self, classes: int = 2, components: int = 4):
        super().__init__()
        self.classes, self.components = classes, components
        self.class_logits = nn.Parameter(torch.zeros(classes))
        self.mix_logits = nn.Parameter(torch.zeros(classes, components))
        self.means = nn.Parameter(torch.zeros(classes, components, 2))
        self.log_std = nn.Parameter(torch.zeros(classes, components, 2))

    @torch.no_grad()
    def start_at(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, std: float = 0.5) -> None:
        """Place each class's components on spread-out points of that class (farthest_points),
        each with spread ``std``: a fair start for gradient descent."""
        for c in range(self.classes):
            self.means[c] = farthest_points(x[y == c], self.components, generator)
        self.log_std.fill_(math.log(std))

    def log_components(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; mu_yk, diag sigma_yk^2) for every class and component: (B, 2) -> (B, C, K).
        Per axis: -log sigma - (x - mu)^2 / (2 sigma^2) - log(2 pi) / 2, summed over the 2 axes."""
        z = (x[:, None, None, :] - self.means) / self.log_std.exp()  # (B, C, K, 2)
        return (-self.log_std - 0.5 * z.square() - 0.5 * LOG_2PI).sum(-1)  # (B, C, K)

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x, y) for every class y: (B, 2) -> (B, C). The component k is summed out:
        log p(x, y) = log p(y) + log sum_k p(k | y) N(x; mu_yk, sigma_yk), in log space
        (logsumexp) so that a point far from every component gives a large negative number,
        not log 0."""
        log_k_given_y = F.log_softmax(self.mix_logits, dim=1)  # (C, K)
        log_x_given_y = torch.logsumexp(log_k_given_y + self.log_components(x), dim=2)  # (B, C)
        return F.log_softmax(self.class_logits, dim=0) + log_x_given_y  # (B, C)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log sum_y p(x, y): (B, 2) -> (B,). The likelihood of unlabelled points."""
        return torch.logsumexp(self.log_joint(x), dim=1)

    def posterior(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y | x) = log p(x, y) - log p(x) (Bayes' rule): (B, 2) -> (B, C). A generative
        model classifies too."""
        joint = self.log_joint(x)  # (B, C)
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)

    def sample(self, n: int, generator: torch.Generator, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n new points, ancestrally: y ~ p(y) (unless given, (n,)), then the latent
        component k ~ p(k | y), then x = mu_yk + sigma_yk * eps with eps ~ N(0, I).
        Returns x (n, 2) and y (n,)."""
        dev = self.means.device
        if y is None:
            y = torch.multinomial(F.softmax(self.class_logits, 0).cpu(), n, replacement=True, generator=generator)
        y = y.cpu()
        p_k = F.softmax(self.mix_logits, dim=1).cpu()[y]  # (n, K): each point's p(k | its y)
        k = torch.multinomial(p_k, 1, generator=generator).squeeze(1)  # (n,) the latent choice
        eps = torch.randn(n, 2, generator=generator)  # (n, 2)
        y, k = y.to(dev), k.to(dev)
        return self.means[y, k] + self.log_std[y, k].exp() * eps.to(dev), y


def generative_loss(model: ClassMixture, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The negative log-likelihood of the labelled batch: the mean of -log p(x, y), in nats
    per point. It asks the model to put probability where the points are, in their class."""
    joint = model.log_joint(x)  # the forward pass: (B, C)
    return -joint.gather(1, y[:, None]).mean()  # pick each point's own class
