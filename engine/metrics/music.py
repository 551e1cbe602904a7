"""Is it music like the chorales? Figures computed on grids (4 voices x steps of 16th
notes, a MIDI pitch or REST in each cell), the same way for generated pieces and for the
held-out chorales they are compared with (numpy only).

- scale: the share of sounding cells whose pitch is in the piece's own major scale (the
  one that holds the most note time; a minor key shares its relative major's scale, so a
  raised leading tone counts as outside).
- four_voices: the share of steps where all four voices sound.
- empty_bars: the share of (voice, bar) pairs with no note at all (MuseGAN's "EB").
- in_range: the share of sounding cells inside the voice's usual range (RANGES).
- chords: the share of beats whose sounding pitch classes (two or more voices) fit one
  triad or seventh chord.
- tonal_distance: at each step, for each pair of voices sounding, the distance between
  their pitch classes in the tonal space of Harte, Sandler and Gasser (2006), where pitch
  classes sit on circles of fifths, minor thirds and major thirds, so consonant intervals
  lie close together (a fifth 1.7, a tritone 2.8); the mean. Lower: the voices agree on
  the harmony. MuseGAN's "TD" compares each bar's averaged pitch classes instead; an
  average lets a voice that wanders over every pitch class (noise) look close to all.
"""

from __future__ import annotations

import numpy as np

from engine.data.music import MAJOR_SCALE, REST, STEPS_PER_BAR, STEPS_PER_BEAT, best_scale, grid_to_notes

# Usual ranges of the four voices (MIDI pitches), generous by a step or two.
RANGES = ((59, 81), (53, 74), (47, 69), (36, 62))  # soprano B3-A5, alto F3-D5, tenor B2-A4, bass C2-D4
# Chords as pitch-class sets above a root: major, minor, diminished, and the seventh chords.
CHORD_SHAPES = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 7, 10), (0, 3, 7, 10), (0, 3, 6, 10), (0, 3, 6, 9),
                (0, 4, 7, 11))
CHORDS = [frozenset((root + d) % 12 for d in shape) for shape in CHORD_SHAPES for root in range(12)]
# Tonal space: circle of fifths (7 pi / 6 per semitone), minor thirds (3 pi / 2), major thirds (2 pi / 3).
_ANGLES = np.array([7 * np.pi / 6, 3 * np.pi / 2, 2 * np.pi / 3])
_RADII = np.array([1.0, 1.0, 0.5])
_PC = np.arange(12)[:, None] * _ANGLES[None, :]  # (12, 3)
TONAL_POINTS = np.stack([_RADII * np.sin(_PC), _RADII * np.cos(_PC)], axis=2).reshape(12, 6)  # (12, 6)

NAMES = ("scale", "four_voices", "empty_bars", "in_range", "chords", "tonal_distance")


def scale_share(grid: np.ndarray) -> float:
    sounding = grid[grid != REST].astype(int)
    if not len(sounding):
        return 0.0
    tonic = best_scale(grid_to_notes(grid))
    return float(np.isin((sounding - tonic) % 12, MAJOR_SCALE).mean())


def four_voice_share(grid: np.ndarray) -> float:
    return float((grid != REST).all(axis=0).mean())


def empty_bar_share(grid: np.ndarray) -> float:
    bars = grid.reshape(grid.shape[0], -1, STEPS_PER_BAR)  # (4, bars, 16)
    return float((bars == REST).all(axis=2).mean())


def in_range_share(grid: np.ndarray) -> float:
    inside, total = 0, 0
    for v, (lo, hi) in enumerate(RANGES):
        row = grid[v][grid[v] != REST].astype(int)
        inside += int(((row >= lo) & (row <= hi)).sum())
        total += len(row)
    return inside / total if total else 0.0


def chord_share(grid: np.ndarray) -> float:
    fits, beats = 0, 0
    for t in range(0, grid.shape[1], STEPS_PER_BEAT):
        pcs = frozenset(int(p) % 12 for p in grid[:, t] if p != REST)
        if sum(p != REST for p in grid[:, t]) < 2:
            continue
        beats += 1
        fits += any(pcs <= chord for chord in CHORDS)
    return fits / beats if beats else 0.0


def tonal_distance(grid: np.ndarray) -> float:
    points = TONAL_POINTS[np.where(grid == REST, 0, grid.astype(int)) % 12]  # (4, steps, 6)
    dists = []
    for i in range(grid.shape[0]):
        for j in range(i + 1, grid.shape[0]):
            both = (grid[i] != REST) & (grid[j] != REST)
            dists.append(np.linalg.norm(points[i, both] - points[j, both], axis=1))
    dists = np.concatenate(dists)
    return float(dists.mean()) if len(dists) else float("nan")


def music_quality(grids: list[np.ndarray]) -> dict[str, float]:
    """The mean of each figure over pieces (grids of whole bars)."""
    figures = {name: [] for name in NAMES}
    for grid in grids:
        figures["scale"].append(scale_share(grid))
        figures["four_voices"].append(four_voice_share(grid))
        figures["empty_bars"].append(empty_bar_share(grid))
        figures["in_range"].append(in_range_share(grid))
        figures["chords"].append(chord_share(grid))
        figures["tonal_distance"].append(tonal_distance(grid))
    return {name: float(np.nanmean(values)) if values else float("nan") for name, values in figures.items()}
