"""The denoising diffusion recipe: a U-Net learns to predict the noise that the forward
process added to a digit (or a 2-D point, or the learner's own picture), and sampling runs
the process backwards from pure noise.

Training is one line of maths: pick an image x_0, a timestep t and noise eps, make x_t with
the closed form, and regress the network's eps(x_t, t) on eps (mean squared error). The
views show the forward process (the schedule, real digits being noised), the reverse one
(a timeline from noise to digits), and the two samplers side by side (on request).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.configs.diffusion import SAMPLER_STEPS, DiffusionConfig
from engine.data.images import as_digits, load_image_source
from engine.data.sources import DIGIT_SOURCES
from engine.device import autocast, fast_path
from engine.imaging import draw_points, make_grid
from engine.models.diffusion import NoiseSchedule
from engine.models.ema import EMA
from engine.models.unet import PointDenoiser, UNet, UNetArgs
from engine.recipes.base import Artifact, Recipe, RunContext

VAL_SIZE = 256  # held-out (x_0, t, eps) triples for val/loss
N_SAMPLES = 64  # fixed-seed samples in the grid and the scores
TIMELINE_FRAMES = 20  # frames of the denoising timeline (fewer when the sampler takes fewer steps)
TIMELINE_IMAGES = 16  # images in each timeline frame (a 4x4 grid)
FORWARD_ROWS, FORWARD_COLS = 4, 8  # real images noised at 8 evenly spaced t
COMPARE_IMAGES = 16  # images per sampler in the comparison
GRAD_CLIP = 1.0  # a rare huge gradient (a t near T with unlucky noise) must not undo training
TOY_POINTS = 1000  # points drawn in each toy view
TOY_PX, TOY_EXTENT = 96, 3.0  # a toy view: TOY_PX pixels across [-EXTENT, EXTENT] (unit-scale data)
TOY_REAL, TOY_FAKE, TOY_BG = (70, 90, 110), (255, 210, 90), (12, 14, 20)  # real points dim, generated bright
TOY_X0_CLIP = 4.0  # unit-scale points stay well inside; see NoiseSchedule.predict_x0
PAD = 0.15  # grid padding grey (make_grid's default)


def canvas(cfg: DiffusionConfig) -> tuple[int, int]:
    """(side, channels) of the images the U-Net models: 28x28 grey for digit-like sources,
    the faces at their own 32x32 in colour, a folder at image_size in colour."""
    if cfg.dataset in ("digits", "mnist", "fashion-mnist"):
        return 28, 1
    return (32, 3) if cfg.dataset == "faces" else (cfg.image_size, 3)


class DiffusionRecipe(Recipe):
    checkpointed = ("model", "ema", "opt", "data_gen")  # saved by Recipe.state_dict
    ddp_modules = ("model",)  # trained by every process under torchrun (--nproc N)

    def __init__(self, ctx: RunContext, cfg: DiffusionConfig):
        # All CPU threads (torch's default), as the other convolutional recipes. Measured on
        # an idle 2-core machine, a step of the default preset took 101 ms on one thread and
        # 62 ms on two. With other programs keeping the cores busy it is the other way round,
        # and badly (0.21 s on one thread, 2.6 s on two, waiting on each other); the steps/s
        # on the status line show it when that happens.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size)
        dev = ctx.device
        self.toy = cfg.dataset == "toy2d"
        self.digits = cfg.dataset in DIGIT_SOURCES  # the digit classifier judges the samples
        self.schedule = NoiseSchedule(cfg.schedule, cfg.timesteps, device=dev)
        if self.toy:
            self.model = PointDenoiser(dim=2, hidden=max(32, 8 * cfg.base)).to(dev)
            self.shape: tuple[int, ...] = (2,)
            self.x0_clip = TOY_X0_CLIP
        else:
            size, channels = canvas(cfg)
            self.model = UNet(UNetArgs(channels=channels, base=cfg.base)).to(dev)
            self.shape = (channels, size, size)
            self.x0_clip = 1.0  # images live in [-1, 1]
            if fast_path(dev):
                self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = EMA(self.model, cfg.ema_decay)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, fused=fast_path(dev))
        # Fixed noise, drawn once from its own generator: the grid, the timeline and the
        # scores start from the same x_T every time, so they change only as the model does.
        g = torch.Generator().manual_seed(cfg.seed + 1)
        n_fixed = TOY_POINTS if self.toy else N_SAMPLES
        self.fixed_xT = torch.randn(n_fixed, *self.shape, generator=g).to(dev)
        # The data sampler has its own generator so its state can be checkpointed.
        self.data_gen = torch.Generator().manual_seed(self.data_seed(2))
        self.classifier = None
        self._cache: tuple | None = None  # (key, final samples, timeline frames)
        if self.toy:
            from engine.data.toy2d import sample_toy

            self.train_size = 0  # fresh points every step: there are no epochs
            # Unit scale: divide by the shape's spread, so the noise (std 1) and the data
            # are comparable, as they are for images in [-1, 1].
            ref = sample_toy(cfg.toy_shape, 20_000, generator=torch.Generator().manual_seed(cfg.seed + 5))
            self.toy_scale = float(ref.std())
            self.real_eval = (sample_toy(cfg.toy_shape, TOY_POINTS, generator=torch.Generator().manual_seed(cfg.seed + 6))
                              / self.toy_scale).to(dev)
            self.x_val = self.real_eval[:VAL_SIZE]
        elif ctx.need_data:
            data = load_image_source(cfg.dataset, cfg.data_path, size, channels, cfg.train_size, VAL_SIZE, cfg.seed,
                                     ctx.log, model="a diffusion model")
            # The whole dataset lives on the device, scaled to [-1, 1]: the same range as the
            # noise it is mixed with.
            self.x_train = data.train.to(dev).float() / 127.5 - 1.0
            self.x_val = data.val.to(dev).float() / 127.5 - 1.0
            if fast_path(dev):
                self.x_train = self.x_train.contiguous(memory_format=torch.channels_last)
            self.train_size = len(self.x_train)
        if self.toy or ctx.need_data:
            # Fixed validation triples: the same x_0, t (evenly spread over 1..T) and eps at
            # every evaluation, so val/loss moves only when the model does.
            gv = torch.Generator().manual_seed(cfg.seed + 3)
            n = len(self.x_val)
            self.val_t = torch.linspace(1, cfg.timesteps, n).round().long().to(dev)
            self.val_noise = torch.randn(n, *self.shape, generator=gv).to(dev)

    # -- the data --
    def batch(self) -> torch.Tensor:
        """One training batch of clean x_0: (B, C, H, W) in [-1, 1], or (B, 2) unit-scale points."""
        if self.toy:
            from engine.data.toy2d import sample_toy

            pts = sample_toy(self.cfg.toy_shape, self.batch_size, generator=self.data_gen)
            return (pts / self.toy_scale).to(self.ctx.device)
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        return self.x_train[idx]

    # -- training --
    def loss(self, model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The simple DDPM objective: || eps - eps_theta(x_t, t) ||^2 with x_t from the closed
        form. Predicting the noise (rather than x_0) gives a target of the same size at every
        t, so one network serves all noise levels. With prediction=v the target is v instead
        (NoiseSchedule.v_target), which is as well scaled and does not blow up near t = T."""
        x_t = self.schedule.q_sample(x0, t, noise)
        with autocast(self.ctx.device):
            pred = model(x_t, t)
        target = self.schedule.v_target(x0, t, noise) if self.cfg.prediction == "v" else noise
        return F.mse_loss(pred.float(), target)

    def train_step(self) -> dict[str, torch.Tensor]:
        dev = self.ctx.device
        x0 = self.batch()
        t = self.schedule.sample_t(len(x0), dev)  # a random noise level for each image, 1..T
        noise = torch.randn_like(x0)
        self.model.train()
        loss = self.loss(self.train_module("model"), x0, t, noise)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.opt.step()
        self.ema.update(self.model)
        return {"train/loss": loss.detach()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            for group in self.opt.param_groups:
                group["lr"] = float(value)
            self.cfg.lr = float(value)
        elif key == "sampler_steps":
            if int(value) not in SAMPLER_STEPS:
                raise ValueError(f"sampler_steps must be one of {SAMPLER_STEPS}, got {value!r}")
            self.cfg.sampler_steps = int(value)
        else:
            raise KeyError(key)

    # -- sampling (always with the EMA weights) --
    def eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The averaged network's noise prediction, in float32: the eps_fn of the samplers."""
        with autocast(self.ctx.device):
            out = self.ema.model(x, t).float()
        return self.schedule.v_to_eps(out, x, t) if self.cfg.prediction == "v" else out

    @torch.inference_mode()
    def ddim(self, x_T: torch.Tensor, n_steps: int, on_step=None) -> torch.Tensor:
        return self.schedule.ddim_sample(self.eps, x_T, n_steps, on_step=on_step, x0_clip=self.x0_clip)

    @torch.inference_mode()
    def ddpm(self, x_T: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.schedule.ddpm_sample(self.eps, x_T, generator, x0_clip=self.x0_clip)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Model space [-1, 1] -> [0, 1] for pictures and the digit judge."""
        return ((x.float() + 1) / 2).clamp(0, 1)

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        x_T = torch.randn(n, *self.shape, generator=generator).to(self.ctx.device)
        x = self.ddim(x_T, self.cfg.sampler_steps)
        if self.toy:  # points: drawn as one picture (1, 3, H, W)
            return torch.from_numpy(self.render_points([(x, TOY_FAKE)])).permute(2, 0, 1)[None].float() / 255
        return self.to_unit(x)

    def fixed_sample(self) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        """The DDIM sample from the fixed noise, and the timeline frames [(t, x_t)] on the way.

        One trajectory serves the grid, the timeline and the scores; it is kept until the
        weights or sampler_steps change, so evaluate() right after samples() costs nothing."""
        n_steps = self.cfg.sampler_steps
        key = (self.ema.n, n_steps)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        n = min(n_steps, self.schedule.steps)
        k = min(TIMELINE_FRAMES, n + 1)
        keep = {round(i * n / (k - 1)) for i in range(k)}  # k evenly spaced states of n + 1
        frames: list[tuple[int, torch.Tensor]] = []
        shown = TOY_POINTS if self.toy else TIMELINE_IMAGES

        def record(i: int, t: int, x: torch.Tensor) -> None:
            if i in keep:
                frames.append((t, x[:shown].float().clone()))

        x = self.ddim(self.fixed_xT, n_steps, on_step=record)
        self._cache = (key, x, frames)
        return x, frames

    # -- evaluation and views (never touch the training RNG streams) --
    @torch.inference_mode()
    def val_loss(self) -> float:
        return self.loss(self.ema.model, self.x_val, self.val_t, self.val_noise).item()

    def evaluate(self) -> dict[str, float]:
        metrics = {}
        if self.toy or self.ctx.need_data:
            metrics["val/loss"] = self.val_loss()
        if self.toy:
            from engine.metrics.distance2d import sliced_wasserstein

            x, _ = self.fixed_sample()
            metrics["quality/sliced_wasserstein"] = sliced_wasserstein(x.cpu() * self.toy_scale,
                                                                       self.real_eval.cpu() * self.toy_scale)
        elif self.digits:
            from engine.metrics.digit_classifier import score_digits

            x, _ = self.fixed_sample()
            scores = score_digits(self.digit_judge(), as_digits(self.to_unit(x)))
            metrics["quality/recognisability"] = scores["recognisability"]
            metrics["quality/coverage"] = scores["coverage"]
        return metrics

    def picture(self, x: torch.Tensor, nrow: int) -> np.ndarray:
        """Model-space images (N, C, H, W), or points (N, 2), as one uint8 picture."""
        if self.toy:
            return self.render_points([(self.real_eval, TOY_REAL), (x, TOY_FAKE)])
        return make_grid(self.to_unit(x), nrow=nrow)

    def render_points(self, clouds: list[tuple[torch.Tensor, tuple[int, int, int]]]) -> np.ndarray:
        """Point clouds (N, 2) in unit scale, drawn in order on a dark square: uint8
        (TOY_PX, TOY_PX, 3), +y up. A 1-pixel border separates frames."""
        image = np.empty((TOY_PX, TOY_PX, 3), dtype=np.uint8)
        image[:] = TOY_BG
        image[0, :] = image[-1, :] = image[:, 0] = image[:, -1] = (40, 44, 56)
        for points, colour in clouds:
            draw_points(image, points, colour, TOY_EXTENT, border=1)
        return image

    def schedule_plot(self) -> Artifact:
        T = self.schedule.steps
        ts = sorted({round(i * T / 100) for i in range(101)})  # ~100 points from 0 to T
        idx = torch.tensor(ts, device=self.schedule.device)
        data = {"title": "signal and noise level against t", "x": ts, "xlabel": "t",
                "series": {"signal sqrt(ᾱ_t)": self.schedule.signal_level(idx).tolist(),
                           "noise sqrt(1-ᾱ_t)": self.schedule.noise_level(idx).tolist()}}
        caption = f"{self.cfg.schedule} schedule, T = {T}: x_t = signal * x_0 + noise * eps"
        return Artifact("schedule", "data", data, caption)

    @torch.inference_mode()
    def forward_strip(self) -> Artifact:
        """Real examples (rows) noised by the closed form at FORWARD_COLS evenly spaced t."""
        T = self.schedule.steps
        ts = [round(i * T / (FORWARD_COLS - 1)) for i in range(FORWARD_COLS)]
        g = torch.Generator().manual_seed(self.cfg.seed + 4)  # the same noise every time: no flicker
        caption = f"x_t = sqrt(ᾱ_t) x_0 + sqrt(1-ᾱ_t) eps at t = {', '.join(map(str, ts))} (left to right)"
        if self.toy:
            x0 = self.real_eval
            noise = torch.randn(x0.shape, generator=g).to(x0.device)
            frames = [self.render_points([(self.schedule.q_sample(x0, t, noise), TOY_FAKE)]) for t in ts]
            return Artifact("forward", "image", np.concatenate(frames, axis=1), caption)
        x0 = self.x_val[:FORWARD_ROWS]  # (R, C, H, W)
        noise = torch.randn(x0.shape, generator=g).to(x0.device)
        cols = torch.stack([self.schedule.q_sample(x0, t, noise) for t in ts], dim=1)  # (R, K, C, H, W)
        return Artifact("forward", "image", make_grid(self.to_unit(cols.flatten(0, 1)), nrow=FORWARD_COLS),
                        "rows: real images; " + caption)

    def timeline(self, frames: list[tuple[int, torch.Tensor]]) -> list[Artifact]:
        """One strip of equal frames, noise (left) to sample (right), and its description."""
        pictures = [self.render_points([(x, TOY_FAKE)]) if self.toy else make_grid(self.to_unit(x), nrow=4)
                    for _, x in frames]
        label = f"DDIM {min(self.cfg.sampler_steps, self.schedule.steps)} steps, seed {self.cfg.seed}"
        meta = {"frames": len(frames), "t": [t for t, _ in frames], "label": label}
        return [Artifact("timeline", "image", np.concatenate(pictures, axis=1), label + ": x_t from t = T to 0"),
                Artifact("timeline-meta", "data", meta, label)]

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        x, frames = self.fixed_sample()
        steps = min(self.cfg.sampler_steps, self.schedule.steps)
        what = f"{len(x)} points" if self.toy else f"{len(x)} samples"
        out = [Artifact("samples", "image", self.picture(x, nrow=8),
                        f"{what} from fixed noise (EMA weights, DDIM {steps} steps)"
                        + ("; real points dim" if self.toy else ""))]
        out.append(self.schedule_plot())
        if self.toy or self.ctx.need_data:
            out.append(self.forward_strip())
        out.extend(self.timeline(frames))
        return out

    # -- the learner's requests --
    def interact(self, name: str, args: dict):
        if name != "compare":
            raise ValueError(f"this lesson has no {name!r} action (it has: compare)")
        raw = args.get("ddim_steps", args.get("sampler_steps", self.cfg.sampler_steps))
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise ValueError(f"ddim_steps must be one of {', '.join(map(str, SAMPLER_STEPS))}; got {raw!r}")
        try:
            steps = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"ddim_steps must be one of {', '.join(map(str, SAMPLER_STEPS))}; got {raw!r}") from None
        if steps not in SAMPLER_STEPS:
            raise ValueError(f"ddim_steps must be one of {', '.join(map(str, SAMPLER_STEPS))}; got {raw!r}")
        yield from self.compare(steps)

    def _timed(self, fn):
        sync = torch.cuda.synchronize if self.ctx.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        return out, time.perf_counter() - t0

    @torch.inference_mode()
    def compare(self, ddim_steps: int):
        """The same fixed noise through DDPM (all T steps, fresh noise at each) and through
        DDIM (ddim_steps, deterministic): left and right of one picture, timed. DDIM comes
        first (it is quick); the finished picture follows when DDPM is done."""
        g = torch.Generator().manual_seed(self.cfg.seed + 7)
        n = TOY_POINTS if self.toy else COMPARE_IMAGES
        x_T = torch.randn(n, *self.shape, generator=g).to(self.ctx.device)
        T, steps = self.schedule.steps, min(ddim_steps, self.schedule.steps)
        fast, t_ddim = self._timed(lambda: self.ddim(x_T, steps))
        scored = self.digits

        def score(x) -> str:
            if not scored:
                return ""
            from engine.metrics.digit_classifier import score_digits

            return f", recognisability {score_digits(self.digit_judge(), as_digits(self.to_unit(x)))['recognisability']:.2f}"

        right = f"DDIM {steps} steps: {t_ddim:.2f} s{score(fast)}"
        blank = torch.full_like(fast, -1.0 + 2 * PAD) if not self.toy else fast[:0]
        yield Artifact("compare", "image", self._side_by_side(blank, fast),
                       f"left: DDPM {T} steps (running …) | right: {right}")
        slow, t_ddpm = self._timed(lambda: self.ddpm(x_T, torch.Generator(device=g.device).manual_seed(self.cfg.seed + 8)))
        left = f"DDPM {T} steps: {t_ddpm:.2f} s{score(slow)}"
        yield Artifact("compare", "image", self._side_by_side(slow, fast),
                       f"left: {left} | right: {right} ({t_ddpm / max(t_ddim, 1e-9):.0f}x faster)")

    def _side_by_side(self, left: torch.Tensor, right: torch.Tensor) -> np.ndarray:
        a, b = (self.render_points([(self.real_eval, TOY_REAL), (x, TOY_FAKE)]) if self.toy
                else make_grid(self.to_unit(x), nrow=4) for x in (left, right))
        gap = np.zeros((a.shape[0], 6) + a.shape[2:], dtype=np.uint8)  # a dark gutter between the two
        return np.concatenate([a, gap, b], axis=1)


RECIPE = DiffusionRecipe
