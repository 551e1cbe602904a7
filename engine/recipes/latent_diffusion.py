"""The latent diffusion recipe: two stages in one run.

The first ae_steps steps train a small autoencoder that turns a 28x28 image into a 7x7 grid
of latent_channels numbers per cell. At the last of them every training and held-out image
is encoded once, the latents are shifted and scaled to unit variance, and the autoencoder
is frozen; from then on the diffusion lesson's U-Net (its noise schedule, v-prediction,
EMA and DDIM sampler too) learns to draw latents, and every picture is a drawn latent put
through the decoder. With autoencoder_run the autoencoder of a finished VQ-VAE run (or of
an earlier latent diffusion run) is used instead, and every step trains the U-Net.

The views: held-out digits beside their latents and decodings, latents the U-Net drew
beside theirs, and the denoising timeline with every frame decoded.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.checkpoint import CheckpointError, load_checkpoint
from engine.configs.latent_diffusion import LatentDiffusionConfig
from engine.data.images import as_digits, load_image_source
from engine.data.sources import DIGIT_SOURCES
from engine.device import autocast, fast_path
from engine.imaging import make_grid
from engine.models.diffusion import NoiseSchedule
from engine.models.ema import EMA
from engine.models.latent_diffusion import SIDE, LatentAEArgs, LatentAutoencoder, LatentScaler, VQLatents, ae_loss
from engine.models.unet import UNet, UNetArgs
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine
from engine.recipes.vae import canvas
from engine.rundir import RunDir, RunDirError
from engine.schema import ConfigError, validate

VAL_SIZE = 2000  # held-out images (the VAE lesson's split, so its cached digits serve both)
VAL_TRIPLES = 256  # held-out (z_0, t, eps) triples for val/loss
N_SAMPLES = 64  # fixed-seed samples in the grid and the scores
N_RECON = 12  # held-out images in the Latents tab, each as image | latent | decoding
N_DRAWN = 12  # U-Net samples in the Latents tab, each as latent | decoding
TIMELINE_FRAMES = 20  # frames of the denoising timeline (fewer when the sampler takes fewer steps)
TIMELINE_IMAGES = 16  # images in each timeline frame (a 4x4 grid)
TIMESTEPS = 1000  # T, with the diffusion lesson's linear schedule
UNET_WARMUP = 50  # steps of the U-Net's learning-rate warmup
GRAD_CLIP = 1.0  # as in the diffusion lesson: a rare huge gradient must not undo training
X0_CLIP = 4.0  # unit-variance latents stay well inside; see NoiseSchedule.predict_x0
TILE = 28  # a latent is drawn in a 28-pixel tile, like the images beside it
LATENT_RANGE = 2.5  # the colour scale of a drawn latent: -2.5 (blue) .. 0 (black) .. +2.5 (orange)


def paint_latents(u: torch.Tensor) -> torch.Tensor:
    """Scaled latents (N, C, 7, 7), about unit variance -> pictures (N, 3, 28, 28) in [0, 1].

    Each channel is a small square, the squares in a grid (2x2 for C = 4, each drawn at
    2x; up to 16 channels at 1x); positive values orange, negative blue, zero black."""
    n, c = u.shape[:2]
    c = min(c, 16)
    cols = max(1, int(np.ceil(np.sqrt(c))))
    zoom = max(1, TILE // (cols * SIDE))
    cell = SIDE * zoom
    v = (u[:, :c].float().cpu() / LATENT_RANGE).clamp(-1, 1)
    v = v.repeat_interleave(zoom, 2).repeat_interleave(zoom, 3)  # (N, c, cell, cell)
    pos, neg = v.clamp(min=0), (-v).clamp(min=0)
    rgb = torch.stack([pos, 0.55 * pos + 0.45 * neg, neg], 1)  # (N, 3, c, cell, cell): orange up, blue down
    out = torch.zeros(n, 3, TILE, TILE)
    off = (TILE - cols * cell) // 2  # centred when the channels do not fill the tile
    for i in range(c):
        r, k = divmod(i, cols)
        out[:, :, off + r * cell:off + (r + 1) * cell, off + k * cell:off + (k + 1) * cell] = rgb[:, :, i]
    return out


def load_autoencoder(path: str, channels: int, device: torch.device) -> tuple[nn.Module, str]:
    """The frozen autoencoder of a finished run at ``path``, and a line that describes it.

    A vqvae run gives its encoder and decoder (its codes snapped back on decoding); a
    latent_diffusion run that trained its own autoencoder gives that one. Everything read
    is untrusted: a missing folder, a damaged config or checkpoint, another recipe, a run
    whose autoencoder has not finished, or a latent that is not a grid is refused with a
    ConfigError that says so."""
    rd = RunDir(path)
    try:
        config = rd.read_config()
    except RunDirError as e:
        raise ConfigError(f"autoencoder_run: {e}") from None
    kind = config["recipe"]
    if kind == "vae":
        raise ConfigError(f"autoencoder_run: {path} is a vae run, whose latent is one vector of latent_dim numbers; "
                          f"the U-Net needs a grid (channels x 7 x 7). Give a vqvae run, or leave autoencoder_run "
                          f"empty and this lesson trains its own")
    if kind not in ("vqvae", "latent_diffusion"):
        raise ConfigError(f"autoencoder_run: {path} is a {kind} run; it needs a vqvae or latent_diffusion run")
    from engine.registry import get_config_class

    try:
        params = validate(get_config_class(kind), config["params"])
        ckpt = load_checkpoint(rd.checkpoint_path, map_location=device)
    except (ConfigError, CheckpointError) as e:
        raise ConfigError(f"autoencoder_run: {path}: {e}") from None
    state = ckpt["state"]
    if ckpt.get("recipe") != kind or not isinstance(state, dict):
        raise ConfigError(f"autoencoder_run: {path}: its checkpoint is not a {kind} checkpoint")
    if kind == "latent_diffusion" and params.autoencoder_run:
        raise ConfigError(f"autoencoder_run: {path} borrowed its autoencoder from {params.autoencoder_run}: "
                          f"give that run instead")
    done = state.get("steps_done")
    if not isinstance(done, int) or done < params.ae_steps:
        raise ConfigError(f"autoencoder_run: {path} has not finished training its autoencoder (step {done} of "
                          f"{params.ae_steps}): let it run past step {params.ae_steps:,}")
    if canvas(params.dataset)[1] != channels:
        raise ConfigError(f"autoencoder_run: {path} was trained on {params.dataset} ({canvas(params.dataset)[1]} "
                          f"channels); this run's dataset has {channels}")
    if kind == "vqvae":
        from engine.models.vqvae import VQVAE, VQVAEArgs

        model = VQLatents(VQVAE(VQVAEArgs(codes=params.codes, code_dim=params.code_dim, width=params.width,
                                          channels=channels)))
        part, what = model.vqvae, f"the VQ-VAE of {rd.name} ({params.code_dim}x{SIDE}x{SIDE} latents, " \
                                  f"snapped to its {params.codes} codes to decode)"
        weights = state.get("model")
    else:
        model = part = LatentAutoencoder(LatentAEArgs(params.latent_channels, params.ae_width, channels))
        what = f"the autoencoder of {rd.name} ({params.latent_channels}x{SIDE}x{SIDE} latents)"
        weights = state.get("ae")
    try:
        part.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise ConfigError(f"autoencoder_run: {path}: its weights do not fit its own config ({e})") from None
    model = model.to(device).eval().requires_grad_(False)
    with torch.no_grad():
        shape = tuple(model.encode(torch.zeros(1, channels, 28, 28, device=device)).shape[1:])
    if len(shape) != 3 or shape[1:] != (SIDE, SIDE) or shape[0] > 256:
        raise ConfigError(f"autoencoder_run: {path}: its latent is {shape}, not a grid of channels x {SIDE} x {SIDE}")
    return model, what


class LatentDiffusionRecipe(Recipe):
    checkpointed = ("ae", "ae_opt", "scaler", "unet", "ema", "opt", "data_gen")  # plus the step count

    def __init__(self, ctx: RunContext, cfg: LatentDiffusionConfig):
        # One CPU thread: on a 7x7 grid these convolutions are too small to share out, and
        # two threads lose badly when other programs keep the cores busy.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, cpu_threads=1)
        dev = ctx.device
        size, channels = canvas(cfg.dataset)
        if cfg.autoencoder_run:
            self.ae, what = load_autoencoder(cfg.autoencoder_run, channels, dev)
            self.ae_steps = 0
            ctx.log(f"autoencoder_run: using {what}, frozen; phase 1 is skipped and every step trains the U-Net")
        else:
            self.ae = LatentAutoencoder(LatentAEArgs(cfg.latent_channels, cfg.ae_width, channels)).to(dev)
            self.ae_steps = cfg.ae_steps
        self.latent_shape = tuple(self.ae.latent_shape)  # (C, 7, 7)
        self.ae_opt = torch.optim.Adam(self.ae.parameters(), lr=cfg.ae_lr, fused=fast_path(dev))
        self.scaler = LatentScaler(self.latent_shape[0]).to(dev)
        # The diffusion lesson's U-Net, at 7x7: two levels (7 -> 4), attention at 4x4.
        self.unet = UNet(UNetArgs(channels=self.latent_shape[0], base=cfg.base, mults=(1, 2))).to(dev)
        self.ema = EMA(self.unet, cfg.ema_decay)
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=cfg.lr, fused=fast_path(dev))
        self.schedule = NoiseSchedule("linear", TIMESTEPS, device=dev)
        # Fixed noise from its own generator: the grid, the timeline and the scores start
        # from the same z_T every time, so they change only as the model does.
        g = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_zT = torch.randn(N_SAMPLES, *self.latent_shape, generator=g).to(dev)
        gv = torch.Generator().manual_seed(cfg.seed + 3)
        self.val_t = torch.linspace(1, TIMESTEPS, VAL_TRIPLES).round().long().to(dev)
        self.val_noise = torch.randn(VAL_TRIPLES, *self.latent_shape, generator=gv).to(dev)
        # Batches draw from this generator, so a checkpoint holds its state and a resumed
        # run draws what it would have drawn.
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.steps_done = 0
        self.ae_updates = 0  # autoencoder steps taken by this process: a cache key of the views
        self.latents = self.val_latents = None  # scaled latents of every image, computed once at the switch
        self.sampler_steps = cfg.sampler_steps
        self.digits = cfg.dataset in DIGIT_SOURCES  # the digit classifier judges the samples
        self._cache: tuple | None = None  # (key, final latents, timeline frames)
        self._recon: tuple | None = None  # (key, val/recon)
        if ctx.need_data:
            data = load_image_source(cfg.dataset, cfg.data_path, size, channels, cfg.train_size, VAL_SIZE, cfg.seed,
                                     ctx.log, model="latent diffusion")
            self.digits = data.digits
            # The whole data set lives on the device as floats in [0, 1]; batches are indexed there.
            self.x_train = data.train.to(dev).float() / 255.0
            self.x_val = data.val.to(dev).float() / 255.0
            self.train_size = len(self.x_train)
        n_ae = sum(p.numel() for p in self.ae.parameters())
        n_unet = sum(p.numel() for p in self.unet.parameters())
        c, h, w = self.latent_shape
        first = (f"the first {self.ae_steps:,} steps train the autoencoder, the rest the U-Net" if self.ae_steps
                 else "every step trains the U-Net")
        ctx.log(f"autoencoder: {n_ae / 1e3:.0f}k parameters, images of {channels * size * size} numbers to latents of "
                f"{c}x{h}x{w} = {c * h * w}; U-Net: {n_unet / 1e3:.0f}k parameters; {first}")

    @property
    def phase(self) -> str:
        return "autoencoder" if self.steps_done < self.ae_steps else "diffusion"

    # -- training --
    def train_step(self) -> dict[str, torch.Tensor]:
        if self.phase == "autoencoder":
            metrics = self.autoencoder_step()
            self.steps_done += 1
            if self.steps_done == self.ae_steps:
                self.encode_dataset()  # the U-Net's training data, once
            return metrics
        if self.latents is None:  # the first U-Net step of a borrowed autoencoder, or a resumed run
            self.encode_dataset()
        metrics = self.diffusion_step()
        self.steps_done += 1
        return metrics

    def batch_index(self, n: int) -> torch.Tensor:
        return torch.randint(0, n, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)

    def autoencoder_step(self) -> dict[str, torch.Tensor]:
        x = self.x_train[self.batch_index(self.train_size)]  # (B, C, 28, 28) in [0, 1]
        self.ae.train()
        with autocast(self.ctx.device):
            logits, mu, logvar = self.ae(x)
        losses = ae_loss(logits, x, mu, logvar, self.cfg.kl_weight)
        self.ae_opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.ae_opt.step()
        self.ae_updates += 1
        return {"train/loss_ae": losses["loss"].detach(), "train/recon": losses["recon"].detach(),
                "train/kl": losses["kl"].detach()}

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> raw latents (N, C, 7, 7), in chunks."""
        self.ae.eval()
        return torch.cat([self.ae.encode(chunk).float() for chunk in x.split(1000)])

    def encode_dataset(self) -> None:
        """Every image's latent, computed once with the frozen autoencoder and scaled to unit
        variance (the scaler is fitted the first time, kept in checkpoints after)."""
        self.ae.eval().requires_grad_(False)
        z = self.encode(self.x_train)
        if not bool(self.scaler.fitted):
            self.scaler.fit(z)
        self.latents = self.scaler(z)
        self.val_latents = self.scaler(self.encode(self.x_val))
        c, h, w = self.latent_shape
        self.ctx.log(f"step {self.steps_done:,}: the autoencoder is frozen; {len(z):,} training images are now "
                     f"latents of {c}x{h}x{w}, shifted and multiplied by {self.scaler.scale.item():.3g} to unit "
                     f"variance, and the U-Net trains on them")

    def diffusion_loss(self, model: nn.Module, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The diffusion lesson's objective on latents: z_t from the closed form, and the
        U-Net's output regressed on v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) z_0."""
        z_t = self.schedule.q_sample(z0, t, noise)
        with autocast(self.ctx.device):
            pred = model(z_t, t)
        return F.mse_loss(pred.float(), self.schedule.v_target(z0, t, noise))

    def diffusion_step(self) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        lr = warmup_cosine(self.steps_done - self.ae_steps, cfg.lr, UNET_WARMUP, cfg.steps - self.ae_steps)
        for group in self.opt.param_groups:
            group["lr"] = lr
        z0 = self.latents[self.batch_index(len(self.latents))]  # (B, C, 7, 7), unit variance
        t = self.schedule.sample_t(len(z0), self.ctx.device)
        noise = torch.randn_like(z0)
        self.unet.train()
        loss = self.diffusion_loss(self.unet, z0, t, noise)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.unet.parameters(), GRAD_CLIP)
        self.opt.step()
        self.ema.update(self.unet)
        return {"train/loss": loss.detach()}

    def set_live(self, key, value) -> None:
        if key == "ae_lr":
            for group in self.ae_opt.param_groups:
                group["lr"] = float(value)
        elif key == "lr":
            self.cfg.lr = float(value)  # the schedule scales from it at the next step
        elif key == "sampler_steps":
            self.sampler_steps = int(value)
        else:
            raise KeyError(key)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])
        if self.steps_done >= self.ae_steps and self.ctx.need_data:
            self.encode_dataset()  # recomputed, not stored: the frozen autoencoder gives the same latents

    # -- sampling (always with the EMA weights) --
    def eps(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The averaged U-Net's noise prediction (from its v), the samplers' eps_fn."""
        with autocast(self.ctx.device):
            v = self.ema.model(z, t).float()
        return self.schedule.v_to_eps(v, z, t)

    @torch.inference_mode()
    def ddim(self, z_T: torch.Tensor, n_steps: int, on_step=None) -> torch.Tensor:
        return self.schedule.ddim_sample(self.eps, z_T, n_steps, on_step=on_step, x0_clip=X0_CLIP)

    @torch.inference_mode()
    def decode(self, u: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images (N, C, 28, 28) in [0, 1]: undo the scaling, then decode."""
        self.ae.eval()
        return self.ae.decode(self.scaler.inverse(u.float())).float().clamp(0, 1)

    def fixed_sample(self) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        """The DDIM sample from the fixed noise, and the timeline frames [(t, z_t)] on the way;
        kept until the weights or sampler_steps change."""
        n_steps = self.sampler_steps
        key = (self.ema.n, n_steps)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        k = min(TIMELINE_FRAMES, n_steps + 1)
        keep = {round(i * n_steps / (k - 1)) for i in range(k)}  # k evenly spaced states of n + 1
        frames: list[tuple[int, torch.Tensor]] = []

        def record(i: int, t: int, z: torch.Tensor) -> None:
            if i in keep:
                frames.append((t, z[:TIMELINE_IMAGES].float().clone()))

        z = self.ddim(self.fixed_zT, n_steps, on_step=record)
        self._cache = (key, z, frames)
        return z, frames

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z_T = torch.randn(n, *self.latent_shape, generator=generator).to(self.ctx.device)
        return self.decode(self.ddim(z_T, self.sampler_steps))

    # -- evaluation (never touches the training random streams) --
    @torch.inference_mode()
    def val_recon(self) -> float:
        """Squared error per held-out image (summed over its pixels) of decode(encode(x)),
        kept while the autoencoder does not change (the whole U-Net phase)."""
        if self._recon is None or self._recon[0] != self.ae_updates:
            self.ae.eval()
            err = sum((self.ae.decode(self.ae.encode(c)).float().clamp(0, 1) - c).square().sum().item()
                      for c in self.x_val.split(1000))
            self._recon = (self.ae_updates, err / len(self.x_val))
        return self._recon[1]

    @torch.inference_mode()
    def val_loss(self) -> float:
        z0 = self.val_latents[:VAL_TRIPLES]
        n = len(z0)
        return self.diffusion_loss(self.ema.model, z0, self.val_t[:n], self.val_noise[:n]).item()

    def evaluate(self) -> dict[str, float]:
        metrics = {}
        if self.ctx.need_data:
            metrics["val/recon"] = self.val_recon()
            if self.val_latents is not None:
                metrics["val/loss"] = self.val_loss()
        if self.digits and self.phase == "diffusion" and bool(self.scaler.fitted):
            from engine.metrics.digit_classifier import score_digits

            z, _ = self.fixed_sample()
            scores = score_digits(self.digit_judge(), as_digits(self.decode(z)))
            metrics["quality/recognisability"] = scores["recognisability"]
            metrics["quality/coverage"] = scores["coverage"]
        return metrics

    # -- views --
    def as_rgb(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().cpu().expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.float().cpu()

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        out = []
        if self.phase == "autoencoder":
            if self.ctx.need_data:
                x = self.x_val[:N_SAMPLES]
                out.append(Artifact("samples", "image", make_grid(self.ae.eval().decode(self.ae.encode(x)), nrow=8),
                                    f"the autoencoder's reconstructions of {len(x)} held-out images; the U-Net "
                                    f"trains from step {self.ae_steps + 1:,}"))
                out.append(self.recon_triples(self.ae.encode(x[:N_RECON]).float(), scaled=False))
            return out
        z, frames = self.fixed_sample()
        out.append(Artifact("samples", "image", make_grid(self.decode(z), nrow=8),
                            f"{len(z)} latents drawn from fixed noise (EMA weights, DDIM {self.sampler_steps} steps), "
                            f"decoded"))
        pairs = torch.stack([paint_latents(z[:N_DRAWN]), self.as_rgb(self.decode(z[:N_DRAWN]))], 1).flatten(0, 1)
        out.append(Artifact("drawn", "image", make_grid(pairs, nrow=6),
                            "latents the U-Net drew | what the decoder makes of them"))
        if self.val_latents is not None:
            out.append(self.recon_triples(self.val_latents[:N_RECON], scaled=True))
        out.extend(self.timeline(frames))
        return out

    def recon_triples(self, u: torch.Tensor, scaled: bool) -> Artifact:
        """Held-out images as triples: the image, its latent, its decoding. Before the
        scaler is fitted the latents are shown centred and scaled by this batch's own
        spread (only so they can be seen)."""
        x = self.x_val[:len(u)]
        if scaled:
            shown, decoded = u, self.decode(u)
        else:
            shown = (u - u.mean(dim=(0, 2, 3), keepdim=True)) / u.std().clamp(min=1e-6)
            decoded = self.ae.decode(u).float().clamp(0, 1)
        triples = torch.stack([self.as_rgb(x), paint_latents(shown), self.as_rgb(decoded)], 1).flatten(0, 1)
        c, h, w = self.latent_shape
        return Artifact("recon", "image", make_grid(triples, nrow=9),
                        f"held-out image | its latent, {c} channels of {h}x{w} (orange +, blue -) | decoded")

    def timeline(self, frames: list[tuple[int, torch.Tensor]]) -> list[Artifact]:
        """One strip of equal frames, noise (left) to sample (right), every frame's latents
        decoded. (A noisy latent decodes to a blur, not to a noisy digit: the decoder only
        knows clean latents.)"""
        pictures = [make_grid(self.decode(z), nrow=4) for _, z in frames]
        label = f"DDIM {self.sampler_steps} steps, seed {self.cfg.seed}"
        meta = {"frames": len(frames), "t": [t for t, _ in frames], "label": label}
        return [Artifact("timeline", "image", np.concatenate(pictures, axis=1),
                         label + ": z_t from t = T to 0, each decoded"),
                Artifact("timeline-meta", "data", meta, label)]


RECIPE = LatentDiffusionRecipe
