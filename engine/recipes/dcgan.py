"""The DCGAN recipe: a convolutional generator learns to draw digits (or the learner's own
pictures) while a convolutional discriminator learns to tell them from real ones. The views
are a grid decoded from fixed noise, so it sharpens in place, and walks between samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.configs.dcgan import DCGANConfig
from engine.data.images import as_digits, load_image_source
from engine.data.sources import DIGIT_SOURCES
from engine.device import autocast, fast_path
from engine.imaging import make_grid
from engine.metrics.diversity import near_duplicate_rate
from engine.models.dcgan import DCGANArgs, Discriminator, Generator, slerp
from engine.recipes.base import Artifact, Recipe, RunContext

N_SAMPLES = 256  # fixed noise vectors scored every evaluation; the first 64 are shown
N_WALKS, WALK_STEPS = 4, 10  # rows of the interpolation view, and images per row


def canvas(dataset: str) -> tuple[int, int]:
    """(side, channels) the networks are built for: 28x28 grey for digit-like sources,
    64x64 colour for the embedded faces and for folders of pictures."""
    return (28, 1) if dataset in ("digits", "mnist", "fashion-mnist") else (64, 3)


class DCGANRecipe(Recipe):
    checkpointed = ("G", "D", "opt_g", "opt_d", "data_gen")  # saved by Recipe.state_dict
    ddp_modules = ("G", "D")  # trained by every process under torchrun (--nproc N)

    def __init__(self, ctx: RunContext, cfg: DCGANConfig):
        # All CPU threads (torch's default). Measured on an idle 2-core machine, a step of the
        # default preset takes 46 ms on one thread and 27 ms on two. When other
        # programs keep the cores busy, two threads wait on each other and a step can take
        # several times longer: the steps/s on the status line then show it.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size)
        dev = ctx.device
        size, channels = canvas(cfg.dataset)
        self.digits = cfg.dataset in DIGIT_SOURCES  # the digit classifier judges the samples
        self.args = DCGANArgs(noise_dim=cfg.noise_dim, width=cfg.width, channels=channels, image_size=size)
        self.G, self.D = Generator(self.args).to(dev), Discriminator(self.args).to(dev)
        if fast_path(dev):
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        # Adam with beta1 = 0.5 (the DCGAN paper's choice): less momentum keeps the two
        # players from overshooting each other.
        fused = fast_path(dev)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999), fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999), fused=fused)
        # Fixed noise, drawn once from its own generator: the same 256 samples are drawn at
        # every evaluation, so the grid sharpens in place and the scores compare like with like.
        g = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = torch.randn(N_SAMPLES, cfg.noise_dim, generator=g).to(dev)
        # The data sampler has its own generator so its state can be checkpointed.
        self.data_gen = torch.Generator().manual_seed(self.data_seed(2))
        self.classifier = None
        if ctx.need_data:
            x = load_image_source(cfg.dataset, cfg.data_path, size, channels, cfg.train_size, 0, cfg.seed, ctx.log,
                                  model="a GAN").train
            # The whole dataset lives on the device, scaled to [-1, 1] like G's tanh output.
            self.x_train = x.to(dev).float() / 127.5 - 1.0
            if fast_path(dev):
                self.x_train = self.x_train.contiguous(memory_format=torch.channels_last)
            self.train_size = len(self.x_train)

    # -- training --
    def _step_discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Maximise log D(x) + log(1 - D(G(z))): binary cross-entropy with real = 1, fake = 0.
        Real and generated images go through D as separate batches, so each batch-norm
        layer normalises one kind at a time (the DCGAN practice): two backward passes, the
        first kept local, the second averaging the summed gradients across DDP processes."""
        D = self.train_module("D")
        self.opt_d.zero_grad(set_to_none=True)
        with self.no_sync("D"):
            with autocast(self.ctx.device):
                logit_real = D(real).float()  # (B,)
            loss_real = F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
            loss_real.backward()
        with autocast(self.ctx.device):
            logit_fake = D(fake.detach()).float()  # (B,)
        loss_fake = F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
        loss_fake.backward()
        self.opt_d.step()
        loss = loss_real.detach() + loss_fake.detach()
        return {"train/loss_d": loss.detach(), "train/d_real": torch.sigmoid(logit_real).mean().detach(),
                "train/d_fake": torch.sigmoid(logit_fake).mean().detach()}

    def _step_generator(self, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Non-saturating generator loss: maximise log D(G(z)) (label the fakes real), judged
        by the discriminator just updated. The same fakes as D's step: G's forward pass is
        reused, and only its backward pass is new."""
        with autocast(self.ctx.device):
            logit = self.train_module("D")(fake).float()  # (B,)
        loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"train/loss_g": loss.detach()}

    def train_step(self) -> dict[str, torch.Tensor]:
        dev = self.ctx.device
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(dev)
        real = self.x_train[idx]  # (B, C, S, S) in [-1, 1]
        z = torch.randn(self.batch_size, self.cfg.noise_dim, device=dev)  # (B, noise_dim)
        self.G.train()
        self.D.train()
        with autocast(dev):
            fake = self.train_module("G")(z)  # (B, C, S, S)
        metrics = self._step_discriminator(real, fake)
        metrics.update(self._step_generator(fake))
        return metrics

    def set_live(self, key, value) -> None:
        if key == "lr_g":
            opt = self.opt_g
        elif key == "lr_d":
            opt = self.opt_d
        else:
            raise KeyError(key)
        for group in opt.param_groups:
            group["lr"] = float(value)
        setattr(self.cfg, key, float(value))

    # -- evaluation and views (never touch the training RNG streams) --
    @torch.inference_mode()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Noise (N, noise_dim) -> images (N, C, S, S) in [0, 1]. Batch norm in eval mode uses
        its running statistics, so a sample does not depend on the others in its batch."""
        self.G.eval()
        with autocast(self.ctx.device):
            x = self.G(z).float()
        return (x + 1) / 2  # tanh's [-1, 1] -> [0, 1]

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.cfg.noise_dim, generator=generator).to(self.ctx.device)
        return self.generate(z)

    def evaluate(self) -> dict[str, float]:
        images = self.generate(self.fixed_z)  # (256, C, S, S)
        metrics = {"quality/near_duplicates": near_duplicate_rate(images)}
        if not self.digits:
            return metrics  # the digit classifier only judges digits
        if self.classifier is None:
            from engine.metrics.digit_classifier import get_digit_classifier

            self.classifier = get_digit_classifier(self.ctx.device, log=self.ctx.log)
        from engine.metrics.digit_classifier import score_digits

        scores = score_digits(self.classifier, as_digits(images))
        metrics["quality/recognisability"] = scores["recognisability"]
        metrics["quality/coverage"] = scores["coverage"]
        return metrics

    def interpolation(self) -> torch.Tensor:
        """N_WALKS rows of WALK_STEPS images, each row a slerp between two fixed noise
        vectors (the grid's samples 0->1, 2->3, ...): (N_WALKS * WALK_STEPS, C, S, S)."""
        t = torch.linspace(0, 1, WALK_STEPS, device=self.fixed_z.device)
        z = torch.cat([slerp(self.fixed_z[2 * i], self.fixed_z[2 * i + 1], t) for i in range(N_WALKS)])
        return self.generate(z)

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        return [
            Artifact("samples", "image", make_grid(self.generate(self.fixed_z[:64]), nrow=8),
                     "64 samples from fixed noise: the same z every time"),
            Artifact("interpolation", "image", make_grid(self.interpolation(), nrow=WALK_STEPS),
                     "each row: a walk through noise space between two of the samples"),
        ]


RECIPE = DCGANRecipe
