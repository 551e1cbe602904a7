"""Pieces out: a MIDI file (with mido) and a WAV file from our own small synthesiser
(numpy: a few harmonics under an envelope). Both take notes as the music lessons hold them:
an array (N, 4) of [pitch, start, end, voice], times in 16th-note steps.

Torch-free and UI-free: the studio's piano roll imports it to export and play a piece, and
the recipes use it for ``sample_file``.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from engine.data.music import STEPS_PER_BEAT, VOICES
from engine.rundir import atomic_write_bytes

TEMPO = 80  # quarter notes a minute: a chorale's calm pace
TICKS_PER_BEAT = 480
PROGRAM = 19  # General MIDI "church organ" for every voice
SAMPLE_RATE = 22_050
HARMONICS = (1.0, 0.5, 0.3, 0.15, 0.08)  # amplitude of partials 1..5: a soft, reedy tone
ATTACK, DECAY, SUSTAIN, RELEASE = 0.01, 0.12, 0.6, 0.08  # seconds, seconds, level, seconds
VOICE_GAIN = (1.0, 0.8, 0.8, 0.9)  # the tune on top a little louder
PIECE_SUFFIXES = (".mid", ".wav")


def step_seconds(tempo: float = TEMPO) -> float:
    """How long one 16th-note step lasts: a quarter is 60 / tempo seconds."""
    return 60.0 / tempo / STEPS_PER_BEAT


def midi_bytes(notes: np.ndarray, tempo: float = TEMPO) -> bytes:
    """A type-1 MIDI file: a tempo track, then one track and one channel per voice."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0),
                           mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    mid.tracks.append(meta)
    per_step = TICKS_PER_BEAT // STEPS_PER_BEAT
    for v, name in enumerate(VOICES):
        events = []  # (tick, 0 = off before 1 = on at the same tick, pitch)
        for p, s, e, _ in notes[notes[:, 3] == v]:
            events += [(int(s) * per_step, 1, int(p)), (int(e) * per_step, 0, int(p))]
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                                mido.Message("program_change", channel=v, program=PROGRAM, time=0)])
        now = 0
        for tick, on, p in sorted(events):
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, channel=v, note=p, velocity=80 if on else 0, time=tick - now))
            now = tick
        mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def envelope(n: int, sr: int) -> np.ndarray:
    """Attack, decay to the sustain level, then a release after the note's n samples: the
    note swells in, settles, and fades out instead of clicking."""
    a, d, r = (max(1, int(x * sr)) for x in (ATTACK, DECAY, RELEASE))
    held = np.concatenate([np.linspace(0, 1, a, endpoint=False), np.linspace(1, SUSTAIN, d, endpoint=False)])
    held = np.concatenate([held, np.full(max(0, n - len(held)), SUSTAIN)])[:n]
    last = held[-1] if n else 0.0
    return np.concatenate([held, np.linspace(last, 0, r)])


def synthesize(notes: np.ndarray, tempo: float = TEMPO, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Audio samples in [-1, 1]: each note a sum of harmonics of its frequency,
    f = 440 * 2^((pitch - 69) / 12), under the envelope."""
    dt = step_seconds(tempo)
    end = int(notes[:, 2].max()) if len(notes) else 0
    out = np.zeros(int(end * dt * sr) + int(RELEASE * sr) + 2)
    for p, s, e, v in notes:
        start, n = int(s * dt * sr), int((e - s) * dt * sr)
        env = envelope(n, sr)
        t = np.arange(len(env)) / sr
        f = 440.0 * 2 ** ((p - 69) / 12)
        tone = sum(a * np.sin(2 * np.pi * f * k * t) for k, a in enumerate(HARMONICS, 1) if f * k < sr / 2)
        out[start:start + len(env)] += VOICE_GAIN[int(v) % len(VOICE_GAIN)] * env * tone
    peak = np.abs(out).max()
    return out / peak * 0.9 if peak > 0 else out


def wav_bytes(notes: np.ndarray, tempo: float = TEMPO, sr: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit PCM WAV file of :func:`synthesize`."""
    pcm = (synthesize(notes, tempo, sr) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def write_piece(notes, path: str | Path, tempo: float = TEMPO) -> Path:
    """Write ``notes`` as a .mid or a .wav file, by the path's suffix (atomically)."""
    path = Path(path)
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    suffix = path.suffix.lower()
    if suffix not in PIECE_SUFFIXES:
        raise ValueError(f"a piece is written as .mid or .wav, not {path.suffix or 'a name without a suffix'!r}")
    atomic_write_bytes(path, midi_bytes(notes, tempo) if suffix == ".mid" else wav_bytes(notes, tempo))
    return path
