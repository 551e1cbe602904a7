"""The world-model recipe: three stages in one run, as in Ha and Schmidhuber's V-M-C.

At the start, `episodes` episodes of the Dodge game (engine/data/dodge.py) are played with
random moves and recorded; that is all the real experience the models get.

1. Steps 1 to vae_steps train V, the VAE lesson's model, on single frames.
2. Then every recorded frame is encoded once (V is frozen from here on), and for the next
   rnn_steps steps M learns, from windows of those episodes, to predict the next code and
   the crash from the code and the move.
3. Every remaining step is one generation of the evolution strategy: candidate controllers
   play inside M's dream, at the dream's temperature, and the strategy moves toward the
   ones that survive longest there. The real game is used only to measure the result.

The views: held-out frames beside V's reconstructions; one recorded episode beside M's
dream of it, from the same first frame and with the same moves; and, as curves, the
controller's return in the dream and in the real game against a random policy's.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.configs.world_model import WorldModelConfig
from engine.data.dodge import Dodge, collect, random_actions
from engine.device import fast_path
from engine.imaging import make_grid
from engine.models.vae import VAE, VAEArgs, vae_loss  # V: the VAE lesson's model, unchanged
from engine.models.world_model import (ES, MDNOut, MDNRNN, MDNRNNArgs, act, controller_size, dream, sample_next,
                                       world_loss)
from engine.recipes.base import Artifact, Recipe, RunContext

VAL_EPISODES = 64  # held-out random episodes: V's and M's validation scores, and the views
N_EVAL = 100  # real episodes (fixed seeds) on which the controller and the random policy are compared
N_DREAM_EVAL = 100  # dreamed episodes (a fixed seed) that give the controller's return in the dream
N_FRAMES = 8  # held-out frames shown beside their reconstructions
N_ROLLOUT = 15  # steps of the episode shown beside its dream
EVAL_SEED = 1_000_003  # the evaluation episodes' seed, far from any training seed


def as_images(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., 28, 28) -> floats (N, 1, 28, 28) in [0, 1]."""
    x = torch.as_tensor(frames)
    return x.reshape(-1, 1, *x.shape[-2:]).float() / 255.0


def random_return(episodes: int, seed: int, max_steps: int) -> np.ndarray:
    """Each episode's return (steps survived) under a policy that picks a move uniformly at
    random every step: the baseline the controller must beat."""
    env = Dodge(episodes, seed, max_steps)
    rng = np.random.default_rng(seed + 1)
    while not env.done.all():
        env.step(random_actions(episodes, rng))
    return env.steps_alive.astype(np.float64)


class WorldModelRecipe(Recipe):
    checkpointed = ("vae", "opt", "rnn", "rnn_opt", "es", "data_gen", "es_gen")  # plus the step and the codes
    nan_hint = "lower lr or rnn_lr and start again."

    def __init__(self, ctx: RunContext, cfg: WorldModelConfig):
        # One CPU thread: small convolutions, a small LSTM and one-step dreams gain nothing
        # from a second, and lose much when the cores are busy.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, cpu_threads=1)
        dev = ctx.device
        self.vae = VAE(VAEArgs(latent_dim=cfg.z_dim, width=cfg.width, channels=1)).to(dev)
        self.opt = torch.optim.Adam(self.vae.parameters(), lr=cfg.lr, fused=fast_path(dev))
        self.rnn = MDNRNN(MDNRNNArgs(z_dim=cfg.z_dim, hidden=cfg.hidden, mixtures=cfg.mixtures)).to(dev)
        self.rnn_opt = torch.optim.Adam(self.rnn.parameters(), lr=cfg.rnn_lr, fused=fast_path(dev))
        # Batches, M's sampled codes and the strategy's candidates and dreams draw from these
        # generators, so a checkpoint holds their state and a resumed run draws the same.
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.es_gen = torch.Generator().manual_seed(cfg.seed + 3)
        self.es = ES(controller_size(cfg.z_dim, cfg.hidden), cfg.popsize, cfg.sigma, self.es_gen)
        self.temperature = cfg.temperature
        self.steps_done = 0
        self.vae_updates = self.rnn_updates = 0  # steps taken by this process: the views' cache keys
        self.z_mu = self.z_logvar = None  # (E, T + 1, D): every recorded frame's code, from V once it is frozen
        self._real: tuple | None = None  # (generation, the controller's real returns)
        self.baseline = random_return(N_EVAL, EVAL_SEED, cfg.max_steps)
        if ctx.need_data:
            data = collect(cfg.episodes, cfg.seed, cfg.wander, cfg.max_steps)
            val = collect(VAL_EPISODES, cfg.seed + 50_000, cfg.wander, cfg.max_steps)
            self.frames = torch.from_numpy(data["frames"])  # (E, T + 1, 28, 28) uint8, on the CPU
            self.length = torch.from_numpy(data["length"])  # (E,) moves played
            self.move = torch.from_numpy(data["actions"]).float().to(dev) - 1  # (E, T) in {-1, 0, 1}
            self.crash = torch.from_numpy(data["crash"]).float().to(dev)  # (E, T)
            # The frames V trains on: every frame an episode showed, the last included.
            seen = torch.arange(cfg.max_steps + 1) <= self.length[:, None]  # (E, T + 1)
            self.seen = seen
            self.x_train = as_images(self.frames[seen]).to(dev)  # (N, 1, 28, 28)
            self.val = val
            self.x_val = as_images(val["frames"][np.arange(cfg.max_steps + 1) <= val["length"][:, None]]).to(dev)
            self.train_size = len(self.x_train)
            crashes = int(data["crash"].sum())
            ctx.log(f"{cfg.episodes} random episodes recorded: {len(self.x_train):,} frames, {crashes} crashes, "
                    f"{data['length'].mean():.1f} steps on average")
        n_v = sum(p.numel() for p in self.vae.parameters())
        n_m = sum(p.numel() for p in self.rnn.parameters())
        ctx.log(f"V: {n_v / 1e3:.0f}k parameters; M: {n_m / 1e3:.0f}k; C: {self.es.dim} numbers. A random policy "
                f"survives {self.baseline.mean():.1f} steps on average in the {N_EVAL} test episodes")

    @property
    def phase(self) -> str:
        c = self.cfg
        return "V" if self.steps_done < c.vae_steps else "M" if self.steps_done < c.vae_steps + c.rnn_steps else "C"

    @property
    def generation(self) -> int:
        return max(0, self.steps_done - self.cfg.vae_steps - self.cfg.rnn_steps)

    # -- training --
    def train_step(self) -> dict[str, torch.Tensor]:
        phase = self.phase
        if phase == "V":
            metrics = self.vae_step()
        else:
            if self.z_mu is None:
                self.encode_episodes()  # M's training data, once V is done
            metrics = self.rnn_step() if phase == "M" else self.es_step()
        self.steps_done += 1
        return metrics

    def vae_step(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(self.x_train), (self.cfg.batch_size,), generator=self.data_gen)
        x = self.x_train[idx.to(self.x_train.device)]
        self.vae.train()
        logits, mu, logvar = self.vae(x)
        losses = vae_loss(logits, x, mu, logvar, self.cfg.beta)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.opt.step()
        self.vae_updates += 1
        return {"train/loss_v": losses["loss"].detach(), "train/recon": losses["recon"].detach(),
                "train/kl": losses["kl"].detach()}

    @torch.inference_mode()
    def encode_episodes(self) -> None:
        """Every recorded frame's q(z | x), computed once with the trained V (frozen from now)."""
        self.vae.eval()
        dev = self.ctx.device
        mu, logvar = zip(*(self.vae.encoder(c) for c in self.x_train.split(2000)))
        E, T1 = self.seen.shape
        self.z_mu = torch.zeros(E, T1, self.cfg.z_dim, device=dev)
        self.z_logvar = torch.zeros(E, T1, self.cfg.z_dim, device=dev)
        seen = self.seen.to(dev)
        self.z_mu[seen], self.z_logvar[seen] = torch.cat(mu), torch.cat(logvar)
        self.ctx.log(f"step {self.steps_done:,}: V is frozen; the {len(self.x_train):,} frames are now codes of "
                     f"{self.cfg.z_dim} numbers, and M learns what follows what")

    def sequences(self, idx: torch.Tensor, generator: torch.Generator) -> tuple:
        """Windows of seq_len steps from the episodes ``idx``, each from a random start (the
        episode's first step when it is shorter): codes drawn from q(z | x) (V's noise, as M
        will meet it), moves, next codes, crashes, and a mask of the steps played."""
        L, dev = self.cfg.seq_len, self.ctx.device
        length = self.length[idx]
        start = (torch.rand(len(idx), generator=generator) * (length - L + 1).clamp(min=1)).long()
        t = start[:, None] + torch.arange(L + 1)  # (B, L + 1)
        t = t.clamp(max=self.cfg.max_steps)
        rows, t = idx[:, None].to(dev), t.to(dev)
        mu, logvar = self.z_mu[rows, t], self.z_logvar[rows, t]  # (B, L + 1, D)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator).to(dev)
        steps = t[:, :-1].clamp(max=self.cfg.max_steps - 1)
        mask = (t[:, :-1] < self.length[idx, None].to(dev)).float()  # (B, L)
        return z[:, :-1], self.move[rows, steps], z[:, 1:], self.crash[rows, steps], mask

    def rnn_step(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(self.length), (self.cfg.rnn_batch,), generator=self.data_gen)
        z, move, z_next, crash, mask = self.sequences(idx, self.data_gen)
        self.rnn.train()
        pred, _, _ = self.rnn(z, move)
        losses = world_loss(pred, z_next, crash, mask)
        self.rnn_opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.rnn.parameters(), 1.0)
        self.rnn_opt.step()
        self.rnn_updates += 1
        return {"train/loss_m": losses["loss"].detach(), "train/nll": losses["nll"].detach(),
                "train/done": losses["done"].detach()}

    def starts(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, D): the codes of n first frames of recorded episodes, where dreams begin."""
        idx = torch.randint(0, len(self.z_mu), (n,), generator=generator).to(self.ctx.device)
        return self.z_mu[idx, 0]

    def es_step(self) -> dict[str, torch.Tensor]:
        c = self.cfg
        self.rnn.eval()
        candidates = self.es.ask()  # (P, dim)
        theta = candidates.repeat_interleave(c.dreams, 0).to(self.ctx.device)  # each candidate dreams `dreams` times
        out = dream(self.rnn, theta, self.starts(len(theta), self.es_gen), c.max_steps, self.temperature, self.es_gen)
        fitness = out["return"].view(self.es.popsize, c.dreams).mean(1)  # (P,)
        self.es.tell(fitness)
        return {"train/dream_return": fitness.mean(), "train/sigma": self.es.sigma.clone()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            for group in self.opt.param_groups:
                group["lr"] = float(value)
        elif key == "rnn_lr":
            for group in self.rnn_opt.param_groups:
                group["lr"] = float(value)
        elif key == "temperature":
            self.temperature = float(value)
        else:
            raise KeyError(key)

    def state_dict(self) -> dict:
        none = torch.zeros(0)
        return {**super().state_dict(), "steps_done": self.steps_done,
                "z_mu": none if self.z_mu is None else self.z_mu.cpu(),
                "z_logvar": none if self.z_logvar is None else self.z_logvar.cpu()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])
        if len(state["z_mu"]):
            self.z_mu = state["z_mu"].to(self.ctx.device)
            self.z_logvar = state["z_logvar"].to(self.ctx.device)

    # -- evaluation (never touches the training random streams) --
    @torch.inference_mode()
    def play(self, theta: torch.Tensor, episodes: int = N_EVAL, seed: int = EVAL_SEED) -> np.ndarray:
        """Each episode's return when controller ``theta`` (dim,) plays the real game: every
        frame goes through V (its mean code), C acts on the code and M's memory, and M reads
        the code and the move to update its memory, as in the dream."""
        self.vae.eval()
        self.rnn.eval()
        dev = self.ctx.device
        env = Dodge(episodes, seed, self.cfg.max_steps)
        theta = theta.to(dev).expand(episodes, -1)
        h, state = torch.zeros(episodes, self.cfg.hidden, device=dev), None
        while not env.done.all():
            z, _ = self.vae.encoder(as_images(env.frames()).to(dev))
            a = act(theta, z, h)
            _, state, hs = self.rnn(z.unsqueeze(1), (a - 1).float().unsqueeze(1), state)
            h = hs[:, 0]
            env.step(a.cpu().numpy())
        return env.steps_alive.astype(np.float64)

    def real_returns(self) -> np.ndarray:
        """The current controller's real returns, kept until the next generation."""
        if self._real is None or self._real[0] != self.steps_done:
            self._real = (self.steps_done, self.play(self.es.mean))
        return self._real[1]

    @torch.inference_mode()
    def dream_return(self) -> float:
        """The current controller's mean return in N_DREAM_EVAL dreams from a fixed seed."""
        g = torch.Generator().manual_seed(self.cfg.seed + 4)
        theta = self.es.mean.to(self.ctx.device).expand(N_DREAM_EVAL, -1)
        self.rnn.eval()
        out = dream(self.rnn, theta, self.starts(N_DREAM_EVAL, g), self.cfg.max_steps, self.temperature, g)
        return out["return"].mean().item()

    @torch.inference_mode()
    def evaluate(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if not self.ctx.need_data:
            return metrics
        if self.phase == "V":
            self.vae.eval()
            logits, mu, logvar = self.vae(self.x_val[:1000])
            metrics["val/recon"] = vae_loss(logits, self.x_val[:1000], mu, logvar, self.cfg.beta)["recon"].item()
        if self.phase == "C":
            real = self.real_returns().mean()
            metrics.update({"quality/dream_return": self.dream_return(), "quality/real_return": real,
                            "quality/random_return": self.baseline.mean(),
                            "quality/return_ratio": real / self.baseline.mean()})
        return metrics

    @torch.inference_mode()
    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n frames of one dream (for `genstudio sample`): from a recorded first frame, the
        current controller playing in M's dream, each code decoded by V."""
        if self.z_mu is None:
            raise NotImplementedError("the run has not reached M's phase: there is no dream to draw yet")
        self.rnn.eval()
        self.vae.eval()
        theta = self.es.mean.to(self.ctx.device).unsqueeze(0)
        out = dream(self.rnn, theta, self.starts(1, generator), max(0, n - 1), self.temperature, generator,
                    record=True)
        return self.vae.decode(out["z"][0])  # (n, 1, 28, 28)

    # -- views --
    def pairs(self, left: torch.Tensor, right: torch.Tensor, nrow: int) -> np.ndarray:
        """Two stacks of frames (N, 1, 28, 28) as a grid of pairs: left_i | right_i."""
        return make_grid(torch.stack([left.cpu(), right.cpu()], 1).flatten(0, 1), nrow=nrow)

    @torch.inference_mode()
    def samples(self) -> list[Artifact]:
        if not self.ctx.need_data:
            return []
        self.vae.eval()
        self.rnn.eval()
        # Held-out frames from the middle of episodes, where rocks are on screen.
        picks = [(e, min(int(self.val["length"][e]), 4 + 3 * i)) for i, e in enumerate(range(N_FRAMES))]
        x = as_images(np.stack([self.val["frames"][e, t] for e, t in picks])).to(self.ctx.device)
        recon = self.vae.decode(self.vae.encoder(x)[0])
        what = "untrained" if self.vae_updates == 0 and self.steps_done == 0 else f"step {self.steps_done:,}"
        out = [Artifact("frames", "image", self.pairs(x, recon, 8),
                        f"held-out frame | V's reconstruction ({what})")]
        # The longest held-out episode, and M's dream of it: the same first frame, the same moves.
        e = int(np.argmax(self.val["length"]))
        n = min(N_ROLLOUT, int(self.val["length"][e]))
        real = as_images(self.val["frames"][e, : n + 1]).to(self.ctx.device)  # (n + 1, 1, 28, 28)
        moves = torch.from_numpy(self.val["actions"][e, :n]).long().to(self.ctx.device) - 1  # (n,)
        g = torch.Generator().manual_seed(self.cfg.seed + 5)
        z = self.vae.encoder(real[:1])[0]  # (1, D)
        codes, state, crash_at = [z], None, None
        for t in range(n):
            pred, state, _ = self.rnn(z.unsqueeze(1), moves[t].float().view(1, 1), state)
            if crash_at is None and torch.sigmoid(pred.done_logit[0, 0]) > 0.5:
                crash_at = t + 1
            z = sample_next(MDNOut(*(p[:, 0] for p in pred)), self.temperature, g)
            codes.append(z)
        dreamed = self.vae.decode(torch.cat(codes))  # (n + 1, 1, 28, 28)
        stage = ("M untrained" if self.phase == "V" else
                 f"M after {self.rnn_updates:,} steps" if self.phase == "M" else "M trained")
        crash = f"; M expects the crash at step {crash_at}" if crash_at else ""
        out.append(Artifact("rollout", "image", self.pairs(real, dreamed, 8),
                            f"steps 0-{n}, left to right: the game | M's dream of it ({stage}, temperature "
                            f"{self.temperature:g}; same start, same moves{crash})"))
        return out


RECIPE = WorldModelRecipe
