"""The conditional WGAN-GP recipe: a generator draws cartoon faces with the attributes it is
asked for (glasses, hair colour, smiling, hat), trained against a critic with the
Wasserstein loss and a gradient penalty. Views: samples, the attribute picker's faces and
the latent explorer (one direction added to faces in growing amounts)."""

from __future__ import annotations

import torch

from engine.configs.cwgan import DIRECTIONS, CWGANConfig
from engine.data.faces import ATTRIBUTE_VALUES, FACE_ATTRIBUTES, HAIR_COLOURS, random_attributes
from engine.device import autocast, fast_path
from engine.imaging import make_grid
from engine.models.cwgan import Critic, CWGANArgs, Generator, encode_labels, gradient_penalty
from engine.recipes.base import Artifact, Recipe, RunContext

N_EVAL = 256  # fixed (z, labels) pairs scored by the face classifier
N_PICKED = 16  # generated faces on the Picker tab, each beside a real face with the same labels
PICKED_ROW = 8  # tiles per row of the Picker: four (generated | real) pairs
EXPLORE_ROWS = 6  # faces in the latent explorer
EXPLORE_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # how much of the direction each column adds

# Latent explorer: direction name -> (attribute, value without it, value with it).
DIRECTION_LABELS = {
    "glasses": ("glasses", 0, 1),
    "smiling": ("smiling", 0, 1),
    "hat": ("hat", 0, 1),
    "blond to black": ("hair", HAIR_COLOURS.index("blond"), HAIR_COLOURS.index("black")),
}
assert set(DIRECTION_LABELS) == set(DIRECTIONS)


def picked_value(attribute: str, choice: str) -> int | None:
    """The label the picker asks for ("yes", "black", ...) as a class index; None for any."""
    if choice == "any":
        return None
    if attribute == "hair":
        return HAIR_COLOURS.index(choice)
    return 1 if choice == "yes" else 0


class CWGANRecipe(Recipe):
    checkpointed = ("G", "D", "opt_g", "opt_d", "data_gen")  # saved by Recipe.state_dict

    def __init__(self, ctx: RunContext, cfg: CWGANConfig):
        # All CPU threads (torch's default). Measured on an idle 2-core machine, a step of the
        # default preset takes 66 ms on one thread and 43 ms on two. When other
        # programs keep the cores busy, two threads wait on each other and a step can take
        # several times longer: the steps/s on the status line then show it.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, view_interval=3.0)
        dev = ctx.device
        a = CWGANArgs(size=cfg.size, noise_dim=cfg.noise_dim, width=cfg.width)
        self.G, self.D = Generator(a).to(dev), Critic(a).to(dev)
        if fast_path(dev):
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        # Adam with little momentum (beta1 = 0), as the WGAN-GP authors used: the critic's
        # target moves with the generator, and stale momentum overshoots it.
        fused = fast_path(dev)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.0, 0.9), fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.0, 0.9), fused=fused)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # batches; checkpointed
        # Fixed noise and labels for every view and score, so they compare like with like.
        g = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = torch.randn(N_EVAL, cfg.noise_dim, generator=g).to(dev)
        self.eval_labels = {k: v.to(dev) for k, v in random_attributes(N_EVAL, cfg.seed + 1).items()}
        self.classifier = None
        if ctx.need_data:
            from engine.data.faces import load_faces

            ctx.log(f"drawing {cfg.train_size:,} cartoon faces at {cfg.size}x{cfg.size} (cached after the first time)")
            images, labels = load_faces(cfg.train_size, cfg.seed, cfg.size)
            self.images = images.to(dev)  # uint8 (N, 3, S, S): a quarter of the memory of floats
            self.labels = {k: v.to(dev) for k, v in labels.items()}
            self.train_size = len(images)

    # -- training --
    def _batch_index(self) -> torch.Tensor:
        return torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)

    def _batch_labels(self, idx: torch.Tensor) -> torch.Tensor:
        return encode_labels({k: v[idx] for k, v in self.labels.items()})  # c: (B, 10)

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch of training faces in [-1, 1] and their label vectors c."""
        idx = self._batch_index()
        x = self.images[idx].float().div(127.5).sub(1.0)  # (B, 3, S, S)
        if fast_path(self.ctx.device):
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self._batch_labels(idx)

    def _step_critic(self) -> dict[str, torch.Tensor]:
        """Minimise critic(fake) - critic(real) + gp_weight * penalty: the critic learns to
        score real faces higher than generated ones with the same labels, by as much as a
        1-Lipschitz function can."""
        real, c = self._real_batch()
        z = torch.randn(self.batch_size, self.cfg.noise_dim, device=self.ctx.device)
        with autocast(self.ctx.device):
            with torch.no_grad():
                fake = self.G(z, c)  # the generator is not trained in this step
            score_real, score_fake = self.D(real, c).float(), self.D(fake, c).float()
            penalty = gradient_penalty(self.D, real, fake.to(real.dtype), c).float()
        distance = score_real.mean() - score_fake.mean()  # the critic's Wasserstein estimate
        loss = -distance + self.cfg.gp_weight * penalty
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"train/loss_critic": loss.detach(), "train/wasserstein": distance.detach(), "train/gp": penalty.detach()}

    def _step_generator(self) -> dict[str, torch.Tensor]:
        """Minimise -critic(G(z, c), c): raise the critic's score of generated faces. The
        labels are those of a real batch, so they follow the data's mix of attributes."""
        c = self._batch_labels(self._batch_index())  # labels only: no images needed
        z = torch.randn(self.batch_size, self.cfg.noise_dim, device=self.ctx.device)
        with autocast(self.ctx.device):
            loss = -self.D(self.G(z, c), c).float().mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"train/loss_g": loss.detach()}

    def train_step(self) -> dict[str, torch.Tensor]:
        """One generator update after critic_steps critic updates: the critic must stay
        close to its best for its score to be a useful distance to climb down."""
        for _ in range(self.cfg.critic_steps):
            metrics = self._step_critic()
        metrics.update(self._step_generator())
        return metrics

    def set_live(self, key, value) -> None:
        if key == "lr":
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = float(value)
        elif key not in ("critic_steps", "gp_weight", "explore") and not key.startswith("pick_"):
            raise KeyError(key)
        setattr(self.cfg, key, value)  # the picker and explorer are read by the next views

    # -- generating --
    @torch.inference_mode()
    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Faces (N, 3, S, S) in [0, 1] for noise z and label vectors c."""
        self.G.eval()
        with autocast(self.ctx.device):
            out = torch.cat([self.G(zc, cc).float() for zc, cc in zip(z.split(256), c.split(256))])
        self.G.train()
        return out.add(1).div(2).clamp(0, 1)

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n faces with random attributes, for export."""
        z = torch.randn(n, self.cfg.noise_dim, generator=generator).to(self.ctx.device)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        labels = {k: v.to(self.ctx.device) for k, v in random_attributes(n, seed).items()}
        return self.generate(z, encode_labels(labels))

    def picked_labels(self, n: int = N_PICKED) -> dict[str, torch.Tensor]:
        """Labels for the Picker tab: the picked value where one is chosen, otherwise each
        face's own fixed random label."""
        labels = {k: v[:n].clone() for k, v in self.eval_labels.items()}
        for name in FACE_ATTRIBUTES:
            value = picked_value(name, getattr(self.cfg, f"pick_{name}"))
            if value is not None:
                labels[name].fill_(value)
        return labels

    def explore_inputs(self, direction: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent arithmetic for the explorer: (z, c) for EXPLORE_ROWS faces without the
        attribute, each repeated once per alpha with c + alpha * d, where d = c(with) - c(without)
        is the direction of the attribute in the generator's input space. Returns
        (z (R*A, noise_dim), c (R*A, 10), the base labels' c (R, 10))."""
        attribute, without, with_ = DIRECTION_LABELS[direction]
        labels = {k: v[:EXPLORE_ROWS].clone() for k, v in self.eval_labels.items()}
        labels[attribute].fill_(without)
        base = encode_labels(labels)  # (R, 10)
        labels[attribute].fill_(with_)
        d = encode_labels(labels) - base  # the same vector for every row
        alphas = torch.tensor(EXPLORE_ALPHAS, device=base.device)
        c = (base[:, None, :] + alphas[None, :, None] * d[:, None, :]).flatten(0, 1)  # row-major
        z = self.fixed_z[:EXPLORE_ROWS].repeat_interleave(len(EXPLORE_ALPHAS), dim=0)
        return z, c, base

    # -- evaluation and views --
    @staticmethod
    def at_32(faces: torch.Tensor) -> torch.Tensor:
        """Faces averaged down to 32x32 (the 64-pixel preset): the views keep the
        dashboard's tile layout and one cached classifier judges every size."""
        return faces if faces.shape[-1] == 32 else torch.nn.functional.adaptive_avg_pool2d(faces, 32)

    def view_grid(self, faces: torch.Tensor, nrow: int):
        return make_grid(self.at_32(faces), nrow=nrow)

    def _classifier(self):
        if self.classifier is None:
            from engine.metrics.face_classifier import get_face_classifier

            self.classifier = get_face_classifier(self.ctx.device, size=32, log=self.ctx.log)
        return self.classifier

    def evaluate(self) -> dict[str, float]:
        """Conditional accuracy: the fraction of generated faces the attribute classifier
        (trained by our code on real faces) sees with the attribute they were asked for."""
        from engine.metrics.face_classifier import attribute_accuracy

        faces = self.at_32(self.generate(self.fixed_z, encode_labels(self.eval_labels)))
        acc = attribute_accuracy(self._classifier(), faces, self.eval_labels)
        return {f"quality/{name}": value for name, value in acc.items()}

    def samples(self) -> list[Artifact]:
        out = [Artifact("samples", "image",
                        self.view_grid(self.generate(self.fixed_z[:64], encode_labels(self.eval_labels)[:64]), nrow=8),
                        "64 faces from fixed noise and labels")]
        out.append(self._picked())
        out.append(self._explorer())
        return out

    def _picked(self) -> Artifact:
        """The generator's faces for the picked labels, each beside a real face drawn by the
        data's own code with the same labels (pairs of tiles, kept whole on a small
        screen): what a face with those attributes should look like, to judge by eye."""
        from engine.data.faces import draw_faces
        from engine.metrics.face_classifier import attribute_accuracy

        labels = self.picked_labels()
        faces = self.at_32(self.generate(self.fixed_z[:N_PICKED], encode_labels(labels)))
        real = draw_faces({k: v.cpu() for k, v in labels.items()}, self.cfg.seed + 3)
        real = (real.float() / 255).to(faces.device)  # uint8 -> [0, 1], as generated
        pairs = torch.stack([faces, real], dim=1).flatten(0, 1)  # generated 0, real 0, generated 1, ...
        chosen = {name: getattr(self.cfg, f"pick_{name}") for name in FACE_ATTRIBUTES}
        asked = {name: labels[name] for name, choice in chosen.items() if choice != "any"}
        what = ", ".join(f"{name} {choice}" for name, choice in chosen.items() if choice != "any") or "any attributes"
        caption = f"{what}: {N_PICKED} pairs, generated (left) | real with the same labels (right)"
        if asked:
            acc = attribute_accuracy(self._classifier(), faces, asked)
            agree = " · ".join(f"{name} {round(v * N_PICKED)}/{N_PICKED}" for name, v in acc.items())
            caption += f" · the classifier agrees on the generated: {agree}"
        return Artifact("picked", "image", self.view_grid(pairs, nrow=PICKED_ROW), caption)

    def _explorer(self) -> Artifact:
        from engine.metrics.face_classifier import attribute_probs

        direction = self.cfg.explore
        attribute, _, with_ = DIRECTION_LABELS[direction]
        z, c, _ = self.explore_inputs(direction)
        faces = self.at_32(self.generate(z, c))  # (R*A, 3, 32, 32), row-major
        p = attribute_probs(self._classifier(), faces)[attribute][:, with_].view(EXPLORE_ROWS, -1).mean(0)
        name = ATTRIBUTE_VALUES[attribute][with_] if attribute != "hair" else "black hair"
        steps = " ".join(f"{a:g}:{q:.2f}" for a, q in zip(EXPLORE_ALPHAS, p.tolist()))
        caption = f"face + α·({direction} direction), α = 0 … {EXPLORE_ALPHAS[-1]:g} · P({name}) by α: {steps}"
        return Artifact("explore", "image", self.view_grid(faces, nrow=len(EXPLORE_ALPHAS)), caption)


RECIPE = CWGANRecipe
