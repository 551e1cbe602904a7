"""The 2-D GAN recipe: a generator learns a shape in the plane while a discriminator learns
to tell its points from real ones. The view is a map of the discriminator's belief with
both point clouds on top, in the spirit of GAN Lab."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.configs.gan2d import GAN2DConfig
from engine.data.toy2d import sample_toy
from engine.imaging import draw_points
from engine.metrics.distance2d import energy_distance, sliced_wasserstein
from engine.models.gan2d import Discriminator, GAN2DArgs, Generator
from engine.recipes.base import Artifact, Recipe, RunContext

EXTENT = 3.0  # the view shows [-EXTENT, EXTENT]^2; every toy shape lies within about 2.5
FIELD_PX = 144  # the field image is FIELD_PX x FIELD_PX pixels
N_EVAL = 2000  # points compared by the distances
N_SHOW = 400  # points of each kind drawn on the field

# Colours (RGB): the map runs from FAKE_BG (D says "generated") to REAL_BG (D says "real").
REAL_BG, FAKE_BG = np.array([22, 88, 60]), np.array([92, 30, 78])
REAL_DOT, FAKE_DOT = np.array([120, 255, 170]), np.array([255, 120, 230])


class GAN2DRecipe(Recipe):
    checkpointed = ("G", "D", "opt_g", "opt_d", "data_gen")  # saved by Recipe.state_dict

    def __init__(self, ctx: RunContext, cfg: GAN2DConfig):
        # Networks this small spend more time coordinating threads than computing.
        # Its views are cheap, and the points move fast: refresh them twice a second.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, cpu_threads=1, view_interval=0.5)
        dev = ctx.device
        a = GAN2DArgs(noise_dim=cfg.noise_dim, hidden=cfg.hidden, layers=cfg.layers)
        self.G, self.D = Generator(a).to(dev), Discriminator(a).to(dev)
        # Adam with beta1 = 0.5, the usual choice for GANs: less momentum keeps the two
        # players from overshooting each other.
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # real points; checkpointed
        g = torch.Generator().manual_seed(cfg.seed + 1)
        # Fixed noise and a fixed real sample, so the views and distances compare like with like.
        self.fixed_z = torch.randn(N_EVAL, cfg.noise_dim, generator=g).to(dev)
        self.real_eval = sample_toy(cfg.shape, N_EVAL, generator=g).to(dev)
        self.train_size = 0  # fresh points every step: there are no epochs

    # -- training --
    def _step_discriminator(self, real: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Maximise log D(x) + log(1 - D(G(z))): binary cross-entropy with real = 1, fake = 0."""
        fake = self.G(z).detach()  # the generator is not trained in this step
        logit_real, logit_fake = self.D(real), self.D(fake)
        loss = (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"train/loss_d": loss.detach(), "train/d_real": torch.sigmoid(logit_real).mean().detach(),
                "train/d_fake": torch.sigmoid(logit_fake).mean().detach()}

    def _step_generator(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Non-saturating generator loss: maximise log D(G(z)) (label the fakes real).
        Minimising log(1 - D(G(z))) instead gives almost no gradient early on, when D
        easily rejects every fake."""
        logit = self.D(self.G(z))
        loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"train/loss_g": loss.detach()}

    def train_step(self) -> dict[str, torch.Tensor]:
        cfg, dev = self.cfg, self.ctx.device
        real = sample_toy(cfg.shape, cfg.batch_size, generator=self.data_gen).to(dev)  # (B, 2)
        z = torch.randn(cfg.batch_size, cfg.noise_dim, device=dev)  # (B, noise_dim)
        metrics: dict[str, torch.Tensor] = {}
        if cfg.step_mode in ("both", "discriminator"):
            metrics.update(self._step_discriminator(real, z))
        if cfg.step_mode in ("both", "generator"):
            metrics.update(self._step_generator(z))
        return metrics

    def set_live(self, key, value) -> None:
        if key == "lr_g":
            for group in self.opt_g.param_groups:
                group["lr"] = float(value)
        elif key == "lr_d":
            for group in self.opt_d.param_groups:
                group["lr"] = float(value)
        elif key != "step_mode":
            raise KeyError(key)
        setattr(self.cfg, key, value)

    # -- evaluation and views --
    @torch.inference_mode()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        self.G.eval()
        out = self.G(z)
        self.G.train()
        return out

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n generated points drawn as one field image (1, 3, H, W) in [0, 1], for export."""
        z = torch.randn(n, self.cfg.noise_dim, generator=generator).to(self.ctx.device)
        field = self.render_field(self.generate(z), show_real=False)
        return torch.from_numpy(field).permute(2, 0, 1).unsqueeze(0).float() / 255

    def evaluate(self) -> dict[str, float]:
        fake = self.generate(self.fixed_z).cpu()
        real = self.real_eval.cpu()
        return {"quality/sliced_wasserstein": sliced_wasserstein(fake, real),
                "quality/energy_distance": energy_distance(fake, real)}

    @torch.inference_mode()
    def render_field(self, fake: torch.Tensor, show_real: bool = True) -> np.ndarray:
        """The discriminator's D(x) over the plane as background colour, with the real
        points (green) and generated points (pink) on top: uint8 (H, W, 3)."""
        px = FIELD_PX
        axis = torch.linspace(-EXTENT, EXTENT, px, device=self.ctx.device)
        gy, gx = torch.meshgrid(-axis, axis, indexing="ij")  # row 0 is the top (+y)
        grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (px*px, 2)
        self.D.eval()
        p_real = torch.sigmoid(self.D(grid)).view(px, px, 1).cpu().numpy()  # (px, px, 1)
        self.D.train()
        image = (FAKE_BG + (REAL_BG - FAKE_BG) * p_real).astype(np.uint8)
        clouds = [(fake[:N_SHOW], FAKE_DOT)]
        if show_real:
            clouds.insert(0, (self.real_eval[:N_SHOW], REAL_DOT))
        for points, colour in clouds:
            draw_points(image, points, colour, EXTENT)
        return image

    def samples(self) -> list[Artifact]:
        fake = self.generate(self.fixed_z)
        caption = f"{self.cfg.shape}: real (green), generated (pink), D's belief behind (green = real)"
        return [Artifact("field", "image", self.render_field(fake), caption)]


RECIPE = GAN2DRecipe
