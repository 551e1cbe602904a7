"""The "Start here" recipe: a classifier and a generative model learn the same labelled
points side by side, and the views show what each one knows.

Training is the loop every lesson uses, written out once in plain sight (train_step):
take a batch of tensors, run the forward pass, compute a loss, let autograd fill in the
gradients (backward), and let the optimiser move the parameters (step). Both models take
one such step on the same batch, each with its own Adam.

The data come from a known mixture (engine/data/classes2d.py), so the true density and
the best possible classifier are known too: the curves put the learned log-likelihood
beside the true one, and the classifier's accuracy beside the Bayes-optimal one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.configs.start import StartConfig
from engine.data.classes2d import CENTRES_PER_CLASS, CLASS_NAMES, N_CLASSES, class_centres, sample_classes
from engine.imaging import draw_points
from engine.models.start import ClassMixture, Classifier, classifier_loss, generative_loss
from engine.recipes.base import Artifact, Recipe, RunContext, warmup_cosine

N_VAL = 2000  # held-out points for the log-likelihood and the accuracies
N_SHOW = 600  # points drawn in each picture
PX, EXTENT = 128, 3.2  # a picture: PX pixels across [-EXTENT, EXTENT]^2, +y up
DENSITY_RANGE = 8.0  # nats of log-density shown below the highest value; lower is drawn black
LR_FLOOR = 0.1  # the cosine ends at this fraction of lr
START_STD = 0.5  # each mixture component's spread when training starts
BOUNDARY_BAND = 0.06  # the boundary line: where the classifier's p(orange | x) is within this of 1/2
# Points the classifier panel asks both models about: a blue centre, an orange centre, a
# spot between the two, the empty middle of the ring, and a spot far from every point.
PROBES = ((2.0, 0.0), (1.41, 1.41), (1.9, 0.75), (0.0, 0.0), (4.0, 4.0))

# Colours (RGB), blue class first: bright for points, dark for the classifier's two sides.
DOT = np.array([(90, 165, 255), (255, 160, 60)], dtype=float)
SIDE = np.array([(22, 44, 86), (86, 48, 16)], dtype=float)
BG, FRAME, DATA, LINE = (12, 14, 20), (40, 44, 56), (70, 76, 90), (235, 235, 235)


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One gradient step: clear the old gradients, let autograd compute d loss / d p for
    every parameter p that the loss was computed from (backward), then let the optimiser
    move each p against its gradient (step)."""
    opt.zero_grad(set_to_none=True)  # .grad adds up otherwise: start from nothing
    loss.backward()  # autograd: walks the graph the forward pass recorded, back to the parameters
    opt.step()  # Adam: p <- p - lr * (a running average of the gradient, scaled per parameter)


def known_mixture(noise: float) -> ClassMixture:
    """The mixture the data were drawn from, as a ClassMixture: equal classes, 4 equal
    components each, on the true centres, with spread ``noise``. Its log_prob is the true
    density, and its posterior the Bayes-optimal classifier."""
    truth = ClassMixture(N_CLASSES, CENTRES_PER_CLASS)
    with torch.no_grad():
        truth.means.copy_(class_centres())
        truth.log_std.fill_(math.log(noise))
    return truth


def plane(px: int = PX, extent: float = EXTENT) -> torch.Tensor:
    """The centres of a px x px picture's pixels as points (px * px, 2), row by row from
    the top (+y) down."""
    axis = torch.linspace(-extent, extent, px)
    gy, gx = torch.meshgrid(-axis, axis, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


class StartRecipe(Recipe):
    checkpointed = ("classifier", "mixture", "opt_c", "opt_g", "data_gen")  # saved by Recipe.state_dict
    nan_hint = "lower lr (try a tenth) and start again."

    def __init__(self, ctx: RunContext, cfg: StartConfig):
        # Models this small spend more time coordinating threads than computing.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, train_size=cfg.train_size,
                         cpu_threads=1, view_interval=0.5, unit="points")
        dev = ctx.device
        # The data: tensors of points (N, 2) and class indices (N,), a training set and a
        # held-out set from separate random streams.
        x, y = sample_classes(cfg.train_size, torch.Generator().manual_seed(cfg.seed), cfg.noise)
        self.x_train, self.y_train = x.to(dev), y.to(dev)
        x, y = sample_classes(N_VAL, torch.Generator().manual_seed(cfg.seed + 1), cfg.noise)
        self.x_val, self.y_val = x.to(dev), y.to(dev)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # which points each batch takes; checkpointed

        self.classifier = Classifier(N_CLASSES, cfg.hidden).to(dev)
        self.mixture = ClassMixture(N_CLASSES, cfg.components)
        self.mixture.start_at(x=self.x_train.cpu(), y=self.y_train.cpu(),
                              generator=torch.Generator().manual_seed(cfg.seed + 3), std=START_STD)
        self.mixture.to(dev)
        self.opt_c = torch.optim.Adam(self.classifier.parameters(), lr=cfg.lr)
        self.opt_g = torch.optim.Adam(self.mixture.parameters(), lr=cfg.lr)
        self.steps_done = 0

        self.truth = known_mixture(cfg.noise).to(dev)
        with torch.no_grad():
            self.true_log_px = self.truth.log_prob(self.x_val).mean().item()
            self.bayes_accuracy = self.accuracy(self.truth.posterior(self.x_val))
        n_c = sum(p.numel() for p in self.classifier.parameters())
        n_g = sum(p.numel() for p in self.mixture.parameters())
        ctx.log(f"{cfg.train_size:,} training and {N_VAL:,} held-out points, noise {cfg.noise:g}; classifier: "
                f"{n_c:,} parameters, generative model: {n_g:,} ({cfg.components} Gaussians per class)")

    # -- training --
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """batch_size training points, chosen at random: x (B, 2) and y (B,)."""
        idx = torch.randint(len(self.x_train), (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        return self.x_train[idx], self.y_train[idx]

    def train_step(self) -> dict[str, torch.Tensor]:
        lr = warmup_cosine(self.steps_done, self.cfg.lr, 0, self.cfg.steps, LR_FLOOR)
        for opt in (self.opt_c, self.opt_g):
            for group in opt.param_groups:
                group["lr"] = lr
        x, y = self.batch()  # (B, 2), (B,)
        loss_c = classifier_loss(self.classifier, x, y)  # forward pass and loss: -log p(y | x)
        descend(self.opt_c, loss_c)  # backward and optimiser step
        loss_g = generative_loss(self.mixture, x, y)  # forward pass and loss: -log p(x, y)
        descend(self.opt_g, loss_g)
        self.steps_done += 1
        return {"train/loss_classifier": loss_c.detach(), "train/loss_generative": loss_g.detach()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            self.cfg.lr = float(value)  # the schedule reads it at the next step
        elif key == "sample_class":
            self.cfg.sample_class = str(value)
        else:
            raise KeyError(key)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])

    # -- evaluation --
    def accuracy(self, log_p_y: torch.Tensor) -> float:
        """The share of held-out points whose likeliest class (log_p_y: (N, C)) is their own."""
        return (log_p_y.argmax(dim=1) == self.y_val).float().mean().item()

    @torch.inference_mode()
    def evaluate(self) -> dict[str, float]:
        log_px = self.mixture.log_prob(self.x_val).mean().item()
        return {
            "val/log_px": log_px,  # the generative model's mean log p(x) per held-out point, nats
            "val/log_px_true": self.true_log_px,  # the true density's on the same points: the ceiling
            "val/gap": self.true_log_px - log_px,  # nats per point the model still loses to the truth
            "val/accuracy": self.accuracy(self.classifier(self.x_val)),
            "val/accuracy_generative": self.accuracy(self.mixture.posterior(self.x_val)),  # by Bayes' rule
            "val/accuracy_bayes": self.bayes_accuracy,  # the best any classifier can do on these points
        }

    # -- views (fixed seeds and held-out data: no training random stream is touched) --
    def new_points(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n new points from the generative model, of the class sample_class picks (or y ~ p(y))."""
        choice = self.cfg.sample_class
        y = None if choice == "both" else torch.full((n,), CLASS_NAMES.index(choice), dtype=torch.long)
        return self.mixture.sample(n, generator, y)

    def picture(self, base: np.ndarray | None = None) -> np.ndarray:
        """A dark square (or ``base``) with a frame: uint8 (PX, PX, 3)."""
        image = np.empty((PX, PX, 3), dtype=np.uint8)
        image[:] = BG if base is None else base
        image[0, :] = image[-1, :] = image[:, 0] = image[:, -1] = FRAME
        return image

    def draw_classes(self, image: np.ndarray, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        """Points x (N, 2) in their class's colour (y: (N,))."""
        for c in range(N_CLASSES):
            draw_points(image, x[y == c], tuple(int(v) for v in DOT[c]), EXTENT, border=1)
        return image

    def samples_picture(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        image = self.picture()
        draw_points(image, self.x_val[:N_SHOW], DATA, EXTENT, border=1)
        return self.draw_classes(image, x, y)

    def boundary_picture(self) -> np.ndarray:
        """The classifier's p(orange | x) over the plane: the blue side dark blue, the orange
        side dark brown, the boundary (p near 1/2) a white line, held-out points on top."""
        grid = plane().to(self.ctx.device)
        p = torch.softmax(self.classifier(grid), dim=1)[:, 1].view(PX, PX, 1).float().cpu().numpy()  # (PX, PX, 1)
        base = SIDE[0] + (SIDE[1] - SIDE[0]) * p
        base[np.abs(p[..., 0] - 0.5) < BOUNDARY_BAND] = LINE
        image = self.picture(base.astype(np.uint8))
        return self.draw_classes(image, self.x_val[:N_SHOW], self.y_val[:N_SHOW])

    def density_map(self, model: ClassMixture, grid: torch.Tensor, top: float) -> np.ndarray:
        """One model's log p(x, y) as colour: brightness from log p(x) (black DENSITY_RANGE
        nats below ``top``, full at ``top``), hue from p(y | x) (blue to orange)."""
        joint = model.log_joint(grid).float()  # (P, C)
        log_px = torch.logsumexp(joint, dim=1)  # (P,)
        share = torch.softmax(joint, dim=1).cpu().numpy()  # (P, C): p(y | x)
        bright = ((log_px - top + DENSITY_RANGE) / DENSITY_RANGE).clamp(0, 1).cpu().numpy()[:, None]
        colour = bright * (share @ DOT)  # (P, 3)
        return self.picture(colour.reshape(PX, PX, 3).round().astype(np.uint8))

    def density_picture(self) -> tuple[np.ndarray, float]:
        """The learned density (left) beside the true one (right), on one scale; and its top."""
        grid = plane().to(self.ctx.device)
        top = max(self.mixture.log_prob(grid).max().item(), self.truth.log_prob(grid).max().item())
        gap = np.zeros((PX, 4, 3), dtype=np.uint8)
        maps = [self.density_map(m, grid, top) for m in (self.mixture, self.truth)]
        return np.concatenate([maps[0], gap, maps[1]], axis=1), top

    def classifier_text(self) -> str:
        """The classifier's panel: why it has nothing to sample, then both models' answers
        about a few fixed points."""
        probes = torch.tensor(PROBES, device=self.ctx.device)
        p_clf = torch.softmax(self.classifier(probes), dim=1)[:, 0].tolist()
        p_gen = self.mixture.posterior(probes).exp()[:, 0].tolist()
        log_px = self.mixture.log_prob(probes).tolist()
        # Rows start with a character, not a space: a text panel may drop leading spaces.
        rows = "\n".join(f"{f'{a:.1f}, {b:.1f}':<10} {c:4.2f}  {g:4.2f}  {lp:7.1f}"
                         for (a, b), c, g, lp in zip(PROBES, p_clf, p_gen, log_px))
        return ("Nothing to sample. The classifier learned p(y | x) only: hand it a point and it names a "
                "class. It has no p(x), no idea where points lie, so it has no new point to give.\n\n"
                "Both models, asked about the same points: p(blue | x) by the classifier (clf.) and by "
                "the mixture (mix.), and the mixture's log p(x):\n"
                "point      clf.  mix.  log p(x)\n" + rows)

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        x, y = self.new_points(N_SHOW, torch.Generator().manual_seed(self.cfg.seed + 4))
        which = ("y ~ p(y), then a component k, then x" if self.cfg.sample_class == "both"
                 else f"class {self.cfg.sample_class} only: x ~ p(x | y)")
        density, top = self.density_picture()
        return [
            Artifact("samples", "image", self.samples_picture(x, y),
                     f"{N_SHOW} new points from the generative model ({which}); held-out data grey"),
            Artifact("classifier", "data", {"text": self.classifier_text()}, "the classifier"),
            Artifact("boundary", "image", self.boundary_picture(),
                     "classifier: p(y | x) over the plane, the boundary white, held-out points on top. "
                     "It has no p(x): nothing to sample from."),
            Artifact("density", "image", density,
                     f"log p(x): learned (left) | true (right); black at {top - DENSITY_RANGE:.1f} nats, "
                     f"brightest at {top:.1f}; hue: p(y | x)"),
        ]

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n new points drawn as one picture (1, 3, PX, PX) in [0, 1], for export."""
        with torch.inference_mode():
            x, y = self.new_points(n, generator)
            image = self.draw_classes(self.picture(), x, y)
        return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


RECIPE = StartRecipe
