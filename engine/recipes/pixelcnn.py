"""The PixelCNN recipe: a masked convolutional network learns p(pixel | the pixels before
it) on quantised images, and draws new ones a pixel at a time.

Training is one cross-entropy: every pixel's softmax against its true level, all pixels of
a batch at once (the masks keep each prediction from seeing its answer). The views: samples
drawn from fixed seeds (scored by the digit classifier on digits), the drawing replayed
pixel by pixel (and new drawings on request, streamed while they are made), and the
receptive field of one pixel, measured by gradients, with its blind spot.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from engine.configs.pixelcnn import PixelCNNConfig
from engine.data.images import as_digits, load_image_source
from engine.device import one_thread
from engine.imaging import make_grid
from engine.models.pixelcnn import PixelCNN, PixelCNNArgs
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine

VAL_SIZE = 256  # held-out images for val/bpd
RASTER_IMAGES = 16  # images replayed in the raster view (a 4x4 grid), at most
STREAM_EVERY = 0.25  # seconds between the parts of a drawing made on request
FIELD_IMAGES = 4  # held-out images the receptive field is measured on (their gradients add up)
DIGIT_LIKE = ("digits", "mnist", "fashion-mnist")  # grey 28x28 sources; the rest are drawn in colour
LN2 = math.log(2)
WARMUP = 50  # steps of linear learning-rate warmup
LR_FLOOR = 0.1  # the cosine ends at this fraction of lr

# Colours of the receptive-field picture.
FIELD_TARGET = (90, 220, 255)  # the pixel whose field is shown
FIELD_SEEN = np.array([255, 200, 40])  # inputs that move its logits (scaled by how much)
FIELD_BLIND = (230, 40, 90)  # earlier pixels within its reach that it cannot see: the blind spot
FIELD_LATER = (14, 16, 24)  # later pixels: hidden by the masks, as they should be


def quantise(x: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 values 0..255 -> level indices 0..levels-1 (equal-width bins)."""
    return (x.long() * levels // 256).to(torch.uint8)


class PixelCNNRecipe(Recipe):
    checkpointed = ("model", "opt", "data_gen")  # saved by Recipe.state_dict

    def __init__(self, ctx: RunContext, cfg: PixelCNNConfig):
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size)
        dev = ctx.device
        grey = cfg.dataset in DIGIT_LIKE
        self.size = 28 if grey else cfg.image_size
        self.args = PixelCNNArgs(levels=cfg.levels, channels=1 if grey else 3, width=cfg.width,
                                 blocks=cfg.blocks, first_kernel=cfg.first_kernel, positions=cfg.positions,
                                 size=self.size)
        self.model = PixelCNN(self.args).to(dev)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        # The batches come from their own generator so its state can be checkpointed.
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.temperature = cfg.temperature
        self.steps_done = 0  # optimiser steps of the run (checkpointed): the schedule, the views' cache key
        self.scored = grey and cfg.dataset != "fashion-mnist"  # the digit classifier applies
        self.classifier = None
        self._cache: tuple | None = None  # (key, samples, first image's distributions)
        if ctx.need_data:
            data = load_image_source(cfg.dataset, cfg.data_path, self.size, self.args.channels, cfg.train_size,
                                     VAL_SIZE, cfg.seed, ctx.log, "a PixelCNN")
            self.scored = data.digits
            # The whole data set lives on the device as level indices (uint8: 4x smaller).
            self.x_train = quantise(data.train, cfg.levels).to(dev)
            self.x_val = quantise(data.val, cfg.levels).to(dev)
            self.train_size = len(self.x_train)
        n = sum(p.numel() for p in self.model.parameters())
        ctx.log(f"model: {n / 1e3:.0f}k parameters; each pixel sees up to {self.model.reach()} rows up and "
                f"columns to each side; {self.size}x{self.size}x{self.args.channels} at {cfg.levels} levels")

    # -- training --
    def train_step(self) -> dict[str, torch.Tensor]:
        lr = warmup_cosine(self.steps_done, self.cfg.lr, WARMUP, self.cfg.steps, LR_FLOOR)
        for group in self.opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        loss = self.model.nll(self.x_train[idx])  # nats per dimension
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps_done += 1
        loss = loss.detach()
        return {"train/loss": loss, "train/bpd": loss / LN2}

    def set_live(self, key, value) -> None:
        if key == "lr":
            self.cfg.lr = float(value)  # the schedule reads it at the next step
        elif key == "temperature":
            self.temperature = float(value)
        else:
            raise KeyError(key)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])

    # -- evaluation --
    @torch.inference_mode()
    def val_nll(self) -> float:
        """Mean negative log-likelihood per dimension of the held-out images, in nats."""
        total = sum(self.model.nll(chunk).item() * len(chunk) for chunk in self.x_val.split(64))
        return total / len(self.x_val)

    def evaluate(self) -> dict[str, float]:
        metrics = {}
        if self.ctx.need_data:
            nll = self.val_nll()
            metrics.update({"val/loss": nll, "val/bpd": nll / LN2})
        if self.scored:
            from engine.metrics.digit_classifier import score_digits

            x, _ = self.fixed_samples()
            scores = score_digits(self.digit_judge(), as_digits(self.to_unit(x)))
            metrics["quality/recognisability"] = scores["recognisability"]
            metrics["quality/coverage"] = scores["coverage"]
        return metrics

    # -- sampling --
    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Level indices -> intensities in [0, 1] (level k of L becomes k / (L - 1))."""
        return x.float() / (self.cfg.levels - 1)

    def draw(self, n: int, generator: torch.Generator):
        """The model's drawing, pixel by pixel (PixelCNN.draw), each pixel computed on one
        thread: hundreds of tiny steps gain nothing from more threads."""
        steps = self.model.draw(n, (self.size, self.size), generator, self.temperature)
        while True:
            with one_thread(self.ctx.device):
                step = next(steps, None)
            if step is None:
                return
            yield step

    def fixed_samples(self) -> tuple[torch.Tensor, list]:
        """cfg.samples images from a fixed seed, and the first one's distributions at every
        pixel. Kept until the weights or the temperature change, so evaluate() right after
        samples() costs nothing."""
        key = (self.steps_done, self.temperature)
        if self._cache is None or self._cache[0] != key:
            first: list = []
            x = None
            for _, x, probs in self.draw(self.cfg.samples, torch.Generator().manual_seed(self.cfg.seed + 1)):
                first.append(probs[0].tolist())  # (C, levels)
            self._cache = (key, x, first)
        return self._cache[1], self._cache[2]

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        x = None
        for _, x, _ in self.draw(n, generator):
            pass
        return self.to_unit(x)

    def raster(self, x: torch.Tensor, done: int, first: list, label: str, request: int = 0) -> Artifact:
        """The raster view's data: the images as level indices, how far they are drawn,
        and the first image's distribution at every pixel drawn so far."""
        images = x[:RASTER_IMAGES].permute(0, 2, 3, 1).flatten(1)  # (n, H * W * C): pixel by pixel, channels inside
        return Artifact("raster", "data", {
            "height": self.size, "width": self.size, "channels": self.args.channels, "levels": self.cfg.levels,
            "images": images.tolist(), "done": done, "probs": [[[round(p, 3) for p in ch] for ch in px]
                                                               for px in first[:done]],
            "label": label, "request": request,
        }, label)

    # -- the receptive field --
    def field(self) -> tuple[np.ndarray, np.ndarray]:
        """How much the pixel at the centre depends on every input pixel, after the first
        layer and after every block (the last is the output's): (stages, H, W), from
        gradients, so it is the field the trained network really has. The gradient is of a
        fixed random mix of the pixel's features (all of them matter), summed in size over
        FIELD_IMAGES held-out images so no input goes unseen by chance. Returns the fields
        and the image they are drawn over."""
        row = col = self.size // 2
        x = self.x_val[:FIELD_IMAGES]
        g = torch.Generator().manual_seed(self.cfg.seed + 3)
        fields = []
        with one_thread(self.ctx.device), torch.enable_grad():
            inp = self.model.scale(x).requires_grad_(True)  # (n, C, H, W)
            stages: list[torch.Tensor] = []
            self.model.body(inp, stages)
            for h in stages:  # (n, width, H, W)
                mix = torch.randn(h.shape[1], generator=g).to(h.device)
                (grad,) = torch.autograd.grad((h[:, :, row, col] @ mix).sum(), inp, retain_graph=True)
                fields.append(grad.abs().sum(dim=(0, 1)))  # (H, W)
        return torch.stack(fields).cpu().numpy(), self.to_unit(x[0]).mean(0).cpu().numpy()

    def reach_window(self, stage: int) -> np.ndarray:
        """(H, W) True on the earlier pixels that the centre pixel could reach after
        ``stage`` + 1 stages (the first layer, then the blocks): each adds its kernel's half
        in rows up and columns to each side."""
        H = W = self.size
        row = col = H // 2
        a = self.args
        r = a.first_kernel // 2 + stage * (a.kernel // 2)
        near = np.zeros((H, W), bool)
        near[max(0, row - r): row + 1, max(0, col - r): col + r + 1] = True
        return near & (np.arange(H * W).reshape(H, W) < row * W + col)

    def field_picture(self, field: np.ndarray, stage: int, under: np.ndarray) -> np.ndarray:
        """One field (H, W) drawn over an image (H, W) in [0, 1]: uint8 (H, W, 3)."""
        H, W = field.shape
        row = col = self.size // 2
        seen = field > 0
        strength = np.sqrt(field / field.max()) if field.max() > 0 else field  # sqrt: faint inputs stay visible
        grey = (under * 110 + 25)[..., None].repeat(3, axis=2)  # the image, dimmed
        pic = grey.copy()
        pic[seen] = 0.35 * grey[seen] + 0.65 * (40 + strength[seen, None] * (FIELD_SEEN - 40))
        pic[self.reach_window(stage) & ~seen] = FIELD_BLIND
        pic[np.arange(H * W).reshape(H, W) >= row * W + col] = FIELD_LATER
        pic[row, col] = FIELD_TARGET
        return pic.clip(0, 255).astype(np.uint8)

    def field_views(self) -> list[Artifact]:
        fields, under = self.field()
        tiles = [self.field_picture(f, i, under) for i, f in enumerate(fields)]
        strip = make_grid(torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).float() / 255, nrow=len(tiles))
        last = len(fields) - 1
        blind = int((self.reach_window(last) & (fields[last] == 0)).sum())
        c = self.size // 2
        return [
            Artifact("field", "image", tiles[last],
                     f"pixel ({c}, {c}): yellow inputs move its logits (brighter: more), red: the blind spot "
                     f"({blind} earlier pixels in reach it cannot see), black: later pixels"),
            Artifact("field-layers", "image", strip,
                     "the same field after the first layer, then after each block (left to right)"),
        ]

    # -- views --
    def samples(self) -> list[Artifact]:
        x, first = self.fixed_samples()
        total = self.size * self.size
        what = f"{len(x)} samples from a fixed seed, temperature {self.temperature:g}"
        out = [Artifact("samples", "image", make_grid(self.to_unit(x), nrow=min(8, len(x))), what),
               self.raster(x, total, first, f"the first {min(RASTER_IMAGES, len(x))} of the samples (fixed seed, "
                                              f"temperature {self.temperature:g})")]
        if self.ctx.need_data:
            out.extend(self.field_views())
        return out

    # -- the learner's requests --
    def interact(self, name: str, args: dict):
        """``draw``: new images (as many as the raster view shows) at the current
        temperature, streamed in parts while they are drawn (each request draws from its
        own seed)."""
        if name != "draw":
            raise ValueError(f"this lesson has no {name!r} action (it has: draw)")
        try:
            request = int(args.get("request", 0))
        except (TypeError, ValueError):
            raise ValueError(f"request must be a whole number, got {args.get('request')!r}") from None
        g = torch.Generator().manual_seed(self.cfg.seed + 1000 + request)
        label = f"new drawing {request} (temperature {self.temperature:g})"
        first: list = []
        last = time.monotonic()
        t0 = last
        x = None
        for i, x, probs in self.draw(min(RASTER_IMAGES, self.cfg.samples), g):
            first.append(probs[0].tolist())
            if time.monotonic() - last >= STREAM_EVERY:
                last = time.monotonic()
                yield self.raster(x, i + 1, first, label + " …", request)
        seconds = time.monotonic() - t0
        yield self.raster(x, len(first), first, f"{label}: {seconds:.1f} s", request)


RECIPE = PixelCNNRecipe
