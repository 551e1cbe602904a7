"""The RealNVP recipe: a normalizing flow trained by maximum likelihood, exactly.

Training is one line: push a batch of data through the flow and minimise its negative
log-likelihood, -log p(x) = -log N(f(x); 0, I) - log |det df/dx|. There is no bound and no
opponent: the number on the curve is the model's own density of held-out data. On the
eight Gaussians the true density is known, so the curve has a floor to reach.

The views show the flow as a map: data pushed layer by layer to z beside Gaussian samples
pulled back to x, each with a grid that warps as it goes (Flow), and the learned density
beside the true one (Density).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from engine.configs.realnvp import RealNVPConfig
from engine.data.toy2d import gaussians_log_density, sample_toy
from engine.imaging import draw_points, make_grid
from engine.models.realnvp import RealNVP, image_flow, point_flow
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine

N_VAL_POINTS = 2000  # held-out points for val/nll (and the true density's NLL on them)
N_VAL_DIGITS = 256  # held-out digits for val/bits_per_dim
N_SHOW = 1000  # points drawn in each picture
N_DIGITS = 64  # digits in the sample grid
N_FLOW_DIGITS = 16  # digits per panel of the flow view (4x4)
WARMUP = 50  # steps of linear learning-rate warmup
LR_FLOOR = 0.1  # the cosine ends at this fraction of lr
GRAD_CLIP = 10.0  # a rare huge gradient (a point far out in a tail) must not undo training
PX, EXTENT = 96, 3.5  # a point picture: PX pixels across [-EXTENT, EXTENT]^2
DENSITY_PX = 128  # each density map
DENSITY_RANGE = 8.0  # nats of log-density shown below the peak; lower is drawn black
GRID_LINES = 7  # the warped grid: lines at -3, -2, ..., 3 in each direction
BG, FRAME, GRID, REAL = (12, 14, 20), (40, 44, 56), (52, 58, 74), (70, 90, 110)
HUES = 12  # points are coloured by their angle around the data's centre, in this many steps
# Density colours: black -> purple -> orange -> pale yellow, by log-density.
DENSITY_STOPS = np.array([0.0, 0.35, 0.7, 1.0])
DENSITY_RGB = np.array([(8, 8, 16), (90, 30, 120), (235, 110, 40), (255, 240, 170)], dtype=float)
LOG256 = math.log(256)
NAN_HINT = ("a flow's log-likelihood went bad: lower lr (try a third), or lower scale_bound so no layer can "
            "stretch as far; with digits, a smaller batch_size also helps. Then start again.")


def angle_colours(points: torch.Tensor) -> list[tuple[tuple[int, int, int], torch.Tensor]]:
    """Group points (N, 2) by their angle around the origin into HUES colours of a colour
    wheel: [(rgb, mask over the points)], so a point can be followed from picture to picture."""
    angle = torch.atan2(points[:, 1], points[:, 0])  # (N,) in (-pi, pi]
    bins = ((angle + math.pi) / (2 * math.pi) * HUES).long().clamp(0, HUES - 1)
    groups = []
    for b in range(HUES):
        a = 2 * math.pi * (b + 0.5) / HUES
        rgb = tuple(int(70 + 185 * (0.5 + 0.5 * math.cos(a - k * 2 * math.pi / 3))) for k in range(3))
        groups.append((rgb, bins == b))
    return groups


def density_colours(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> uint8 (H, W, 3) along DENSITY_STOPS."""
    rgb = [np.interp(values, DENSITY_STOPS, DENSITY_RGB[:, c]) for c in range(3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def bits_per_dim(nll: torch.Tensor, dims: int) -> torch.Tensor:
    """nll of dequantised pixels in [0, 1] (nats per image) -> bits per pixel of the 8-bit
    image: each pixel's bin is 1/256 wide, so log P(bin) >= log p(v) - log 256, and
    bits = nats / log 2."""
    return (nll + dims * LOG256) / (dims * math.log(2))


class RealNVPRecipe(Recipe):
    checkpointed = ("model", "opt", "data_gen")  # saved by Recipe.state_dict
    nan_hint = NAN_HINT

    def __init__(self, ctx: RunContext, cfg: RealNVPConfig):
        self.toy = cfg.dataset == "toy2d"
        # Networks this small spend more time coordinating threads than computing (the
        # points); the convolutions on digits use every core.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch(), train_size=0,
                         cpu_threads=1 if self.toy else None, view_interval=1.0 if self.toy else 3.0,
                         unit="points" if self.toy else "images")
        dev = ctx.device
        g = torch.Generator().manual_seed(cfg.seed + 1)  # fixed noise and held-out data for the views
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # the batches; checkpointed
        if self.toy:
            # Rescale to unit spread, so the base Gaussian and the data start comparable.
            ref = sample_toy(cfg.shape, 20_000, generator=torch.Generator().manual_seed(cfg.seed + 5), noise=cfg.noise)
            self.model: RealNVP = point_flow(2, cfg.layers, cfg.hidden, cfg.scale_bound,
                                             ref.mean(0), float(ref.std())).to(dev)
            self.x_val = sample_toy(cfg.shape, N_VAL_POINTS, generator=g, noise=cfg.noise).to(dev)
            self.true_nll = (-gaussians_log_density(self.x_val.cpu(), cfg.noise).mean().item()
                             if cfg.shape == "gaussians" else None)
            self.fixed_z = torch.randn(N_SHOW, 2, generator=g).to(dev)
        else:
            self.model = image_flow(28, cfg.layers, cfg.channels, cfg.scale_bound).to(dev)
            self.fixed_z = torch.randn(N_DIGITS, 1, 28, 28, generator=g).to(dev)
            if ctx.need_data:
                from engine.data.digits import load_digits

                ctx.log(f"generating {cfg.train_size + N_VAL_DIGITS:,} embedded digits (seed {cfg.seed}; "
                        "cached after the first time)")
                images, _ = load_digits(cfg.train_size + N_VAL_DIGITS, cfg.seed)
                images = images.unsqueeze(1).to(dev)  # (N, 1, 28, 28) uint8: 0..255
                self.x_train, held_out = images[N_VAL_DIGITS:], images[:N_VAL_DIGITS]
                self.train_size = len(self.x_train)
                # Fixed dequantisation noise: val/bits_per_dim moves only when the model does.
                self.x_val = self.dequantise(held_out, torch.rand(held_out.shape, generator=g).to(dev))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.steps_done = 0
        self._histogram: np.ndarray | None = None  # the data's, for shapes without a known density

    # -- the data --
    @staticmethod
    def dequantise(pixels: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """uint8 pixels k -> (k + u) / 256 with u ~ U[0, 1): a continuous density cannot be
        fitted to 256 discrete levels (it would pile infinite density on them), so each
        level is spread evenly over its own 1/256-wide bin."""
        return (pixels.float() + u) / 256

    def batch(self) -> torch.Tensor:
        """One training batch: (B, 2) points, or (B, 1, 28, 28) dequantised digits in [0, 1)."""
        if self.toy:
            return sample_toy(self.cfg.shape, self.batch_size, generator=self.data_gen,
                              noise=self.cfg.noise).to(self.ctx.device)
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        pixels = self.x_train[idx]
        return self.dequantise(pixels, torch.rand(pixels.shape, generator=self.data_gen).to(self.ctx.device))

    # -- training --
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The mean negative log-likelihood: nats per point, or bits per pixel for digits."""
        nll = -self.model.log_prob(x).mean()
        return nll if self.toy else bits_per_dim(nll, x[0].numel())

    def train_step(self) -> dict[str, torch.Tensor]:
        lr = warmup_cosine(self.steps_done, self.cfg.lr, WARMUP, self.cfg.steps, LR_FLOOR)
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss = self.loss(self.batch())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.opt.step()
        self.steps_done += 1
        return {"train/nll" if self.toy else "train/bits_per_dim": loss.detach()}

    def set_live(self, key, value) -> None:
        if key not in ("lr", "temperature"):
            raise KeyError(key)
        setattr(self.cfg, key, float(value))  # lr: the schedule reads it at the next step

    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])

    # -- evaluation --
    @torch.inference_mode()
    def evaluate(self) -> dict[str, float]:
        if not self.toy and not self.ctx.need_data:
            return {}
        if self.toy:
            metrics = {"val/nll": -self.model.log_prob(self.x_val).mean().item()}
            if self.true_nll is not None:
                metrics["val/true_nll"] = self.true_nll  # the floor: the true density's NLL on the same points
                metrics["val/gap"] = metrics["val/nll"] - self.true_nll  # nats per point above the floor: a KL estimate
            return metrics
        return {"val/bits_per_dim": self.loss(self.x_val).item()}

    # -- views (fixed noise and held-out data: no training random stream is touched) --
    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        with torch.inference_mode():
            x = self.model.sample(n, generator, self.cfg.temperature)
        if self.toy:  # points: drawn as one picture (1, 3, H, W)
            return torch.from_numpy(self.points_picture([(x, (255, 210, 90))])).permute(2, 0, 1)[None].float() / 255
        return x.clamp(0, 1)

    def points_picture(self, clouds, extent: float = EXTENT, grid: torch.Tensor | None = None) -> np.ndarray:
        """Point clouds [(points (N, 2), colour)] on a dark square, over an optional grid
        (points (M, 2) drawn dim): uint8 (PX, PX, 3), +y up. A colour may be a tensor of keys
        (N, 2) instead of an RGB triple: each point then takes the colour of its key's angle
        (angle_colours)."""
        image = np.empty((PX, PX, 3), dtype=np.uint8)
        image[:] = BG
        image[0, :] = image[-1, :] = image[:, 0] = image[:, -1] = FRAME
        if grid is not None:
            draw_points(image, grid, GRID, extent, border=1)
        for points, colour in clouds:
            if isinstance(colour, torch.Tensor):  # colour by the angle of these keys
                for rgb, mask in angle_colours(colour):
                    draw_points(image, points[mask], rgb, extent, border=1)
            else:
                draw_points(image, points, colour, extent, border=1)
        return image

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        return self.toy_views() if self.toy else self.digit_views()

    def toy_views(self) -> list[Artifact]:
        x_gen = self.model.inverse(self.cfg.temperature * self.fixed_z)  # (N, 2)
        what = f"{self.cfg.shape}, noise {self.cfg.noise:g}"
        arts = [Artifact("samples", "image", self.points_picture([(self.x_val[:N_SHOW], REAL), (x_gen, (255, 210, 90))]),
                         f"{what}: held-out data (grey), samples (gold, T = {self.cfg.temperature:g})")]
        arts.extend(self.flow_strip(self.x_val[:N_SHOW], self.cfg.temperature * self.fixed_z))
        arts.append(self.density_maps())
        return arts

    def grid_points(self) -> torch.Tensor:
        """A square grid in the flow's own units, as points (N, 2): GRID_LINES lines each way
        from -3 to 3, each drawn as 200 points close enough to look like a line."""
        ticks = torch.linspace(-3, 3, GRID_LINES)
        along = torch.linspace(-EXTENT, EXTENT, 200)
        across, down = torch.meshgrid(ticks, along, indexing="ij")  # (lines, 200) each
        vertical = torch.stack([across.flatten(), down.flatten()], 1)
        return torch.cat([vertical, vertical.flip(1)]).to(self.ctx.device)  # and the horizontal lines

    def flow_strip(self, x: torch.Tensor, z: torch.Tensor) -> list[Artifact]:
        """The Flow view: frame k shows the space after L - k couplings, from z (frame 1) to x
        (the last frame). Left: held-out data pushed forward that far, with a square grid
        drawn in x pushed along. Right: Gaussian samples pulled back that far, with a square
        grid drawn in z pulled along. Colours follow each point's angle in x, so a point
        can be traced through the frames; when the flow has learned, the two sides match."""
        L = len(self.model.couplings)
        x_gen = self.model.inverse(z)
        grid = self.grid_points()
        # push_stages: [x, rescaled x, after 1 coupling, ..., after L] -> drop the raw x (the
        # first frame shows rescaled x, in the same units as everything after it).
        pushed = self.model.push_stages(x)[1:]
        pulled = self.model.pull_stages(z)[1:]
        grid_x = self.model.push_stages(self.model.prep.inverse(grid))[1:]  # a square grid in x, pushed
        grid_z = self.model.pull_stages(grid)[1:]  # a square grid in z, pulled back
        frames = []
        for depth in range(L, -1, -1):
            left = self.points_picture([(pushed[depth], x)], grid=grid_x[depth])
            right = self.points_picture([(pulled[depth], x_gen)], grid=grid_z[depth])
            gap = np.zeros((PX, 4, 3), dtype=np.uint8)
            frames.append(np.concatenate([left, gap, right], axis=1))
        label = (f"{L} couplings; left: data pushed toward z, right: samples pulled back toward x "
                 "(frame 1 = z, last = x)")
        meta = {"frames": L + 1, "t": [], "label": label}
        return [Artifact("flow", "image", np.concatenate(frames, axis=1), label),
                Artifact("flow-meta", "data", meta, label)]

    def density_maps(self) -> Artifact:
        """log p(x) on a DENSITY_PX grid over the view: the flow's (left) beside the true
        density (gaussians) or a histogram of 20,000 data points (other shapes), on one
        colour scale: the top DENSITY_RANGE nats below the highest value."""
        axis = torch.linspace(-EXTENT, EXTENT, DENSITY_PX)
        gy, gx = torch.meshgrid(-axis, axis, indexing="ij")  # row 0 is the top (+y)
        grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (P*P, 2)
        learned = self.model.log_prob(grid.to(self.ctx.device)).view(DENSITY_PX, DENSITY_PX).float().cpu().numpy()
        if self.true_nll is not None:
            other = gaussians_log_density(grid, self.cfg.noise).view(DENSITY_PX, DENSITY_PX).float().numpy()
            right = "true density"
        else:
            other, right = self.data_histogram(), "data histogram"
        top = float(max(np.nanmax(learned), other.max()))
        maps = [density_colours(np.clip((np.nan_to_num(m, nan=-1e9) - top + DENSITY_RANGE) / DENSITY_RANGE, 0, 1))
                for m in (learned, other)]
        gap = np.zeros((DENSITY_PX, 4, 3), dtype=np.uint8)
        caption = (f"log-density: learned (left) | {right} (right); colour from {top - DENSITY_RANGE:.1f} "
                   f"(black) to {top:.1f} nats (pale)")
        return Artifact("density", "image", np.concatenate([maps[0], gap, maps[1]], axis=1), caption)

    def data_histogram(self) -> np.ndarray:
        """log of a normalised histogram of 20,000 fresh points on the density grid (made once)."""
        if self._histogram is None:
            pts = sample_toy(self.cfg.shape, 20_000, generator=torch.Generator().manual_seed(self.cfg.seed + 6),
                             noise=self.cfg.noise).numpy()
            edges = np.linspace(-EXTENT, EXTENT, DENSITY_PX + 1)
            hist, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=(edges, edges))
            cell = (2 * EXTENT / DENSITY_PX) ** 2
            self._histogram = np.log(np.maximum(hist[::-1] / (len(pts) * cell), 1e-12))  # row 0 = top
        return self._histogram

    def digit_views(self) -> list[Artifact]:
        T = self.cfg.temperature
        x_gen = self.model.inverse(T * self.fixed_z).clamp(0, 1)
        arts = [Artifact("samples", "image", make_grid(x_gen, nrow=8), f"{len(x_gen)} samples (T = {T:g})")]
        if not self.ctx.need_data:
            return arts
        # The flow view: h after each coupling, shown through a sigmoid (the inverse of the
        # logit preprocessing), so the first frame looks like x and the last like z.
        x = self.x_val[:N_FLOW_DIGITS]
        z = T * self.fixed_z[:N_FLOW_DIGITS]
        L = len(self.model.couplings)
        pushed = self.model.push_stages(x)[1:]
        pulled = self.model.pull_stages(z)[1:]
        frames = []
        for depth in range(L, -1, -1):
            left = make_grid(torch.sigmoid(pushed[depth]), nrow=4)
            right = make_grid(torch.sigmoid(pulled[depth]), nrow=4)
            frames.append(np.concatenate([left, np.zeros((left.shape[0], 4), np.uint8), right], axis=1))
        label = (f"{L} couplings; left: held-out digits pushed toward z, right: samples pulled back toward x, "
                 "as sigmoid(h) (frame 1 = z, last = x)")
        arts.append(Artifact("flow", "image", np.concatenate(frames, axis=1), label))
        arts.append(Artifact("flow-meta", "data", {"frames": L + 1, "t": [], "label": label}, label))
        # The Density view for images: the held-out digits the model finds likeliest and
        # least likely, by their own bits per pixel.
        bpd = bits_per_dim(-self.model.log_prob(self.x_val), self.x_val[0].numel())  # (N,)
        order = bpd.argsort()
        best, worst = order[:8], order[-8:]
        picture = make_grid(torch.cat([self.x_val[best], self.x_val[worst]]), nrow=8)
        caption = (f"held-out digits the flow finds likeliest (top row, {bpd[best].mean():.2f} bits/pixel on "
                   f"average) and least likely (bottom row, {bpd[worst].mean():.2f})")
        arts.append(Artifact("density", "image", picture, caption))
        return arts


RECIPE = RealNVPRecipe
