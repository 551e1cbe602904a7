"""The energy-based model recipe: a network learns an energy E(x) that is low on the data
and high elsewhere, and samples are drawn by walking downhill on it with noise (Langevin
dynamics).

One training step: take real examples and a batch of chains from the replay buffer (a few
restarted from noise), move the chains a few Langevin steps, store them back, then lower
the real examples' energy and raise the chains' (contrastive divergence). The views show
the energy landscape with chains sliding over it (points in the plane), or chains turning
noise into digits, and what the buffer holds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from engine.configs.ebm import EBMConfig
from engine.imaging import draw_points, make_grid
from engine.models.ebm import DigitEnergy, PointEnergy, ReplayBuffer, contrastive_divergence, langevin
from engine.recipes.base import Artifact, Recipe, RunContext

TOY_BOUNDS = (-3.0, 3.0)  # chains live in the square the views show; every toy shape fits inside
IMAGE_BOUNDS = (-1.0, 1.0)  # pixels, as the digits are scaled
REAL_JITTER = 0.005  # std of noise added to real examples: no exact 0 or 1 pixels the chains cannot reach
NOISE_PROBE = 16  # fresh-noise inputs per step whose energy is reported (not trained on)
PARAM_CLIP = 1.0  # a rare huge gradient of the loss must not undo the network in one step
N_FIXED = {True: 1000, False: 64}  # chains drawn from fixed noise for the views and scores (toy, digits)
N_SHOW = 400  # points drawn per cloud in a toy view
TIMELINE_FRAMES = 21  # frames of the chains' timeline: steps 0, 5%, ..., 100% of sample_steps
TIMELINE_IMAGES = 16  # digits per timeline frame (a 4x4 grid)
PX = 144  # a toy view: PX x PX pixels across the square TOY_BOUNDS
BUFFER_SHOWN = 64  # digits drawn from the buffer in its view

# Colours (RGB). The landscape runs from LOW (the energy's valleys, where samples belong) to
# HIGH (the hills); real points are drawn dim, chains bright.
LOW, HIGH = np.array([38, 120, 170]), np.array([24, 18, 34])
REAL_DOT, CHAIN_DOT, BUFFER_DOT = (150, 150, 160), (255, 210, 90), (255, 140, 210)


class EBMRecipe(Recipe):
    checkpointed = ("model", "opt", "buffer", "data_gen")  # the buffer's chains are saved too
    nan_hint = "raise alpha, or lower lr or step_size (digits: keep grad_clip on), and start again."

    def __init__(self, ctx: RunContext, cfg: EBMConfig):
        # One CPU thread: every Langevin step is a small forward and backward pass. On a
        # 2-core machine that other programs kept busy, a digits step took about 0.5 s on
        # one thread and 13 s on two, the threads waiting on each other.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, cpu_threads=1)
        dev = ctx.device
        self.toy = cfg.dataset == "toy2d"
        if self.toy:
            self.model: nn.Module = PointEnergy(cfg.hidden).to(dev)
            self.shape: tuple[int, ...] = (2,)
            self.bounds = TOY_BOUNDS
            self.train_size = 0  # fresh points every step: there are no epochs
            self.view_interval = 1.0  # the points move fast (the runner waits longer if the views cost more)
        else:
            self.model = DigitEnergy(cfg.width).to(dev)
            self.shape = (1, 28, 28)
            self.bounds = IMAGE_BOUNDS
        # Adam without momentum (beta1 = 0): the samples the loss is measured on change every
        # step, and momentum would keep pushing on energies the chains have already left.
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.0, 0.999))
        # The data and the buffer draw from their own generator, so it can be checkpointed.
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.shape, self.bounds,
                                   torch.Generator().manual_seed(cfg.seed + 3)).to(dev)
        # Fixed noise, drawn once: the views and scores start their chains from the same
        # place every time, so they change only as the model (or a Langevin setting) does.
        self.fixed_start = self.buffer.noise((N_FIXED[self.toy], *self.shape),
                                             torch.Generator().manual_seed(cfg.seed + 1)).to(dev)
        self.updates = 0  # optimiser steps taken by this process: the views' cache key
        self.classifier = None
        self._cache: tuple | None = None  # (key, final chains, [(step, chains)] snapshots)
        if self.toy:
            from engine.data.toy2d import sample_toy

            self.real_eval = sample_toy(cfg.toy_shape, N_FIXED[True],
                                        generator=torch.Generator().manual_seed(cfg.seed + 6)).to(dev)
        elif ctx.need_data:
            from engine.data.digits import load_digits

            ctx.log(f"generating {cfg.train_size:,} embedded digits (seed {cfg.seed}; cached after the first time)")
            x, _ = load_digits(cfg.train_size, cfg.seed)
            self.x_train = x.unsqueeze(1).to(dev).float() / 127.5 - 1.0  # (N, 1, 28, 28) in [-1, 1]
            self.train_size = len(self.x_train)

    # -- the data --
    def batch(self) -> torch.Tensor:
        """One batch of real examples: (B, 2) points or (B, 1, 28, 28) digits in [-1, 1]."""
        if self.toy:
            from engine.data.toy2d import sample_toy

            return sample_toy(self.cfg.toy_shape, self.batch_size, generator=self.data_gen).to(self.ctx.device)
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        return self.x_train[idx]

    # -- training --
    def sample_chains(self, start: torch.Tensor, steps: int, generator: torch.Generator | None = None,
                      on_step=None) -> torch.Tensor:
        """Langevin dynamics from `start` with the current settings (live: they apply at the
        next call)."""
        cfg = self.cfg
        return langevin(self.model, start, steps, cfg.step_size, cfg.noise, self.bounds,
                        grad_clip=cfg.grad_clip or None, generator=generator, on_step=on_step)

    def train_step(self) -> dict[str, torch.Tensor]:
        cfg, n = self.cfg, self.batch_size
        real = self.batch()
        real = (real + REAL_JITTER * torch.randn_like(real)).clamp(*self.bounds)
        # Negatives: continue chains from the buffer (a `fresh` share restarted from noise)...
        start, slots = self.buffer.draw(n, cfg.fresh, self.data_gen)
        fake = self.sample_chains(start, cfg.langevin_steps)
        self.buffer.store(fake, slots)
        probe = self.buffer.noise((NOISE_PROBE, *self.shape), self.data_gen).to(real.device)
        # ...then one pass over real, sampled and noise inputs (no batch norm: each energy
        # depends on its own input only, so sharing the pass changes nothing).
        energy = self.model(torch.cat([real, fake, probe]))  # (2B + P,)
        e_real, e_fake, e_noise = energy[:n], energy[n:2 * n], energy[2 * n:]
        loss, cd, reg = contrastive_divergence(e_real, e_fake, cfg.alpha)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), PARAM_CLIP)
        self.opt.step()
        self.updates += 1
        return {"train/loss": loss.detach(), "train/e_real": e_real.mean().detach(),
                "train/e_sample": e_fake.mean().detach(), "train/e_noise": e_noise.mean().detach()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            for group in self.opt.param_groups:
                group["lr"] = float(value)
        elif key not in ("langevin_steps", "step_size", "noise", "grad_clip", "fresh", "sample_steps"):
            raise KeyError(key)
        setattr(self.cfg, key, value)

    # -- sampling from fixed noise (never touches the training random streams) --
    def fixed_chains(self) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        """Chains from the fixed noise after sample_steps, and TIMELINE_FRAMES snapshots on
        the way [(step, x)]. Kept until the weights or a Langevin setting change, so
        evaluate() right after samples() costs nothing."""
        cfg = self.cfg
        steps = cfg.sample_steps
        key = (self.updates, steps, cfg.step_size, cfg.noise, cfg.grad_clip)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        k = min(TIMELINE_FRAMES, steps + 1)
        keep = {round(i * steps / (k - 1)) for i in range(k)}
        frames: list[tuple[int, torch.Tensor]] = []

        def record(i: int, x: torch.Tensor) -> None:
            if i in keep:
                frames.append((i, x.clone()))

        g = torch.Generator().manual_seed(self.cfg.seed + 7)  # the chains' noise: the same every time
        x = self.sample_chains(self.fixed_start, steps, generator=g, on_step=record)
        self._cache = (key, x, frames)
        return x, frames

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n new samples from noise: digits (N, 1, 28, 28) in [0, 1], or the points drawn on
        the landscape as one picture (1, 3, H, W)."""
        start = self.buffer.noise((n, *self.shape), generator).to(self.ctx.device)
        x = self.sample_chains(start, self.cfg.sample_steps, generator=generator)
        if self.toy:
            return torch.from_numpy(self.landscape([(x, CHAIN_DOT)])).permute(2, 0, 1)[None].float() / 255
        return self.to_unit(x)

    # -- evaluation and views --
    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() + 1) / 2).clamp(0, 1)

    def evaluate(self) -> dict[str, float]:
        x, _ = self.fixed_chains()
        if self.toy:
            from engine.metrics.distance2d import sliced_wasserstein

            return {"quality/sliced_wasserstein": sliced_wasserstein(x.cpu(), self.real_eval.cpu())}
        from engine.metrics.digit_classifier import score_digits

        scores = score_digits(self.digit_judge(), self.to_unit(x))
        return {"quality/recognisability": scores["recognisability"], "quality/coverage": scores["coverage"]}

    @torch.no_grad()
    def energy_map(self) -> np.ndarray:
        """The energy on a PX x PX grid over the view's square, as colours (PX, PX, 3):
        valleys bright, hills dark. The colour scale runs from the lowest energy to the
        median, so the valleys keep their detail however high the far corners climb."""
        lo, hi = TOY_BOUNDS
        axis = torch.linspace(lo, hi, PX, device=self.ctx.device)
        gy, gx = torch.meshgrid(-axis, axis, indexing="ij")  # row 0 is the top (+y)
        e = self.model(torch.stack([gx.flatten(), gy.flatten()], dim=1)).view(PX, PX).float().cpu()
        e_min, e_mid = e.min(), e.median()
        t = ((e - e_min) / (e_mid - e_min).clamp_min(1e-6)).clamp(0, 1).sqrt().numpy()[..., None]  # 0 = valley
        return (LOW + (HIGH - LOW) * t).astype(np.uint8)

    def landscape(self, clouds: list[tuple[torch.Tensor, tuple[int, int, int]]],
                  base: np.ndarray | None = None) -> np.ndarray:
        """Point clouds (N, 2) drawn in order over the energy map: uint8 (PX, PX, 3)."""
        image = (self.energy_map() if base is None else base).copy()
        for points, colour in clouds:
            draw_points(image, points[:N_SHOW], colour, TOY_BOUNDS[1])
        return image

    def settings_text(self) -> str:
        cfg = self.cfg
        clip = f", clip {cfg.grad_clip:g}" if cfg.grad_clip else ""
        return f"step {cfg.step_size:g}, noise {cfg.noise:g}{clip}"

    def timeline(self, frames: list[tuple[int, torch.Tensor]]) -> list[Artifact]:
        """The chains' timeline: one frame per snapshot, the start on the left (points over
        the energy map, or a 4x4 grid of digits), and its description."""
        label = f"{self.cfg.sample_steps} Langevin steps from fixed noise ({self.settings_text()})"
        if self.toy:
            base = self.energy_map()
            pictures = [self.landscape([(self.real_eval, REAL_DOT), (x, CHAIN_DOT)], base) for _, x in frames]
        else:
            pictures = [make_grid(self.to_unit(x[:TIMELINE_IMAGES]), nrow=4) for _, x in frames]
        meta = {"frames": len(frames), "t": [step for step, _ in frames], "label": label,
                "ends": ["noise", "points" if self.toy else "digits"]}
        return [Artifact("chains", "image", np.concatenate(pictures, axis=1), label),
                Artifact("chains-meta", "data", meta, label)]

    def samples(self) -> list[Artifact]:
        x, frames = self.fixed_chains()
        what = f"{len(x)} chains after {self.cfg.sample_steps} Langevin steps from noise ({self.settings_text()})"
        if self.toy:
            base = self.energy_map()
            out = [Artifact("samples", "image", self.landscape([(self.real_eval, REAL_DOT), (x, CHAIN_DOT)], base),
                            what + "; real points grey, energy valleys blue"),
                   Artifact("buffer", "image", self.landscape([(self.buffer.items, BUFFER_DOT)], base),
                            f"{N_SHOW} of the {len(self.buffer.items):,} points in the replay buffer")]
        else:
            out = [Artifact("samples", "image", make_grid(self.to_unit(x), nrow=8), what),
                   Artifact("buffer", "image", make_grid(self.to_unit(self.buffer.items[:BUFFER_SHOWN]), nrow=8),
                            f"the first {BUFFER_SHOWN} of the {len(self.buffer.items):,} images in the replay buffer")]
        return out + self.timeline(frames)


RECIPE = EBMRecipe
