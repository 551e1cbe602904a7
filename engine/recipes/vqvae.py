"""The VQ-VAE recipe: two stages in one run.

The first ae_steps steps train the autoencoder and its codebook. At the last of them every
training and held-out image is encoded once into its 7x7 grid of code indices; from then
on the autoencoder is frozen and the GPT prior trains on those grids, as next-code
prediction, for the remaining steps. The views: each held-out digit beside its code map and reconstruction, how
much each code is used, and grids drawn from the prior with what they decode to.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import torch

from engine.configs.vqvae import VQVAEConfig
from engine.data.images import as_digits, load_image_source
from engine.data.sources import DIGIT_SOURCES
from engine.device import autocast, fast_path
from engine.imaging import make_grid
from engine.models.gpt import GPT, GPTArgs
from engine.models.vqvae import GRID, VQVAE, VQVAEArgs, prior_batch, sample_codes, vq_loss
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine
from engine.recipes.gpt import adamw
from engine.recipes.vae import canvas

VAL_SIZE = 2000  # held-out images (the VAE lesson's split, so its cached digits serve both)
PRIOR_VAL = 500  # held-out grids for the prior's val/loss_prior
N_SCORED = 100  # prior samples drawn from a fixed seed and scored at every refresh (coverage: 2 of each digit)
N_SHOWN = 64  # ... of which the grids show this many
N_RECON = 12  # held-out images in the Codes tab, each as image | codes | reconstruction
PRIOR_WARMUP = 50  # steps of the prior's learning-rate warmup
CELL = 28 // GRID  # pixels of a code map per grid cell


def code_colours(k: int) -> np.ndarray:
    """(k, 3) uint8: one colour per code. Hues step by the golden ratio, so codes with
    nearby numbers get far-apart hues; brightness alternates so more codes stay apart."""
    hues = (np.arange(k) * 0.618034) % 1.0
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(h, 0.7, 1.0 if i % 2 else 0.7)]
                     for i, h in enumerate(hues)], dtype=np.uint8).reshape(k, 3)


def usage(idx: torch.Tensor, k: int) -> dict[str, float]:
    """How the codes in ``idx`` spread over the codebook: the share of the K codes used at
    all, and the perplexity exp(H), H = -sum_k p_k log p_k, with p_k the share of cells
    that hold code k. Perplexity is the number of equally used codes that would have the
    same entropy: K when every code is used equally, 1 when one code does everything."""
    counts = torch.bincount(idx.flatten().long(), minlength=k).double()
    p = counts[counts > 0] / counts.sum()
    return {"codes_in_use": (counts > 0).double().mean().item(), "perplexity": math.exp(-(p * p.log()).sum().item())}


class VQVAERecipe(Recipe):
    checkpointed = ("model", "opt", "prior", "prior_opt", "data_gen")  # plus the step count and the codes

    def __init__(self, ctx: RunContext, cfg: VQVAEConfig):
        # One CPU thread: these small convolutions and the small GPT gain little from a second,
        # and lose much when other programs keep the cores busy (the threads wait on each other).
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, cpu_threads=1)
        dev = ctx.device
        size, channels = canvas(cfg.dataset)
        self.model = VQVAE(VQVAEArgs(codes=cfg.codes, code_dim=cfg.code_dim, width=cfg.width,
                                     channels=channels)).to(dev)
        if cfg.codebook_init == "random":
            self.model.quantiser.ready.fill_(True)  # keep the random normal vectors it was built with
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=fast_path(dev))
        # The prior: the GPT lesson's model, reading a grid as 49 tokens after a start
        # token (id K, the one id no code has).
        self.prior = GPT(GPTArgs(vocab_size=cfg.codes + 1, context=GRID * GRID, width=cfg.prior_width,
                                 layers=cfg.prior_layers, heads=cfg.prior_heads)).to(dev)
        self.prior_opt = adamw(self.prior, cfg.prior_lr, 0.1, dev)
        # Batches, the codebook's seeding and its restarts draw from this generator, so a
        # checkpoint holds its state and a resumed run draws what it would have drawn.
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.steps_done = 0
        self.ae_updates = self.prior_updates = 0  # steps taken by this process: the views' cache keys
        self.temperature = cfg.temperature
        self.codes = self.val_codes = None  # every image's grid of codes (int16), computed once at the switch
        self.palette = torch.from_numpy(code_colours(cfg.codes))
        self.digits = cfg.dataset in DIGIT_SOURCES  # the digit classifier judges the samples
        self._fixed: tuple | None = None  # (key, the fixed-seed prior grids)
        self._ae_scores: tuple | None = None  # (key, held-out codes, their scores)
        if ctx.need_data:
            data = load_image_source(cfg.dataset, cfg.data_path, size, channels, cfg.train_size, VAL_SIZE, cfg.seed,
                                     ctx.log, model="a VQ-VAE")
            self.digits = data.digits
            # The whole data set lives on the device as floats; batches are indexed there.
            self.x_train = data.train.to(dev).float() / 255.0
            self.x_val = data.val.to(dev).float() / 255.0
            self.train_size = len(self.x_train)
        n_ae = sum(p.numel() for p in self.model.parameters())
        n_prior = sum(p.numel() for p in self.prior.parameters())
        ctx.log(f"autoencoder: {n_ae / 1e3:.0f}k parameters, {cfg.codes} codes of {cfg.code_dim} numbers; prior GPT: "
                f"{n_prior / 1e3:.0f}k parameters; the first {cfg.ae_steps:,} steps train the autoencoder, the rest "
                f"the prior")

    @property
    def phase(self) -> str:
        return "autoencoder" if self.steps_done < self.cfg.ae_steps else "prior"

    # -- training --
    def train_step(self) -> dict[str, torch.Tensor]:
        if self.phase == "autoencoder":
            metrics = self.autoencoder_step()
            self.steps_done += 1
            if self.steps_done == self.cfg.ae_steps:
                self.encode_dataset()  # the prior's training data, once
            return metrics
        if self.codes is None:  # (a checkpoint saved before the codes were kept)
            self.encode_dataset()
        metrics = self.prior_step()
        self.steps_done += 1
        return metrics

    def autoencoder_step(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        x = self.x_train[idx]  # (B, C, 28, 28) in [0, 1]
        self.model.train()
        q = self.model.quantiser
        with autocast(self.ctx.device):  # (bf16 on GPUs; the nearest-code search stays in float32)
            z_e = self.model.encoder(x).float()  # (B, D, 7, 7)
        if not q.ready:
            q.seed(z_e, self.data_gen)  # the first batch's encoder vectors become the codebook
        z_st, z_q, codes = q(z_e)
        with autocast(self.ctx.device):
            out = self.model.decoder(z_st)  # (B, C, 28, 28)
        losses = vq_loss(out, x, z_e, z_q, self.cfg.beta)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.opt.step()
        q.restart_idle(z_e, codes, self.cfg.restart_after, self.data_gen)
        self.ae_updates += 1
        return {"train/loss_ae": losses["loss"].detach(), "train/recon": losses["recon"].detach(),
                "train/codebook": losses["codebook"].detach()}

    @torch.inference_mode()
    def encode_dataset(self) -> None:
        """Every image's grid of codes, computed once with the trained autoencoder."""
        self.model.eval()
        self.codes = torch.cat([self.model.encode(c) for c in self.x_train.split(1000)]).to(torch.int16)
        self.val_codes = torch.cat([self.model.encode(c) for c in self.x_val.split(1000)]).to(torch.int16)
        self.ctx.log(f"step {self.steps_done:,}: the autoencoder is frozen; {len(self.codes):,} training images are "
                     f"now grids of {GRID}x{GRID} codes, and the prior trains on them")

    def prior_step(self) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        lr = warmup_cosine(self.steps_done - cfg.ae_steps, cfg.prior_lr, PRIOR_WARMUP, cfg.steps - cfg.ae_steps)
        for group in self.prior_opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, len(self.codes), (self.batch_size,), generator=self.data_gen).to(self.codes.device)
        inputs, targets = prior_batch(self.codes[idx].long(), cfg.codes)  # (B, 49) each
        self.prior.train()
        with autocast(self.ctx.device):
            _, loss, _ = self.prior(inputs, targets)  # mean cross-entropy per code, in nats
        self.prior_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.prior.parameters(), 1.0)
        self.prior_opt.step()
        self.prior_updates += 1
        return {"train/loss_prior": loss.detach()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            for group in self.opt.param_groups:
                group["lr"] = float(value)
        elif key == "prior_lr":
            self.cfg.prior_lr = float(value)  # the schedule scales from it at the next step
        elif key == "temperature":
            self.temperature = float(value)
        else:
            raise KeyError(key)

    def state_dict(self) -> dict:
        none = torch.zeros(0, GRID, GRID, dtype=torch.int16)
        return {**super().state_dict(), "steps_done": self.steps_done,
                "codes": none if self.codes is None else self.codes.cpu(),
                "val_codes": none if self.val_codes is None else self.val_codes.cpu()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])
        if len(state["codes"]):
            self.codes = state["codes"].to(self.ctx.device)
            self.val_codes = state["val_codes"].to(self.ctx.device)

    # -- evaluation (never touches the training random streams) --
    @torch.inference_mode()
    def autoencoder_scores(self) -> tuple[torch.Tensor, dict[str, float]]:
        """The held-out images' codes, and val/recon (squared error per image), val/codes_in_use
        and val/perplexity. Kept while the autoencoder does not change (the whole prior phase)."""
        if self._ae_scores is None or self._ae_scores[0] != self.ae_updates:
            self.model.eval()
            err, codes = 0.0, []
            for chunk in self.x_val.split(1000):
                idx = self.model.encode(chunk)
                err += (self.model.decode(idx) - chunk).square().sum().item()
                codes.append(idx)
            codes = torch.cat(codes)
            scores = {"val/recon": err / len(self.x_val),
                      **{f"val/{k}": v for k, v in usage(codes, self.cfg.codes).items()}}
            self._ae_scores = (self.ae_updates, codes, scores)
        return self._ae_scores[1], self._ae_scores[2]

    @torch.inference_mode()
    def prior_nll(self) -> float:
        """Mean negative log-likelihood of a held-out grid's codes under the prior, per code, in nats."""
        self.prior.eval()
        inputs, targets = prior_batch(self.val_codes[:PRIOR_VAL].long(), self.cfg.codes)
        return self.prior(inputs, targets)[1].item()

    def fixed_grids(self) -> torch.Tensor:
        """N_SCORED grids drawn from the prior with a fixed seed at the current temperature.
        Kept until the prior or the temperature changes: during the autoencoder phase the
        prior is untrained and its grids stay the same (only their decoding sharpens)."""
        key = (self.prior_updates, self.temperature)
        if self._fixed is None or self._fixed[0] != key:
            g = torch.Generator().manual_seed(self.cfg.seed + 1)
            self.prior.eval()
            self._fixed = (key, sample_codes(self.prior, N_SCORED, self.cfg.codes, g, self.temperature))
        return self._fixed[1]

    @torch.inference_mode()
    def decode(self, grids: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return self.model.decode(grids.long())  # (N, C, 28, 28) in [0, 1]

    def evaluate(self) -> dict[str, float]:
        metrics = {}
        if self.ctx.need_data:
            metrics.update(self.autoencoder_scores()[1])
            if self.val_codes is not None:
                metrics["val/loss_prior"] = self.prior_nll()
        if self.digits:
            from engine.metrics.digit_classifier import score_digits

            scores = score_digits(self.digit_judge(), as_digits(self.decode(self.fixed_grids())))
            metrics["quality/recognisability"] = scores["recognisability"]
            metrics["quality/coverage"] = scores["coverage"]
        return metrics

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.decode(sample_codes(self.prior, n, self.cfg.codes, generator, self.temperature))

    # -- views --
    def paint(self, grids: torch.Tensor) -> torch.Tensor:
        """Grids of code indices (N, 7, 7) -> code maps (N, 3, 28, 28) in [0, 1]: every cell
        a CELL x CELL square in its code's colour."""
        rgb = self.palette[grids.long().cpu()].permute(0, 3, 1, 2).float() / 255  # (N, 3, 7, 7)
        return rgb.repeat_interleave(CELL, 2).repeat_interleave(CELL, 3)

    def usage_bars(self, codes: torch.Tensor, height: int = 12) -> np.ndarray:
        """The histogram of code use: one bar per code, in code order and in the code's
        colour, as tall as its share of the cells (the largest reaches the top). A code no
        held-out image uses gets a one-pixel grey stub, so dead codes can be counted. Bars
        are whole pixels (at least 64 pixels in all) and 12 tall: a half-block terminal
        shows them pixel for pixel in 6 rows, and larger screens scale them up crisply."""
        k = self.cfg.codes
        counts = torch.bincount(codes.flatten().long().cpu(), minlength=k).numpy()
        bar = max(1, 64 // k)  # pixels per bar
        image = np.full((height, k * bar, 3), 24, dtype=np.uint8)
        tops = np.round(counts / max(1, counts.max()) * height).astype(int)
        for i, (top, colour) in enumerate(zip(tops, code_colours(k))):
            cols = slice(i * bar, (i + 1) * bar)
            if counts[i] == 0:
                image[height - 1:, cols] = 90  # unused: a grey stub
            else:
                image[height - max(1, top):, cols] = colour
        return image

    def as_rgb(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        grids = self.fixed_grids()[:N_SHOWN]
        if self.phase == "autoencoder":
            what = (f"{N_SHOWN} grids drawn from the prior, still untrained (it trains from step "
                    f"{self.cfg.ae_steps + 1:,}), decoded")
        else:
            what = f"{N_SHOWN} grids drawn from the prior (fixed seed, temperature {self.temperature:g}), decoded"
        out = [Artifact("samples", "image", make_grid(self.decode(grids), nrow=8), what),
               Artifact("prior_codes", "image", make_grid(self.paint(grids), nrow=8),
                        "the same grids of codes, a colour per code")]
        if not self.ctx.need_data:
            return out
        codes, scores = self.autoencoder_scores()
        x = self.x_val[:N_RECON]
        triples = torch.stack([self.as_rgb(x).cpu(), self.paint(codes[:N_RECON]),
                               self.as_rgb(self.decode(codes[:N_RECON])).cpu()], 1).flatten(0, 1)  # (3n, 3, 28, 28)
        out.append(Artifact("recon", "image", make_grid(triples, nrow=9),
                            "held-out image | its 7x7 codes (a colour per code) | the decoder's picture of them"))
        used = round(scores["val/codes_in_use"] * self.cfg.codes)
        out.append(Artifact("usage", "image", self.usage_bars(codes),
                            f"codes in use: {used} of {self.cfg.codes}, perplexity {scores['val/perplexity']:.1f} "
                            f"(grey stubs: unused)"))
        return out


RECIPE = VQVAERecipe
