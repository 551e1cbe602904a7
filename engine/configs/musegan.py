"""Hyperparameters and dashboard of the MuseGAN recipe on Bach's chorales (torch-free: the
studio builds its form, the input picker and the piano rolls from this)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.panes import Controls, Curves, PianoRollPane, Tab
from engine.schema import param

VOICE_NAMES = ("soprano", "alto", "tenor", "bass")  # engine.data.music.VOICES
# The picker: which of the generator's inputs is drawn anew (per-track ones for one voice).
PICKS = ("nothing", "chords", "style",
         *(f"melody: {v}" for v in VOICE_NAMES), *(f"groove: {v}" for v in VOICE_NAMES))


@dataclass
class MuseGANConfig:
    dataset: str = param("chorales", "music to learn: chorales (Bach, from music21's corpus) or midi (data_path)",
                         choices=("chorales", "midi"))
    data_path: str = param("", "a folder of your .mid/.midi files (with dataset=midi); 4/4 is assumed", path="dir")
    max_pieces: int = param(0, "read only the first N pieces (0 = all)", low=0, high=100_000)
    bars: int = param(2, "bars in a generated phrase (16 steps of a 16th note each)", choices=(2, 4))
    z_dim: int = param(32, "size of each of the four inputs: chords, style, melody, groove", low=2, high=256)
    width: int = param(128, "hidden channels of the generator and the critic", low=8, high=1024)
    lr: float = param(1e-3, "Adam learning rate of both networks (applies live)", low=1e-5, high=1e-2,
                      live=True, log=True)
    critic_steps: int = param(2, "critic updates per generator update (applies live)", low=1, high=10, live=True)
    gp_weight: float = param(10.0, "weight of the gradient penalty (applies live)", low=0.0, high=100.0, live=True)
    batch_size: int = param(64, "phrases per critic and generator update", low=4, high=4096)
    steps: int = param(1200, "generator updates before the run finishes", low=1, high=10_000_000)
    seed: int = param(0, "random seed for batches, initial weights and the pieces shown", low=0, high=2**31 - 1)
    pick_input: str = param("melody: alto", "picker: the input drawn anew (the rest stay as they were)",
                            choices=PICKS, live=True)
    pick_draw: int = param(1, "picker: which new draw of that input", choices=tuple(range(1, 9)), live=True)


DASHBOARD = (
    Tab("Train", "tab-train", (
        Curves(),
        PianoRollPane("samples", "train-roll", placeholder="no phrases yet: {start}"),
    ), vertical=True),
    Tab("Picker", "tab-picker", (
        Controls(("pick_input", "pick_draw"), "picker",
                 "One input drawn anew, the rest kept: b shows the phrase before."),
        PianoRollPane("picked", "picked-roll", placeholder="the picked phrase appears once training starts"),
    ), vertical=True),
)
