"""The CycleGAN recipe: turn blond hair black and black hair blond on cartoon faces, learned
from two unpaired piles of faces (no face is ever shown with both hair colours).

Two generators translate (G_AB: blond -> black, G_BA: black -> blond) and two
discriminators judge (D_A: is this a real blond face? D_B: a real black-haired one?). The
views show held-out faces there and back again: A | G_AB(A) | G_BA(G_AB(A)).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from engine.configs.cyclegan import CycleGANConfig
from engine.data.faces import HAIR_COLOURS, faces_with
from engine.device import autocast, fast_path
from engine.imaging import make_grid
from engine.models.cyclegan import CycleGANArgs, Discriminator, Generator
from engine.recipes.base import Artifact, Recipe, RunContext

BLOND, BLACK = HAIR_COLOURS.index("blond"), HAIR_COLOURS.index("black")
N_EVAL = 128  # held-out faces per domain scored by the face classifier
N_SHOW = 8  # held-out faces per domain shown in the views (8 triples each)
VIEW_PX = 32  # the views show faces at this size (the dashboard's tile pitch assumes it)
KEPT = ("glasses", "smiling", "hat")  # attributes a hair-colour change must leave alone


def domain_seeds(seed: int) -> dict[str, int]:
    """Face seeds for each domain and split. Every pile has its own seed, so no face of A has
    a twin in B: the data is unpaired. (They also differ from the face classifier's seeds.)"""
    base = 1_000 + 4 * int(seed)
    return {"train_a": base, "train_b": base + 1, "val_a": base + 2, "val_b": base + 3}


def draw_domain(hair: int, n: int, seed: int, size: int) -> torch.Tensor:
    """n faces with the given hair colour as floats (n, 3, size, size) in [-1, 1]; every
    other attribute is random and balanced."""
    images, _ = faces_with({"hair": hair}, n, seed, size)
    return images.float() / 127.5 - 1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], the range of images the classifier and the views take."""
    return ((x.float() + 1) / 2).clamp(0, 1)


class CycleGANRecipe(Recipe):
    def __init__(self, ctx: RunContext, cfg: CycleGANConfig):
        # All CPU threads (torch's default). Measured on an idle 2-core machine, a step of the
        # default preset takes 152 ms on one thread and 100 ms on two. When other
        # programs keep the cores busy, two threads wait on each other and a step can take
        # several times longer: the steps/s on the status line then show it.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size)
        dev = ctx.device
        self.size = cfg.size
        a = CycleGANArgs(width=cfg.width, res_blocks=cfg.res_blocks)
        self.G_AB, self.G_BA = Generator(a).to(dev), Generator(a).to(dev)
        self.D_A, self.D_B = Discriminator(a).to(dev), Discriminator(a).to(dev)
        if fast_path(dev):
            for net in self.nets():
                net.to(memory_format=torch.channels_last)
        # One optimiser for both generators (their losses are added into one), one for both
        # discriminators. beta1 = 0.5, as in the CycleGAN paper: less momentum for a game.
        gen = itertools.chain(self.G_AB.parameters(), self.G_BA.parameters())
        disc = itertools.chain(self.D_A.parameters(), self.D_B.parameters())
        self.opt_g = torch.optim.Adam(gen, lr=cfg.lr, betas=(0.5, 0.999), fused=fast_path(dev))
        self.opt_d = torch.optim.Adam(disc, lr=cfg.lr, betas=(0.5, 0.999), fused=fast_path(dev))
        self.steps_done = 0  # drives the learning-rate decay; checkpointed
        # The data sampler has its own generator so its state can be checkpointed.
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.classifier = None
        seeds = domain_seeds(cfg.seed)
        if ctx.need_data:
            n = cfg.train_size
            ctx.log(f"drawing {n:,} blond and {n:,} black-haired faces ({self.size} px, unpaired)")
            # Both piles live on the device; batches are indexed there.
            self.x_a = draw_domain(BLOND, n, seeds["train_a"], self.size).to(dev)  # (N, 3, S, S)
            self.x_b = draw_domain(BLACK, n, seeds["train_b"], self.size).to(dev)
            self.train_size = n
            # Fixed held-out faces: the views and scores follow the same people all run.
            self.val_a = draw_domain(BLOND, N_EVAL, seeds["val_a"], self.size).to(dev)
            self.val_b = draw_domain(BLACK, N_EVAL, seeds["val_b"], self.size).to(dev)

    def nets(self) -> tuple[torch.nn.Module, ...]:
        return self.G_AB, self.G_BA, self.D_A, self.D_B

    # -- training --
    def _generator_loss(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """loss_g = adv + lambda_cycle * cycle + lambda_identity * identity, where

            adv      = (D_B(G_AB(a)) - 1)^2 + (D_A(G_BA(b)) - 1)^2   least squares: "call it real"
            cycle    = |G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|     L1: there and back again
            identity = |G_AB(b) - b| + |G_BA(a) - a|                 L1: leave the target domain alone

        each term a mean over pixels (or patches). Also returns the fakes, for the
        discriminator step."""
        cfg = self.cfg
        with autocast(self.ctx.device):
            fake_b, fake_a = self.G_AB(real_a), self.G_BA(real_b)  # (B, 3, S, S) each
            rec_a, rec_b = self.G_BA(fake_b), self.G_AB(fake_a)
            score_b, score_a = self.D_B(fake_b).float(), self.D_A(fake_a).float()  # (B, 1, P, P)
        adv = F.mse_loss(score_b, torch.ones_like(score_b)) + F.mse_loss(score_a, torch.ones_like(score_a))
        cycle = F.l1_loss(rec_a.float(), real_a) + F.l1_loss(rec_b.float(), real_b)
        # With weight 0 the identity term is dropped from the loss (and its two passes are
        # not backpropagated), but still measured, so its curve shows what it was holding.
        with torch.set_grad_enabled(cfg.lambda_identity > 0 and torch.is_grad_enabled()), autocast(self.ctx.device):
            same_b, same_a = self.G_AB(real_b), self.G_BA(real_a)
        identity = F.l1_loss(same_b.float(), real_b) + F.l1_loss(same_a.float(), real_a)
        loss = adv + cfg.lambda_cycle * cycle
        if cfg.lambda_identity > 0:
            loss = loss + cfg.lambda_identity * identity
        return {"loss_g": loss, "adv": adv, "cycle": cycle, "identity": identity, "fake_a": fake_a, "fake_b": fake_b}

    def _discriminator_loss(self, D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Least squares: D(real) -> 1, D(fake) -> 0, halved so D learns at half G's pace:
        0.5 * [(D(real) - 1)^2 + D(fake)^2]. The fake is detached: this trains D only."""
        with autocast(self.ctx.device):
            s_real, s_fake = D(real).float(), D(fake.detach()).float()
        return 0.5 * (F.mse_loss(s_real, torch.ones_like(s_real)) + F.mse_loss(s_fake, torch.zeros_like(s_fake)))

    def _freeze_discriminators(self, frozen: bool) -> None:
        for p in itertools.chain(self.D_A.parameters(), self.D_B.parameters()):
            p.requires_grad_(not frozen)

    def train_step(self) -> dict[str, torch.Tensor]:
        dev, B = self.ctx.device, self.batch_size
        idx_a = torch.randint(0, self.train_size, (B,), generator=self.data_gen).to(dev)
        idx_b = torch.randint(0, self.train_size, (B,), generator=self.data_gen).to(dev)
        real_a, real_b = self.x_a[idx_a], self.x_b[idx_b]  # (B, 3, S, S) each, unrelated faces
        if fast_path(dev):
            real_a = real_a.contiguous(memory_format=torch.channels_last)
            real_b = real_b.contiguous(memory_format=torch.channels_last)
        for net in self.nets():
            net.train()
        self._set_lr()

        # Generators first, against the current discriminators: frozen, so the backward pass
        # computes no gradients for their weights.
        self._freeze_discriminators(True)
        g = self._generator_loss(real_a, real_b)
        self.opt_g.zero_grad(set_to_none=True)
        g["loss_g"].backward()
        self.opt_g.step()

        # Then the discriminators, on real faces and the fakes just drawn.
        self._freeze_discriminators(False)
        loss_d = (self._discriminator_loss(self.D_A, real_a, g["fake_a"])
                  + self._discriminator_loss(self.D_B, real_b, g["fake_b"]))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        out = {f"train/{k}": g[k].detach() for k in ("loss_g", "adv", "cycle", "identity")}
        out["train/loss_d"] = loss_d.detach()
        self.steps_done += 1
        return out

    def lr_now(self) -> float:
        """lr until the last ``lr_decay`` share of the steps, then a straight line down to 0 at
        the last step, as in the CycleGAN paper: the game settles instead of ending mid-swing.

            lr_t = lr * min(1, (steps - t) / (lr_decay * steps))"""
        cfg = self.cfg
        if cfg.lr_decay <= 0:
            return cfg.lr
        return cfg.lr * min(1.0, max(0.0, (cfg.steps - self.steps_done) / (cfg.lr_decay * cfg.steps)))

    def _set_lr(self) -> None:
        lr = self.lr_now()
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def set_live(self, key, value) -> None:
        if key not in ("lr", "lambda_cycle", "lambda_identity"):
            raise KeyError(key)
        setattr(self.cfg, key, float(value))  # read every step (lr through _set_lr)
        if key == "lr":
            self._set_lr()

    # -- evaluation and views (never touch the training RNG streams) --
    @torch.inference_mode()
    def translate(self, G: torch.nn.Module, x: torch.Tensor, chunk: int = 128) -> torch.Tensor:
        """G(x) in eval mode, in chunks: (N, 3, S, S) in [-1, 1] -> same, float."""
        G.eval()
        out = []
        for part in x.split(chunk):
            with autocast(self.ctx.device):
                out.append(G(part).float())
        G.train()
        return torch.cat(out) if out else x.float()

    def cycle(self, x: torch.Tensor, there: torch.nn.Module, back: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(there(x), back(there(x))), each (N, 3, S, S) in [-1, 1]."""
        y = self.translate(there, x)
        return y, self.translate(back, y)

    def evaluate(self) -> dict[str, float]:
        if not self.ctx.need_data:
            return {}
        if self.classifier is None:
            from engine.metrics.face_classifier import get_face_classifier

            self.classifier = get_face_classifier(self.ctx.device, size=self.size, log=self.ctx.log)
        from engine.metrics.face_classifier import predict_attributes

        metrics, errors, kept = {}, [], []
        for name, x, there, back, target in (("to_black", self.val_a, self.G_AB, self.G_BA, BLACK),
                                             ("to_blond", self.val_b, self.G_BA, self.G_AB, BLOND)):
            y, rec = self.cycle(x, there, back)
            before, after = predict_attributes(self.classifier, to_unit(x)), predict_attributes(self.classifier, to_unit(y))
            metrics[f"quality/{name}"] = (after["hair"] == target).float().mean().item()
            same = torch.stack([after[k] == before[k] for k in KEPT]).all(0)  # (N,) every other attribute kept
            kept.append(same.float().mean().item())
            errors.append((to_unit(rec) - to_unit(x)).abs().mean().item())  # mean |x - back(there(x))| in [0, 1]
        metrics["quality/cycle_error"] = sum(errors) / 2
        metrics["quality/kept"] = sum(kept) / 2
        return metrics

    def _triples(self, x: torch.Tensor, there: torch.nn.Module, back: torch.nn.Module) -> torch.Tensor:
        """(N, 3, S, S) -> (3N, 3, VIEW_PX, VIEW_PX) in [0, 1]: x, there(x), back(there(x)) for
        each face in turn, so a grid of 3k columns shows k triples per row."""
        y, rec = self.cycle(x, there, back)
        faces = torch.stack([x.float(), y, rec], dim=1).flatten(0, 1)  # (3N, 3, S, S)
        if faces.shape[-1] != VIEW_PX:
            faces = F.adaptive_avg_pool2d(faces, VIEW_PX)  # 64 px faces averaged down for the screen
        return to_unit(faces)

    def samples(self) -> list[Artifact]:
        if not self.ctx.need_data:
            return []
        ab = self._triples(self.val_a[:N_SHOW], self.G_AB, self.G_BA)
        ba = self._triples(self.val_b[:N_SHOW], self.G_BA, self.G_AB)
        return [
            Artifact("cycle_ab", "image", make_grid(ab, nrow=6),
                     "blond | G_AB: to black | G_BA(G_AB): back to blond, on held-out faces"),
            Artifact("cycle_ba", "image", make_grid(ba, nrow=6),
                     "black | G_BA: to blond | G_AB(G_BA): back to black, on held-out faces"),
        ]

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n strips (n, 3, S, 3S + 4) in [0, 1], each face | translated | back again: the first
        half new blond faces, the rest new black-haired ones."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        n_a = (n + 1) // 2
        dev, S, pad = self.ctx.device, self.size, 2
        strips = []
        for hair, count, there, back in ((BLOND, n_a, self.G_AB, self.G_BA), (BLACK, n - n_a, self.G_BA, self.G_AB)):
            if count == 0:
                continue
            x = draw_domain(hair, count, seed + hair, S).to(dev)
            y, rec = self.cycle(x, there, back)
            gap = torch.full((count, 3, S, pad), 0.15, device=dev)
            strips.append(torch.cat([to_unit(x), gap, to_unit(y), gap, to_unit(rec)], dim=3))  # (count, 3, S, 3S + 4)
        return torch.cat(strips).cpu()

    # -- checkpoints --
    def state_dict(self) -> dict:
        return {"G_AB": self.G_AB.state_dict(), "G_BA": self.G_BA.state_dict(), "D_A": self.D_A.state_dict(),
                "D_B": self.D_B.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "data_gen": self.data_gen.get_state(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        for name in ("G_AB", "G_BA", "D_A", "D_B"):
            getattr(self, name).load_state_dict(state[name])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.data_gen.set_state(state["data_gen"].cpu())
        self.steps_done = int(state["steps_done"])


RECIPE = CycleGANRecipe
