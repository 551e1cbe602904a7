"""The MuseGAN recipe: a generator of four-voice phrases (chords, style, melody and groove
inputs) trained against a critic with the Wasserstein loss and a gradient penalty, on Bach's
chorales or a folder of MIDI files. Views: phrases from fixed inputs, and the picker (one
input drawn anew, the phrase before it drawn behind)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.audio import PIECE_SUFFIXES, TEMPO, write_piece
from engine.configs.musegan import MuseGANConfig
from engine.data.music import (LOW, PITCHES, REST, STEPS_PER_BAR, VOICES, MusicSet, grid_to_notes, join_grids,
                               load_music, roll_view)
from engine.device import autocast
from engine.metrics.music import music_quality
from engine.models.cwgan import gradient_penalty
from engine.models.musegan import INPUTS, Critic, Generator, MuseGANArgs, draw_inputs
from engine.recipes.base import Artifact, Recipe, RunContext

N_EVAL = 64  # fixed phrases scored every few seconds
N_SHOWN = 2  # phrases on the Train tab, one after another
MAX_EXPORT = 256  # phrases sample_file writes at most


def phrase_classes(music: MusicSet, pieces: list[int], bars: int) -> np.ndarray:
    """Every window of ``bars`` whole bars of the given pieces, as classes (N, 4, bars,
    16): 0 a rest, 1 + (pitch - LOW) a pitch. Windows start at every bar line."""
    width = bars * STEPS_PER_BAR
    out = []
    for i in pieces:
        grid = music.grids[i].astype(np.int64)
        classes = np.where(grid == REST, 0, grid - LOW + 1)
        for start in range(0, grid.shape[1] - width + 1, STEPS_PER_BAR):
            out.append(classes[:, start:start + width])
    if not out:
        raise ValueError(f"no piece is {bars} bars long; choose fewer bars or longer pieces")
    return np.stack(out).reshape(len(out), 4, bars, STEPS_PER_BAR)


def classes_to_grid(classes: torch.Tensor) -> np.ndarray:
    """(N, 4, bars, 16) class indices -> grids (N, 4, bars*16) of pitches or REST."""
    c = classes.flatten(2).cpu().numpy()
    return np.where(c == 0, REST, c + LOW - 1).astype(np.int8)


class MuseGANRecipe(Recipe):
    checkpointed = ("G", "D", "opt_g", "opt_d", "data_gen")

    def __init__(self, ctx: RunContext, cfg: MuseGANConfig):
        # One CPU thread: the layers are small, and a second thread only waits at every
        # op. Measured on a shared 2-core machine (load average 14): a tiny step took 0.10 s
        # on one thread and 1.24 s on two.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, view_interval=3.0, cpu_threads=1)
        dev = ctx.device
        self.args = MuseGANArgs(classes=PITCHES + 1, bars=cfg.bars, z_dim=cfg.z_dim, width=cfg.width)
        self.G, self.D = Generator(self.args).to(dev), Critic(self.args).to(dev)
        # Adam with beta1 = 0.5: the critic's target moves as the generator learns, and
        # long momentum overshoots it (Foster's MuseGAN uses these betas).
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # batches; checkpointed
        # Fixed inputs for the scores and the views, so they compare like with like.
        self.fixed = draw_inputs(N_EVAL, self.args, torch.Generator().manual_seed(cfg.seed + 1), dev)
        self.reference: dict[str, float] = {}
        if ctx.need_data:
            music = load_music(cfg.dataset, cfg.data_path, cfg.max_pieces, log=ctx.log)
            ctx.log(music.describe())
            self.phrases = torch.from_numpy(phrase_classes(music, music.train, cfg.bars)).to(dev)
            held = phrase_classes(music, music.held_out, cfg.bars)
            self.train_size = len(self.phrases)
            self.reference = music_quality(list(classes_to_grid(torch.from_numpy(held))))
            ctx.log(f"{len(self.phrases):,} training phrases of {cfg.bars} bars; the {len(held):,} held-out ones "
                    f"score: " + ", ".join(f"{k} {v:.3f}" for k, v in self.reference.items()))

    # -- training --
    def _real_batch(self) -> torch.Tensor:
        """Training phrases as one-hot probabilities (B, tracks, bars, steps, classes)."""
        idx = torch.randint(0, self.train_size, (self.batch_size,), generator=self.data_gen).to(self.ctx.device)
        return F.one_hot(self.phrases[idx], self.args.classes).float()

    def _noise(self) -> dict[str, torch.Tensor]:
        return draw_inputs(self.batch_size, self.args, device=self.ctx.device)  # the global stream: checkpointed

    def _step_critic(self) -> dict[str, torch.Tensor]:
        """Minimise critic(fake) - critic(real) + gp_weight * penalty: score real phrases
        above generated ones by as much as a 1-Lipschitz function can."""
        real = self._real_batch()
        with autocast(self.ctx.device):
            with torch.no_grad():
                fake = self.G.probabilities(**self._noise())
            score_real, score_fake = self.D(real).float(), self.D(fake).float()
            penalty = gradient_penalty(self.D, real, fake.to(real.dtype)).float()
        distance = score_real.mean() - score_fake.mean()  # the critic's Wasserstein estimate
        loss = -distance + self.cfg.gp_weight * penalty
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"train/loss_critic": loss.detach(), "train/wasserstein": distance.detach(), "train/gp": penalty.detach()}

    def _step_generator(self) -> dict[str, torch.Tensor]:
        """Minimise -critic(G(inputs)): raise the critic's score of generated phrases."""
        with autocast(self.ctx.device):
            loss = -self.D(self.G.probabilities(**self._noise())).float().mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"train/loss_g": loss.detach()}

    def train_step(self) -> dict[str, torch.Tensor]:
        """critic_steps critic updates, then one generator update."""
        for _ in range(self.cfg.critic_steps):
            metrics = self._step_critic()
        metrics.update(self._step_generator())
        return metrics

    def set_live(self, key, value) -> None:
        if key == "lr":
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = float(value)
        elif key not in ("critic_steps", "gp_weight", "pick_input", "pick_draw"):
            raise KeyError(key)
        setattr(self.cfg, key, value)  # the picker is read by the next views

    # -- generating --
    @torch.inference_mode()
    def generate(self, inputs: dict[str, torch.Tensor]) -> np.ndarray:
        """Phrases for the given inputs as grids (N, 4, bars*16): at each step the most
        likely class (a rest or a pitch)."""
        self.G.eval()
        with autocast(self.ctx.device):
            logits = self.G(**inputs).float()  # (N, tracks, bars, steps, classes)
        self.G.train()
        return classes_to_grid(logits.argmax(-1))

    def picked_inputs(self) -> dict[str, torch.Tensor]:
        """The first fixed phrase's inputs with the picked one drawn anew: the chords or
        style vector, or one voice's melody or groove vector (pick_draw seeds the draw)."""
        inputs = {k: v[:1].clone() for k, v in self.fixed.items()}
        pick = self.cfg.pick_input
        if pick == "nothing":
            return inputs
        name, _, voice = pick.partition(": ")
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + 17 * self.cfg.pick_draw + INPUTS.index(name))
        fresh = torch.randn(self.args.z_dim, generator=g).to(self.ctx.device)
        if voice:
            inputs[name][0, VOICES.index(voice)] = fresh
        else:
            inputs[name][0] = fresh
        return inputs

    def sample_file(self, path: Path, n: int, generator: torch.Generator) -> Path:
        """Write ``n`` phrases (each ``bars`` bars, from fresh random inputs) one after
        another as one piece: a .mid file (one track per voice) or a .wav file (our
        synthesiser). Any other suffix raises ValueError."""
        path = Path(path)
        if path.suffix.lower() not in PIECE_SUFFIXES:
            raise ValueError(f"MuseGAN writes a .mid or .wav file, not {path.name!r}")
        if not 1 <= n <= MAX_EXPORT:
            raise ValueError(f"n is the number of phrases: 1 to {MAX_EXPORT}, not {n}")
        grids = self.generate(draw_inputs(n, self.args, generator, self.ctx.device))
        return write_piece(grid_to_notes(join_grids(grids)), path)

    # -- evaluation and views --
    def evaluate(self) -> dict[str, float]:
        """The music figures (engine.metrics.music) of N_EVAL phrases from fixed inputs."""
        quality = music_quality(list(self.generate(self.fixed)))
        return {f"quality/{k}": v for k, v in quality.items()}

    def samples(self) -> list[Artifact]:
        shown = join_grids(self.generate({k: v[:N_SHOWN] for k, v in self.fixed.items()}))
        base = self.generate({k: v[:1] for k, v in self.fixed.items()})[0]
        picked = self.generate(self.picked_inputs())[0]
        pick = self.cfg.pick_input
        what = "nothing drawn anew" if pick == "nothing" else f"{pick} drawn anew (draw {self.cfg.pick_draw})"
        changed = int((picked != base).any(axis=0).sum())
        return [
            Artifact("samples", "data", roll_view(grid_to_notes(shown), shown.shape[1],
                                                  f"{N_SHOWN} phrases from fixed inputs", TEMPO),
                     f"{N_SHOWN} phrases of {self.cfg.bars} bars from fixed inputs"),
            Artifact("picked", "data", roll_view(grid_to_notes(picked), picked.shape[1], what, TEMPO,
                                                 other={"notes": grid_to_notes(base).tolist(), "label": "before"}),
                     f"{what}: {changed} of {picked.shape[1]} steps changed"),
        ]


RECIPE = MuseGANRecipe
