"""The VAE recipe: data, model, optimiser, one training step, and the views the lesson shows."""

from __future__ import annotations

import torch

from engine.configs.vae import VAEConfig
from engine.data.images import as_digits, load_image_source
from engine.data.sources import DIGIT_SOURCES
from engine.device import autocast, fast_path
from engine.imaging import make_grid
from engine.models.vae import VAE, VAEArgs, vae_loss
from engine.recipes.base import Artifact, Recipe, RunContext

VAL_SIZE = 2000
N_SAMPLES = 256  # fixed latent seeds scored by the digit classifier; the first 64 are shown


def canvas(dataset: str) -> tuple[int, int]:
    """(side, channels) of the images the VAE models: its convolutions are built for 28x28.
    The embedded faces keep their colour; everything else is grey (a folder of pictures
    too, as it always was, so earlier runs on folders still load)."""
    return (28, 3) if dataset == "faces" else (28, 1)


class VAERecipe(Recipe):
    checkpointed = ("model", "opt", "data_gen")  # saved by Recipe.state_dict
    ddp_modules = ("model",)  # trained by every process under torchrun (--nproc N)

    def __init__(self, ctx: RunContext, cfg: VAEConfig):
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size)
        dev = ctx.device
        size, channels = canvas(cfg.dataset)
        self.model = VAE(VAEArgs(latent_dim=cfg.latent_dim, width=cfg.width, channels=channels)).to(dev)
        self.digits = cfg.dataset in DIGIT_SOURCES  # the digit classifier judges the samples
        if fast_path(dev):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=fast_path(dev))
        # Fixed latent seeds, drawn once from their own generator: the same 64 samples are
        # decoded every time, so the learner sees them sharpen rather than change.
        g = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = torch.randn(N_SAMPLES, cfg.latent_dim, generator=g).to(dev)
        # The data sampler has its own generator so its state can be checkpointed.
        self.data_gen = torch.Generator().manual_seed(self.data_seed(2))
        self.classifier = None
        if ctx.need_data:
            data = load_image_source(cfg.dataset, cfg.data_path, size, channels, cfg.train_size, VAL_SIZE, cfg.seed,
                                     ctx.log, model="a VAE")
            # The whole dataset lives on the device as floats; batches are indexed there.
            self.x_train = (data.train.to(dev).float() / 255.0)
            self.x_val = (data.val.to(dev).float() / 255.0)
            self.y_val = data.val_labels
            self.train_size = len(self.x_train)

    # -- training --
    def train_step(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        x = self.x_train[idx]  # (B, 1, 28, 28) in [0, 1]
        self.model.train()
        with autocast(self.ctx.device):
            logits, mu, logvar = self.train_module("model")(x)
        losses = vae_loss(logits, x, mu, logvar, self.cfg.beta)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.opt.step()
        return {f"train/{k}": v.detach() for k, v in losses.items()}

    def set_live(self, key, value) -> None:
        if key != "lr":
            raise KeyError(key)
        for group in self.opt.param_groups:
            group["lr"] = float(value)
        self.cfg.lr = float(value)

    # -- evaluation and views (never touch the training RNG streams) --
    @torch.inference_mode()
    def _encode_val(self) -> tuple[torch.Tensor, dict[str, float]]:
        self.model.eval()
        mus, totals = [], {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        with torch.random.fork_rng(devices=[self.ctx.device] if self.ctx.device.type == "cuda" else []):
            torch.manual_seed(0)  # the same eps for every evaluation, so val curves are smooth
            for chunk in self.x_val.split(500):
                with autocast(self.ctx.device):
                    logits, mu, logvar = self.model(chunk)
                for k, v in vae_loss(logits, chunk, mu, logvar, self.cfg.beta).items():
                    totals[k] += v.item() * len(chunk)
                mus.append(mu.float())
        n = len(self.x_val)
        return torch.cat(mus), {f"val/{k}": v / n for k, v in totals.items()}

    @torch.inference_mode()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        with autocast(self.ctx.device):
            return self.model.decode(z).float()  # (N, 1, 28, 28)

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.cfg.latent_dim, generator=generator).to(self.ctx.device)
        return self.generate(z)

    def evaluate(self) -> dict[str, float]:
        _, metrics = self._encode_val()
        if not self.digits:
            return metrics  # the digit classifier only judges digits
        if self.classifier is None:
            from engine.metrics.digit_classifier import get_digit_classifier

            self.classifier = get_digit_classifier(self.ctx.device, log=self.ctx.log)
        from engine.metrics.digit_classifier import score_digits

        scores = score_digits(self.classifier, as_digits(self.generate(self.fixed_z)))
        metrics.update({f"quality/{k}": v for k, v in scores.items()})
        return metrics

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        out = [Artifact("samples", "image", make_grid(self.generate(self.fixed_z[:64]), nrow=8),
                        "64 samples decoded from fixed latent seeds")]
        if not self.ctx.need_data:
            return out
        # Reconstructions: 16 validation inputs, each beside its reconstruction (z = mu).
        x = self.x_val[:16]
        mu, _ = self.model.encoder(x)
        pairs = torch.stack([x, self.model.decode(mu).float()], dim=1).flatten(0, 1)  # (32, 1, 28, 28)
        out.append(Artifact("recon", "image", make_grid(pairs, nrow=8), "input | reconstruction, in pairs"))
        out.append(self._latent_map())
        out.append(self._latent_walk())
        return out

    def _latent_map(self) -> Artifact:
        mus, _ = self._encode_val()
        mus = mus[:1000].cpu()
        if mus.shape[1] == 1:
            xy, how = torch.cat([mus, torch.zeros_like(mus)], 1), "z[0] (1-D latent)"
        elif mus.shape[1] == 2:
            xy, how = mus, "z[0] against z[1]"
        else:
            # PCA: project the centred means onto their top two principal directions. Signs
            # are fixed so the picture does not flip between refreshes.
            c = mus - mus.mean(0)
            _, s, vt = torch.linalg.svd(c, full_matrices=False)
            axes = vt[:2]
            axes = axes * torch.sign(axes[torch.arange(2), axes.abs().argmax(1)]).unsqueeze(1)
            xy = c @ axes.T
            share = float((s[:2] ** 2).sum() / (s**2).sum())
            how = f"PCA of {mus.shape[1]}-D means ({share:.0%} of variance)"
        labels = self.y_val[: len(xy)].tolist() if self.y_val is not None else [0] * len(xy)
        data = {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "label": labels, "projection": how}
        return Artifact("latent_map", "points", data, "validation latent means, coloured by digit")

    @torch.inference_mode()
    def _latent_walk(self, steps: int = 10) -> Artifact:
        # Walk from the first validation example of one class to one of another class.
        if self.y_val is not None:
            a = int((self.y_val == 3).nonzero()[0]) if (self.y_val == 3).any() else 0
            b = int((self.y_val == 8).nonzero()[0]) if (self.y_val == 8).any() else 1
        else:
            a, b = 0, 1
        mu, _ = self.model.encoder(self.x_val[[a, b]])
        t = torch.linspace(0, 1, steps, device=mu.device).unsqueeze(1)  # (steps, 1)
        z = (1 - t) * mu[0] + t * mu[1]  # straight line between the two latent means
        return Artifact("latent_walk", "image", make_grid(self.generate(z), nrow=steps), "latent walk between two digits")


RECIPE = VAERecipe
