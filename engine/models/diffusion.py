"""The denoising diffusion process: one noise schedule, used by training and by sampling.

The forward process destroys an image x_0 in T small steps, each adding a little Gaussian
noise and shrinking what is left of the signal:

    q(x_t | x_{t-1}) = N( sqrt(1 - beta_t) x_{t-1},  beta_t I ),        t = 1 .. T

Because every step is Gaussian, T steps compose into one Gaussian, so any x_t can be drawn
from x_0 directly (no loop), with alpha_t = 1 - beta_t and alpha_bar_t = alpha_1 ... alpha_t:

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,       eps ~ N(0, I)

A network learns eps from (x_t, t). Sampling runs the process backwards from pure noise
x_T, using the network's guess of the noise at each step: DDPM takes all T steps and adds
fresh noise at each; DDIM jumps over many steps and, with eta = 0, adds none.

Convention: t counts noising steps as in the DDPM paper, so t = 0 is the clean image and
t = T is (almost exactly) pure noise. The arrays below have T + 1 entries; entry 0 belongs
to the clean image (beta_0 = 0, alpha_bar_0 = 1). Training draws t from 1 .. T
(``sample_t``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, ...), t (B,)) -> eps (B, ...)
OnStep = Callable[[int, int, torch.Tensor], None]  # (step number i, t of x, x)

BETA_MAX = 0.999  # no step may destroy all of the signal (beta = 1 would divide by zero later)
COSINE_S = 0.008  # Nichol & Dhariwal's offset: keeps beta_1 from being vanishingly small


def linear_betas(steps: int) -> torch.Tensor:
    """beta_1 .. beta_T evenly spaced from 1e-4 to 0.02 (Ho et al., for T = 1000).

    Scaled by 1000 / T, so a shorter chain destroys the image about as completely as the
    original 1000 steps do (each step then has to do more of the work)."""
    scale = 1000.0 / steps
    return torch.linspace(1e-4 * scale, 0.02 * scale, steps, dtype=torch.float64).clamp(max=BETA_MAX)


def cosine_betas(steps: int) -> torch.Tensor:
    """beta_1 .. beta_T from a cosine-shaped alpha_bar (Nichol & Dhariwal, 2021):

        alpha_bar(t) = f(t) / f(0),   f(t) = cos^2( (t/T + s) / (1 + s) * pi/2 )
        beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1), clipped to 0.999

    The linear schedule wipes out small images early: by the middle of the chain there is
    almost nothing left to denoise, so many steps are wasted. The cosine curve falls slowly
    at both ends and nearly linearly in between, so information leaves more evenly."""
    t = torch.arange(steps + 1, dtype=torch.float64)
    f = torch.cos((t / steps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=BETA_MAX)


class NoiseSchedule:
    """beta_t, alpha_t and alpha_bar_t for t = 0 .. T, and every formula that uses them.

    kind: "linear" or "cosine"; steps: T. Keep it on the model's device (``.to``)."""

    def __init__(self, kind: str = "linear", steps: int = 1000, device: torch.device | str | None = None):
        if kind not in ("linear", "cosine"):
            raise ValueError(f"unknown noise schedule {kind!r}: use 'linear' or 'cosine'")
        if steps < 2:
            raise ValueError(f"a diffusion needs at least 2 steps, got {steps}")
        self.kind, self.steps = kind, int(steps)
        betas = linear_betas(steps) if kind == "linear" else cosine_betas(steps)
        # Work in float64 (a product of 1000 numbers near 1), store float32.
        betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])  # (T+1,): beta_0 = 0, the clean image
        alphas = 1 - betas
        alpha_bar = torch.cumprod(alphas, 0)  # alpha_bar_t = alpha_1 * ... * alpha_t; alpha_bar_0 = 1
        self.betas, self.alphas, self.alpha_bar = (a.float() for a in (betas, alphas, alpha_bar))
        self.to(device or "cpu")

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        self.device = torch.device(device)
        self.betas, self.alphas, self.alpha_bar = (a.to(self.device) for a in (self.betas, self.alphas, self.alpha_bar))
        return self

    # -- helpers --
    def _at(self, values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """values[t] shaped to broadcast over ``like`` (B, ...): one number per example."""
        if not torch.is_tensor(t):
            return values[int(t)].to(like.dtype)
        v = values[t.to(values.device).long()].to(like.device, like.dtype)  # (B,)
        return v.view(-1, *([1] * (like.dim() - 1)))  # (B, 1, 1, 1) for images

    def sample_t(self, n: int, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """n training timesteps, uniform on 1 .. T (long, (n,))."""
        dev = torch.device(device) if device is not None else self.device
        gdev = generator.device if generator is not None else dev
        return torch.randint(1, self.steps + 1, (n,), generator=generator, device=gdev).to(dev)

    def signal_level(self, t: torch.Tensor | int) -> torch.Tensor:
        """sqrt(alpha_bar_t): how much of x_0 is left in x_t."""
        return self.alpha_bar[t].sqrt()

    def noise_level(self, t: torch.Tensor | int) -> torch.Tensor:
        """sqrt(1 - alpha_bar_t): the standard deviation of the noise in x_t."""
        return (1 - self.alpha_bar[t]).sqrt()

    # -- the forward process --
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """Jump straight from x_0 to x_t (the closed form):

            x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps

        t is an int or a (B,) tensor of timesteps, one per example; t = 0 returns x_0."""
        return self._at(self.alpha_bar, t, x0).sqrt() * x0 + (1 - self._at(self.alpha_bar, t, x0)).sqrt() * noise

    def q_step(self, x_prev: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """One step of the forward process, x_{t-1} -> x_t (what q_sample shortcuts):

            x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps"""
        return self.alphas[t].sqrt() * x_prev + self.betas[t].sqrt() * noise

    def predict_x0(self, eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int,
                   x0_clip: float | None = None) -> torch.Tensor:
        """Invert the closed form with the predicted noise:

            x_0 ~= (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)

        ``x0_clip``: clamp the guess to [-c, c] (images live in [-1, 1]; early in sampling
        the guess overshoots, and clamping keeps those errors from feeding back)."""
        ab = self._at(self.alpha_bar, t, x_t)
        x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        return x0.clamp(-x0_clip, x0_clip) if x0_clip is not None else x0

    def v_target(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho), the other
        thing a network can learn instead of eps. Near t = T, x_t is almost all noise, so
        eps ~ x_t and recovering x_0 from a predicted eps divides its error by
        sqrt(alpha_bar_t), which is tiny there; v is mostly -x_0 at high noise and mostly eps
        at low noise, so no step of the chain magnifies the network's error."""
        a = self._at(self.alpha_bar, t, x0).sqrt()
        return a * noise - (1 - a * a).sqrt() * x0

    def v_to_eps(self, v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """eps from a predicted v: with x_t = a x_0 + s eps and a^2 + s^2 = 1, eps = s x_t + a v."""
        a = self._at(self.alpha_bar, t, x_t).sqrt()
        return (1 - a * a).sqrt() * x_t + a * v

    # -- sampling, one step --
    def ddpm_step(self, model_eps: torch.Tensor, x_t: torch.Tensor, t: int,
                  generator: torch.Generator | None = None, x0_clip: float | None = None) -> torch.Tensor:
        """One ancestral step x_t -> x_{t-1} (Ho et al., Algorithm 2).

        The forward process run backwards is Gaussian too, once x_0 is known. We do not know
        x_0, so we use the network's guess (``predict_x0``) in the posterior's mean:

            mean = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) * x_0
                 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * x_t
            var  = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)
            x_{t-1} = mean + sqrt(var) z,    z ~ N(0, I)

        Without clipping this equals the paper's form
        mean = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t).
        The last step (t = 1 -> 0) adds no noise: var is 0 there, and x_0 is the answer."""
        t = int(t)
        if not 1 <= t <= self.steps:
            raise ValueError(f"ddpm_step needs 1 <= t <= {self.steps}, got {t}")
        ab_t, ab_prev = self.alpha_bar[t], self.alpha_bar[t - 1]
        beta_t, alpha_t = self.betas[t], self.alphas[t]
        x0 = self.predict_x0(model_eps, x_t, t, x0_clip)
        mean = (ab_prev.sqrt() * beta_t / (1 - ab_t)) * x0 + (alpha_t.sqrt() * (1 - ab_prev) / (1 - ab_t)) * x_t
        if t == 1:
            return mean
        var = beta_t * (1 - ab_prev) / (1 - ab_t)
        return mean + var.sqrt() * _randn_like(x_t, generator)

    def ddim_step(self, model_eps: torch.Tensor, x_t: torch.Tensor, t: int, t_prev: int, eta: float = 0.0,
                  generator: torch.Generator | None = None, x0_clip: float | None = None) -> torch.Tensor:
        """One DDIM step x_t -> x_{t_prev}, where t_prev < t may skip many steps (Song et al.):

            x_0  = predict_x0(eps, x_t, t)
            x_{t_prev} = sqrt(alpha_bar_prev) x_0                       (the clean guess, re-noised...)
                       + sqrt(1 - alpha_bar_prev - sigma^2) eps          (...with the same noise...)
                       + sigma z                                         (...plus fresh noise)
            sigma = eta * sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * sqrt(1 - alpha_bar_t / alpha_bar_prev)

        With eta = 0 the step is deterministic: the noise that was predicted is put back at
        the lower level instead of drawing new noise, so the same x_T always gives the same
        image. eta = 1 is DDPM's amount of fresh noise."""
        t, t_prev = int(t), int(t_prev)
        if not 0 <= t_prev < t <= self.steps:
            raise ValueError(f"ddim_step needs 0 <= t_prev < t <= {self.steps}, got t={t}, t_prev={t_prev}")
        ab_t, ab_prev = self.alpha_bar[t], self.alpha_bar[t_prev]
        x0 = self.predict_x0(model_eps, x_t, t, x0_clip)
        sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).sqrt()
        x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * model_eps
        if eta > 0 and t_prev > 0:
            x = x + sigma * _randn_like(x_t, generator)
        return x

    # -- sampling, whole chains --
    def ddim_timesteps(self, n_steps: int) -> list[int]:
        """n_steps + 1 timesteps from T down to 0, as evenly spaced as integers allow."""
        n = max(1, min(int(n_steps), self.steps))
        return [round(self.steps * (1 - i / n)) for i in range(n + 1)]

    @torch.inference_mode()
    def ddim_sample(self, eps_fn: EpsFn, x_T: torch.Tensor, n_steps: int, eta: float = 0.0,
                    generator: torch.Generator | None = None, on_step: OnStep | None = None,
                    x0_clip: float | None = None) -> torch.Tensor:
        """From noise x_T to a sample in n_steps network calls (T / n_steps steps per call).

        ``eps_fn(x, t)`` is anything that predicts the noise: the network, or a wrapper that
        mixes a conditional and an unconditional prediction (classifier-free guidance). t is
        passed as a (B,) long tensor. ``on_step(i, t, x)`` sees the start (i = 0, t = T) and
        the state after each step (i = 1 .. n, the last one at t = 0)."""
        ts = self.ddim_timesteps(n_steps)
        x = x_T
        if on_step is not None:
            on_step(0, ts[0], x)
        for i, (t, t_prev) in enumerate(zip(ts[:-1], ts[1:]), start=1):
            eps = eps_fn(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
            x = self.ddim_step(eps.to(x.dtype), x, t, t_prev, eta, generator, x0_clip)
            if on_step is not None:
                on_step(i, t_prev, x)
        return x

    @torch.inference_mode()
    def ddpm_sample(self, eps_fn: EpsFn, x_T: torch.Tensor, generator: torch.Generator | None = None,
                    on_step: OnStep | None = None, x0_clip: float | None = None) -> torch.Tensor:
        """From noise x_T to a sample by all T ancestral steps (T network calls)."""
        x = x_T
        if on_step is not None:
            on_step(0, self.steps, x)
        for i, t in enumerate(range(self.steps, 0, -1), start=1):
            eps = eps_fn(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
            x = self.ddpm_step(eps.to(x.dtype), x, t, generator, x0_clip)
            if on_step is not None:
                on_step(i, t - 1, x)
        return x


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn from ``generator`` (on its own device, then
    moved), so a sample can be reproduced without touching the global random stream."""
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
