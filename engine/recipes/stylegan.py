"""The style-based generator recipe: a mapping network, per-layer styles (AdaIN) and noise
inputs draw cartoon faces, trained against the conditional GAN lesson's critic (without
labels) with the Wasserstein loss and gradient penalty, with style-mixing regularisation.

Views: samples; the style-mixing grid (coarse styles from the row's face, fine ones from
the column's) with the face classifier's verdict on which source each attribute follows;
the noise view (one w, several noise draws, their per-pixel spread, and no noise).
Scores: how far generated faces are from real ones in the face classifier's features (a
Fréchet distance, the idea of FID), and how often the hat follows the coarse styles when
mixed."""

from __future__ import annotations

import torch

from engine.configs.stylegan import COARSE, NOISE_LAYERS, StyleGANConfig
from engine.data.faces import FACE_ATTRIBUTES
from engine.imaging import make_grid
from engine.models.cwgan import gradient_penalty
from engine.models.ema import EMA
from engine.models.stylegan import (N_LAYERS, Critic, Generator, StyleGANArgs, layers_up_to, make_noise,
                                    mix_styles)
from engine.recipes.base import Artifact, Recipe, RunContext

N_EVAL = 256  # fixed faces scored by the face classifier
N_MIX = 128  # fixed (coarse, fine) pairs whose mixes are scored
MIX_ROWS, MIX_COLS = 4, 5  # the mixing grid: row faces give coarse styles, column faces fine ones
NOISE_ROWS, NOISE_DRAWS = 4, 5  # the noise view: faces, and noise draws per face
MIN_PAIRS = 8  # an attribute's coarse/fine shares are shown when at least this many pairs differ in it
SPREAD_FULL = 0.2  # the noise view's spread map is white at this spread (of the pixel range) and above:
# a fixed scale, so the maps of different noise_in settings compare (scaled to its own brightest
# pixel, the coarse layers' map of spreads below 0.02 looked as bright as the fine layers')


def coarse_layers(choice: str) -> int:
    """'8x8' -> 4: the layers the row (coarse) face drives."""
    if choice not in COARSE:
        raise ValueError(f"coarse must be one of {', '.join(COARSE)}; got {choice!r}")
    return layers_up_to(int(choice.split("x")[0]))


def noise_layers(choice: str) -> range:
    """Which layers get fresh noise on the Noise tab: 'all', '4x4-8x8' (0-3), '16x16-32x32' (4-7)."""
    return {"all": range(N_LAYERS), "4x4-8x8": range(0, 4), "16x16-32x32": range(4, N_LAYERS)}[choice]


def heat(t: torch.Tensor) -> torch.Tensor:
    """Values (N, 1, H, W) in [0, 1] -> a black-red-yellow-white picture (N, 3, H, W)."""
    return torch.cat([(3 * t).clamp(0, 1), (3 * t - 1).clamp(0, 1), (3 * t - 2).clamp(0, 1)], dim=1)


def mixing_agreement(pred_coarse: dict, pred_fine: dict, pred_mix: dict) -> dict[str, tuple[float, float, int]]:
    """Per attribute, over the pairs whose two sources the classifier reads differently:
    (share of mixes that side with the coarse source, share with the fine source, pairs).
    A share near 1 says the layers that source drives decide that attribute."""
    out = {}
    for name in FACE_ATTRIBUTES:
        differ = pred_coarse[name] != pred_fine[name]
        n = int(differ.sum())
        if n == 0:
            out[name] = (float("nan"), float("nan"), 0)
            continue
        coarse = (pred_mix[name] == pred_coarse[name])[differ].float().mean().item()
        fine = (pred_mix[name] == pred_fine[name])[differ].float().mean().item()
        out[name] = (coarse, fine, n)
    return out


def classifier_features(clf, faces: torch.Tensor) -> torch.Tensor:
    """The face classifier's own view of faces (N, 3, 32, 32) in [0, 1]: its last feature
    maps (N, 64, 4, 4) averaged over the 16 positions -> (N, 64), in float64."""
    with torch.inference_mode():
        device = next(clf.parameters()).device
        was_training = clf.training
        clf.eval()
        h = torch.cat([clf.trunk[:-2](x.to(device, torch.float32)).mean((2, 3)) for x in faces.split(512)])
        clf.train(was_training)
    return h.double().cpu()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (N, D):

        |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)

    0 when the two sets have the same mean and covariance. FID is this on an ImageNet
    network's features; here the features are the face classifier's, so it measures how
    real the faces look to a network that has only seen cartoon faces."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    e, v = torch.linalg.eigh(s_a)
    root_a = (v * e.clamp_min(0).sqrt()) @ v.T  # S_a^1/2
    m = root_a @ s_b @ root_a
    cross = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()  # tr((...)^1/2)
    return float((mu_a - mu_b).square().sum() + s_a.trace() + s_b.trace() - 2 * cross)


class StyleGANRecipe(Recipe):
    checkpointed = ("G", "D", "ema", "opt_g", "opt_d", "data_gen")  # saved by Recipe.state_dict

    def __init__(self, ctx: RunContext, cfg: StyleGANConfig):
        # One CPU thread: its convolutions have 8 to 32 channels, too few to share out. On a
        # 2-core machine that other programs kept busy (load 9), a step of the default preset
        # took 0.8 s of wall time on one thread and 5.8 s on two, the threads waiting on each other.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, cpu_threads=1, view_interval=3.0)
        dev = ctx.device
        self.args = StyleGANArgs(z_dim=cfg.z_dim, w_dim=cfg.w_dim, mapping_layers=cfg.mapping_layers,
                                 width=cfg.width, max_channels=4 * cfg.width)
        self.G, self.D = Generator(self.args).to(dev), Critic(cfg.critic_width).to(dev)
        self.ema = EMA(self.G, cfg.ema_decay)  # the views and scores draw from the averaged weights
        # Adam with beta1 = 0 as in the conditional GAN lesson. The mapping network learns at a
        # tenth of the rate (StyleGAN used a hundredth): w moves under every layer at once, so
        # a small change there is a large change of the picture.
        mapping = list(self.G.mapping.parameters())
        rest = [p for n, p in self.G.named_parameters() if not n.startswith("mapping.")]
        self.opt_g = torch.optim.Adam([{"params": rest, "lr": cfg.lr},
                                       {"params": mapping, "lr": cfg.lr * 0.1, "mapping": True}], betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # batches; checkpointed
        # Fixed noise z and noise maps for every view and score, so they compare like with like.
        g = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = torch.randn(N_EVAL, cfg.z_dim, generator=g).to(dev)
        self.fixed_noise = make_noise(N_EVAL, dev, generator=g)
        self.mix_z = torch.randn(2, N_MIX, cfg.z_dim, generator=g).to(dev)  # (coarse, fine) sources
        self.classifier = None
        self.real_features = None  # the classifier's features of real faces: what to match
        if ctx.need_data:
            from engine.data.faces import load_faces

            ctx.log(f"drawing {cfg.train_size:,} cartoon faces at 32x32 (cached after the first time)")
            images, _ = load_faces(cfg.train_size, cfg.seed, 32)  # labels unused: no conditioning
            self.images = images.to(dev)  # uint8 (N, 3, 32, 32)
            self.train_size = len(images)

    # -- training --
    def _real_batch(self) -> torch.Tensor:
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        return self.images[idx].float().div(127.5).sub(1.0)  # (B, 3, 32, 32) in [-1, 1]

    def training_styles(self, n: int) -> torch.Tensor:
        """ws (n, 8, w_dim) for a training batch. With probability mixing_prob a face takes
        two z's and switches from the first w to the second at a random layer (1..7): style
        mixing regularisation, which stops neighbouring layers from relying on sharing a w,
        so a style at one layer means the same whatever the others are."""
        dev = self.ctx.device
        w1 = self.G.mapping(torch.randn(n, self.cfg.z_dim, device=dev))  # (n, w_dim)
        if self.cfg.mixing_prob <= 0:
            return w1[:, None, :].expand(-1, N_LAYERS, -1)
        w2 = self.G.mapping(torch.randn(n, self.cfg.z_dim, device=dev))
        cross = torch.randint(1, N_LAYERS, (n,), device=dev)  # first layer that takes w2
        mixed = torch.rand(n, device=dev) < self.cfg.mixing_prob
        cross = torch.where(mixed, cross, torch.full_like(cross, N_LAYERS))  # N_LAYERS: w1 throughout
        take_first = torch.arange(N_LAYERS, device=dev)[None, :] < cross[:, None]  # (n, 8)
        return torch.where(take_first[:, :, None], w1[:, None, :], w2[:, None, :])

    def _step_critic(self) -> dict[str, torch.Tensor]:
        """Minimise critic(fake) - critic(real) + gp_weight * penalty (the Wasserstein loss
        with a gradient penalty of the conditional GAN lesson, with no labels)."""
        real = self._real_batch()
        with torch.no_grad():
            fake = self.G(self.training_styles(self.batch_size))  # the generator is not trained here
        distance = self.D(real).mean() - self.D(fake).mean()  # the critic's Wasserstein estimate
        penalty = gradient_penalty(self.D, real, fake)
        loss = -distance + self.cfg.gp_weight * penalty
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"train/loss_critic": loss.detach(), "train/wasserstein": distance.detach(), "train/gp": penalty.detach()}

    def _step_generator(self) -> dict[str, torch.Tensor]:
        """Minimise -critic(G(ws)): raise the critic's score of generated faces."""
        loss = -self.D(self.G(self.training_styles(self.batch_size))).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.ema.update(self.G)
        return {"train/loss_g": loss.detach()}

    def train_step(self) -> dict[str, torch.Tensor]:
        for _ in range(self.cfg.critic_steps):
            metrics = self._step_critic()
        metrics.update(self._step_generator())
        return metrics

    def set_live(self, key, value) -> None:
        if key == "lr":
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = float(value) * (0.1 if group.get("mapping") else 1.0)
        elif key not in ("critic_steps", "gp_weight", "mixing_prob", "coarse", "face_set", "noise_in"):
            raise KeyError(key)
        setattr(self.cfg, key, value)  # the next step and views read it

    # -- generating (from the averaged weights) --
    @torch.inference_mode()
    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, z_dim) -> w (N, w_dim) by the averaged mapping network."""
        return self.ema.model.mapping(z)

    @torch.inference_mode()
    def render(self, ws: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        """Styles (N, 8, w_dim) and noise maps -> faces (N, 3, 32, 32) in [0, 1]."""
        return self.ema.model(ws, noise).add(1).div(2).clamp(0, 1)

    def noise_for(self, n: int, offset: int = 0) -> list[torch.Tensor]:
        """The fixed noise maps of faces offset .. offset + n - 1."""
        return [m[offset:offset + n] for m in self.fixed_noise]

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.cfg.z_dim, generator=generator).to(self.ctx.device)
        w = self.styles(z)
        return self.render(w[:, None, :].expand(-1, N_LAYERS, -1), make_noise(n, self.ctx.device, generator))

    def mixed(self, z_coarse: torch.Tensor, z_fine: torch.Tensor, crossover: int,
              noise: list[torch.Tensor]) -> torch.Tensor:
        """Faces whose first ``crossover`` layers take z_coarse's w and the rest z_fine's."""
        return self.render(mix_styles(self.styles(z_coarse), self.styles(z_fine), crossover), noise)

    # -- evaluation and views --
    def _classifier(self):
        if self.classifier is None:
            from engine.metrics.face_classifier import get_face_classifier

            self.classifier = get_face_classifier(self.ctx.device, size=32, log=self.ctx.log)
        return self.classifier

    def _real_features(self) -> torch.Tensor:
        """The classifier's features of N_EVAL training faces (once): the reference."""
        if self.real_features is None:
            if self.ctx.need_data:
                real = self.images[:N_EVAL].float().div(255)
            else:  # sampling from a checkpoint: draw the same faces instead of loading the set
                from engine.data.faces import make_faces

                real = make_faces(N_EVAL, self.cfg.seed, 32)[0].float().div(255)
            self.real_features = classifier_features(self._classifier(), real)
        return self.real_features

    def mixing_scores(self, coarse: str) -> dict[str, tuple[float, float, int]]:
        """The classifier's reading of N_MIX fixed (coarse, fine) pairs and of their mixes
        with the coarse source's styles up to ``coarse``: mixing_agreement per attribute."""
        from engine.metrics.face_classifier import predict_attributes

        crossover, noise = coarse_layers(coarse), self.noise_for(N_MIX)
        a, b = self.mix_z
        clf = self._classifier()
        pred = [predict_attributes(clf, self.mixed(a, b, k, noise)) for k in (N_LAYERS, 0, crossover)]
        return mixing_agreement(*pred)

    def evaluate(self) -> dict[str, float]:
        """feature_distance: Fréchet distance between the face classifier's features of 256
        generated faces (fixed z and noise) and of 256 training faces; hat_coarse: in 8x8
        mixes whose sources differ in hat, the share that take the coarse source's hat."""
        ws = self.styles(self.fixed_z)[:, None, :].expand(-1, N_LAYERS, -1)
        fake = classifier_features(self._classifier(), self.render(ws, self.fixed_noise))
        out = {"quality/feature_distance": frechet_distance(self._real_features(), fake)}
        hat = self.mixing_scores("8x8")["hat"][0]  # always at 8x8, whatever the Mixing tab shows
        if hat == hat:  # not NaN: some pairs differ in hat
            out["quality/hat_coarse"] = hat
        return out

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        ws = self.styles(self.fixed_z[:64])[:, None, :].expand(-1, N_LAYERS, -1)
        out = [Artifact("samples", "image", make_grid(self.render(ws, self.noise_for(64)), nrow=8),
                        "64 faces from fixed z and noise (averaged weights)")]
        out.append(self.mixing_grid(self.cfg.face_set, self.cfg.coarse))
        out.append(self.noise_view(self.cfg.face_set, self.cfg.noise_in))
        return out

    def _set_z(self, face_set: int, n: int) -> torch.Tensor:
        """n faces' z for one face set: its own seed, so each set is a new cast of faces."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + 17 * int(face_set))
        return torch.randn(n, self.cfg.z_dim, generator=g).to(self.ctx.device), g

    @torch.inference_mode()
    def mixing_grid(self, face_set: int, coarse: str) -> Artifact:
        """A (1 + MIX_ROWS) x (1 + MIX_COLS) grid: the top row shows the fine sources, the
        left column the coarse sources, and tile (r, c) the face with row r's styles up to
        ``coarse`` and column c's above. The same noise everywhere."""
        crossover = coarse_layers(coarse)
        z, _ = self._set_z(face_set, MIX_ROWS + MIX_COLS)
        rows, cols = z[:MIX_ROWS], z[MIX_ROWS:]
        w_rows, w_cols = self.styles(rows), self.styles(cols)
        noise = [m[:1].expand(MIX_ROWS * MIX_COLS, -1, -1, -1) for m in self.fixed_noise]  # one draw for all
        w_r = w_rows.repeat_interleave(MIX_COLS, dim=0)  # row-major pairs
        w_c = w_cols.repeat(MIX_ROWS, 1)
        mixes = self.render(mix_styles(w_r, w_c, crossover), noise).view(MIX_ROWS, MIX_COLS, 3, 32, 32)
        head = self.render(w_cols[:, None, :].expand(-1, N_LAYERS, -1), [m[:MIX_COLS] for m in noise])
        side = self.render(w_rows[:, None, :].expand(-1, N_LAYERS, -1), [m[:MIX_ROWS] for m in noise])
        blank = torch.full((1, 3, 32, 32), 0.15, device=head.device)
        tiles = [blank, head] + [torch.cat([side[r:r + 1], mixes[r]]) for r in range(MIX_ROWS)]
        grid = make_grid(torch.cat(tiles), nrow=MIX_COLS + 1)
        agree = self.mixing_scores(coarse)
        who = " · ".join(f"{name} {c:.2f}/{f:.2f}" for name, (c, f, n) in agree.items() if n >= MIN_PAIRS) or \
            "too few pairs differ yet"
        caption = (f"rows: coarse styles (layers up to {coarse}) · columns: fine styles · "
                   f"each attribute follows coarse/fine source in {N_MIX} mixes: {who}")
        return Artifact("mixing", "image", grid, caption)

    @torch.inference_mode()
    def noise_view(self, face_set: int, noise_in: str) -> Artifact:
        """NOISE_ROWS faces, one w each: NOISE_DRAWS columns of fresh noise in the layers
        ``noise_in`` (none elsewhere), then the per-pixel standard deviation over those
        draws (bright: where the noise changes the picture), then the face with no noise."""
        z, g = self._set_z(face_set, NOISE_ROWS)
        w = self.styles(z)[:, None, :].expand(-1, N_LAYERS, -1)
        keep = noise_layers(noise_in)
        draws = torch.stack([self.render(w, make_noise(NOISE_ROWS, self.ctx.device, g, keep))
                             for _ in range(NOISE_DRAWS)], dim=1)  # (R, D, 3, 32, 32)
        std = draws.std(dim=1).mean(1, keepdim=True)  # (R, 1, 32, 32): spread per pixel
        top = std.max().item()
        quiet = self.render(w, make_noise(NOISE_ROWS, self.ctx.device, g, range(0)))  # every noise map zero
        tiles = torch.cat([draws, heat((std / SPREAD_FULL).clamp(0, 1))[:, None], quiet[:, None]], dim=1).flatten(0, 1)
        caption = (f"each row one w · {NOISE_DRAWS} noise draws in layers {noise_in}, their per-pixel spread "
                   f"(white = {SPREAD_FULL:g} or more; here up to {top:.3f}, mean {std.mean().item():.3f}), "
                   f"then no noise")
        return Artifact("noise", "image", make_grid(tiles, nrow=NOISE_DRAWS + 2), caption)

    # -- the learner's requests --
    def interact(self, name: str, args: dict):
        """"mix": the mixing grid for face set ``face_set`` and crossover ``coarse``."""
        if name != "mix":
            raise ValueError(f"this lesson has no {name!r} action (it has: mix)")
        face_set = args.get("face_set", self.cfg.face_set)
        if isinstance(face_set, bool) or not isinstance(face_set, (int, str)) or str(face_set).strip() not in \
                [str(s) for s in range(1, 1000)]:
            raise ValueError(f"face_set must be a whole number from 1 to 999; got {face_set!r}")
        coarse = args.get("coarse", self.cfg.coarse)
        if coarse not in COARSE:
            raise ValueError(f"coarse must be one of {', '.join(COARSE)}; got {coarse!r}")
        yield self.mixing_grid(int(str(face_set).strip()), coarse)


assert set(NOISE_LAYERS) == {"all", "4x4-8x8", "16x16-32x32"}
RECIPE = StyleGANRecipe
