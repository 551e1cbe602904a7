"""Music as data for the music lessons: Bach's four-part chorales from music21's bundled
corpus (nothing is downloaded), or a folder of the learner's own MIDI files.

A piece is four voices (soprano, alto, tenor, bass), each singing one note at a time, on a
clock of 16th notes: 16 steps to a 4/4 bar. It is kept in three forms:

- notes: an int array (N, 4) of [pitch, start, end, voice], pitch a MIDI number (60 is
  middle C), start and end in steps (end is exclusive);
- a grid (4, steps): the pitch each voice sounds at each step, or REST (-1). The MuseGAN
  lesson learns this form. A grid cannot tell a held note from a repeated one, so turning
  it back into notes merges repeats;
- event tokens: a sequence of integers the music Transformer learns (see
  :func:`notes_to_tokens`): a start token, a token at every bar line, "voice v starts
  pitch p" (which also ends the voice's previous note), "voice v falls silent", and
  "time moves on k steps".

Every piece is transposed to a common key (C major, or A minor: the same scale), so the
models learn harmony rather than twelve transpositions of it. Pieces are split into
training and held-out sets by piece, never by bar, so held-out figures are about music
the model never saw.

This module needs numpy, and music21 (for the chorales) or mido (for MIDI files), both
imported where used; never torch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine import rundir

VOICES = ("soprano", "alto", "tenor", "bass")
STEPS_PER_BEAT = 4  # a step is a 16th note
STEPS_PER_BAR = 16  # 4/4 time
REST = -1
LOW, HIGH = 29, 88  # the pitch window (F1 to E6); the chorales span 31..84 once transposed
PITCHES = HIGH - LOW + 1
MAX_SHIFT = STEPS_PER_BAR  # the longest single time-shift token: a whole bar
HOLD_EVERY = 10  # every 10th piece (by name) is held out
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)  # semitones above the tonic
CHORALES_VERSION = 1  # bump when the reading or the cached arrays change
MIDI_SUFFIXES = (".mid", ".midi")
MAX_MIDI_BYTES = 20_000_000

Log = Callable[[str], None]


# ----------------------------------------------------------------------------------------
# Notes, grids and tokens
# ----------------------------------------------------------------------------------------

def monophonic(notes: np.ndarray) -> np.ndarray:
    """Each voice one note at a time: of notes starting together in a voice the highest
    stays, a note that overlaps the next one in its voice is cut where that one starts, and
    empty notes go. Returns the notes sorted by (start, voice)."""
    out = []
    for v in range(len(VOICES)):
        mine = notes[notes[:, 3] == v]
        mine = mine[np.lexsort((-mine[:, 0], mine[:, 1]))]  # by start, the highest first
        for i, (p, s, e, _) in enumerate(mine):
            if i and s == mine[i - 1][1]:
                continue  # a second note at the same start
            nxt = next((m[1] for m in mine[i + 1:] if m[1] > s), None)
            e = min(e, nxt) if nxt is not None else e
            if e > s:
                out.append((p, s, e, v))
    out = np.array(out, dtype=np.int64).reshape(-1, 4)
    return out[np.lexsort((out[:, 3], out[:, 1]))]


def notes_to_grid(notes: np.ndarray, steps: int) -> np.ndarray:
    """notes (N, 4) -> grid (4, steps) int8: each voice's pitch at each step, REST if silent."""
    grid = np.full((len(VOICES), steps), REST, dtype=np.int8)
    for p, s, e, v in notes:
        grid[v, s:min(e, steps)] = p
    return grid


def grid_to_notes(grid: np.ndarray) -> np.ndarray:
    """grid (4, steps) -> notes (N, 4). A run of equal pitches in a voice becomes one note."""
    out = []
    for v, row in enumerate(np.asarray(grid)):
        start = 0
        for t in range(1, len(row) + 1):
            if t == len(row) or row[t] != row[start]:
                if row[start] != REST:
                    out.append((int(row[start]), start, t, v))
                start = t
    out = np.array(out, dtype=np.int64).reshape(-1, 4)
    return out[np.lexsort((out[:, 3], out[:, 1]))]


# Token ids: START, BAR, then the time shifts, the rests and the notes.
START, BAR = 0, 1
SHIFT0 = 2  # SHIFT0 + k - 1: time moves on k steps, k = 1..MAX_SHIFT
REST0 = SHIFT0 + MAX_SHIFT  # REST0 + v: voice v falls silent
NOTE0 = REST0 + len(VOICES)  # NOTE0 + v * PITCHES + (pitch - LOW): voice v starts pitch
VOCAB_SIZE = NOTE0 + len(VOICES) * PITCHES
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_name(pitch: int) -> str:
    """60 -> "C4" (middle C), 61 -> "C#4"."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def token_name(token: int) -> str:
    """A token as the attention viewer writes it: ^ start, | bar line, +k time shift,
    S:C5 the soprano starts C5, B:- the bass falls silent."""
    if token == START:
        return "^"
    if token == BAR:
        return "|"
    if SHIFT0 <= token < REST0:
        return f"+{token - SHIFT0 + 1}"
    if REST0 <= token < NOTE0:
        return f"{VOICES[token - REST0][0].upper()}:-"
    v, p = divmod(token - NOTE0, PITCHES)
    return f"{VOICES[v][0].upper()}:{pitch_name(LOW + p)}"


def notes_to_tokens(notes: np.ndarray, steps: int) -> list[int]:
    """The event form of a piece, in one canonical order so that decoding and encoding
    again gives the same tokens: START; then at each moment where something happens (or a
    bar begins): BAR if a bar begins there, then for each voice in order S, A, T, B its
    note-on ("starts pitch p") or its note-off ("falls silent", only when no note follows
    at once); then a time shift to the next such moment. Pitches outside LOW..HIGH are
    moved by octaves into it."""
    events: dict[int, dict[int, int]] = {}  # time -> voice -> token
    for v in range(len(VOICES)):
        mine = notes[notes[:, 3] == v]
        mine = mine[np.argsort(mine[:, 1], kind="stable")]
        for i, (p, s, e, _) in enumerate(mine):
            events.setdefault(int(s), {})[v] = NOTE0 + v * PITCHES + int(fold_pitch(p)) - LOW
            if i + 1 == len(mine) or mine[i + 1][1] != e:
                events.setdefault(int(e), {}).setdefault(v, REST0 + v)
    moments = sorted(set(events) | set(range(0, steps, STEPS_PER_BAR)) | {steps})
    tokens = [START]
    for here, there in zip(moments, moments[1:] + [None]):
        if here % STEPS_PER_BAR == 0 and here < steps:
            tokens.append(BAR)
        tokens += [events[here][v] for v in sorted(events.get(here, {}))]
        if there is not None:  # bar lines are moments, so a shift is at most a bar
            tokens.append(SHIFT0 + there - here - 1)
    return tokens


def tokens_to_notes(tokens) -> tuple[np.ndarray, int]:
    """Decode event tokens (a model's output may be any sequence) -> (notes (N, 4), steps).
    Time is the sum of the shifts; BAR and START only mark places. A note-on ends the
    voice's sounding note and starts the new one; notes still sounding at the end stop
    there. steps is the end rounded up to whole bars."""
    t, sounding, out = 0, {}, []
    for token in tokens:
        token = int(token)
        if SHIFT0 <= token < REST0:
            t += token - SHIFT0 + 1
        elif REST0 <= token < VOCAB_SIZE:
            v = (token - REST0) if token < NOTE0 else (token - NOTE0) // PITCHES
            if v in sounding:
                p, s = sounding.pop(v)
                if t > s:
                    out.append((p, s, t, v))
            if token >= NOTE0:
                sounding[v] = (LOW + (token - NOTE0) % PITCHES, t)
    for v, (p, s) in sounding.items():
        if t > s:
            out.append((p, s, t, v))
    notes = np.array(out, dtype=np.int64).reshape(-1, 4)
    notes = notes[np.lexsort((notes[:, 3], notes[:, 1]))]
    steps = -(-t // STEPS_PER_BAR) * STEPS_PER_BAR
    return notes, max(steps, STEPS_PER_BAR)


def bar_starts(tokens) -> list[int]:
    """Positions of the BAR tokens (where each bar begins in the token sequence)."""
    return [i for i, tok in enumerate(tokens) if int(tok) == BAR]


def fold_pitch(p: int) -> int:
    """A pitch moved by whole octaves into LOW..HIGH."""
    while p < LOW:
        p += 12
    while p > HIGH:
        p -= 12
    return p


def best_scale(notes: np.ndarray) -> int:
    """The tonic (0 = C .. 11 = B) of the major scale that holds the most note time: the
    piece's key up to major/relative minor, which share a scale."""
    weight = np.zeros(12)
    np.add.at(weight, notes[:, 0] % 12, notes[:, 2] - notes[:, 1])
    fits = [sum(weight[(t + d) % 12] for d in MAJOR_SCALE) for t in range(12)]
    return int(np.argmax(fits))


def to_common_key(notes: np.ndarray, tonic: int) -> tuple[np.ndarray, int]:
    """Transpose a piece whose major scale starts on ``tonic`` to C major (A minor), by
    the smaller move (at most 6 semitones either way). Returns (notes, semitones)."""
    shift = -tonic % 12
    shift = shift - 12 if shift > 6 else shift
    out = notes.copy()
    out[:, 0] = [fold_pitch(p + shift) for p in out[:, 0]]
    return out, shift


# ----------------------------------------------------------------------------------------
# A set of pieces
# ----------------------------------------------------------------------------------------

@dataclass
class MusicSet:
    """Pieces in all three forms, with the held-out split made by piece."""

    source: str  # in words, for the log
    names: list[str]
    notes: list[np.ndarray]  # per piece (N, 4)
    grids: list[np.ndarray]  # per piece (4, steps) int8
    tokens: list[np.ndarray]  # per piece (L,) int16

    @property
    def held_out(self) -> list[int]:
        """Every HOLD_EVERY-th piece; at least one when there are two or more."""
        n = len(self.names)
        held = [i for i in range(n) if i % HOLD_EVERY == HOLD_EVERY - 1]
        return held or ([n - 1] if n > 1 else [])

    @property
    def train(self) -> list[int]:
        held = set(self.held_out)
        return [i for i in range(len(self.names)) if i not in held]

    def bars(self, which: list[int] | None = None) -> int:
        idx = range(len(self.names)) if which is None else which
        return sum(self.grids[i].shape[1] // STEPS_PER_BAR for i in idx)

    def describe(self) -> str:
        def count(n: int, what: str) -> str:
            return f"{n:,} {what}{'' if n == 1 else 's'}"

        return (f"{self.source}: {count(len(self.names), 'piece')}, {count(self.bars(), 'bar')} "
                f"({count(len(self.train), 'piece')}, {count(self.bars(self.train), 'bar')} for training; "
                f"{count(len(self.held_out), 'piece')}, {count(self.bars(self.held_out), 'bar')} held out)")


def make_set(source: str, names: list[str], notes: list[np.ndarray], lengths: list[int]) -> MusicSet:
    return MusicSet(source, names, notes, [notes_to_grid(n, s) for n, s in zip(notes, lengths)],
                    [np.array(notes_to_tokens(n, s), dtype=np.int16) for n, s in zip(notes, lengths)])


def load_music(dataset: str, data_path: str = "", max_pieces: int = 0, log: Log | None = None) -> MusicSet:
    """The recipes' data: ``dataset`` is "chorales" (music21's corpus, cached) or
    "midi" (every .mid/.midi file under the folder ``data_path``)."""
    if dataset == "chorales":
        return load_chorales(max_pieces, log=log)
    if dataset == "midi":
        return read_midi_folder(data_path, max_pieces, log=log)
    raise ValueError(f"unknown music dataset {dataset!r}: chorales or midi")


def _whole_bars(notes: np.ndarray) -> int:
    end = int(notes[:, 2].max()) if len(notes) else 0
    return max(STEPS_PER_BAR, -(-end // STEPS_PER_BAR) * STEPS_PER_BAR)


# ----------------------------------------------------------------------------------------
# Bach's chorales, from music21's corpus, cached as arrays
# ----------------------------------------------------------------------------------------

def _chorale_files() -> list[tuple[str, Path]]:
    """(name, path) of every chorale in music21's bundled corpus, by name. The corpus is
    files inside the installed package; preferring the .mxl copy when a .krn one exists
    too. Nothing here touches the network."""
    from music21 import corpus

    found = {}
    for name in corpus.chorales.Iterator(returnType="filename"):  # a few are listed twice
        paths = corpus.getWork(name)
        paths = paths if isinstance(paths, list) else [paths]
        paths = sorted((Path(p) for p in paths), key=lambda p: p.suffix != ".mxl")
        if paths:
            found[name.split("/")[-1]] = paths[0]
    return sorted(found.items())


NOT_FOUR_VOICES, NOT_4_4, NO_NOTES = "not in four voices", "not in 4/4", "no notes"  # why a chorale is skipped
SKIP_REASONS = (NOT_FOUR_VOICES, NOT_4_4, NO_NOTES)  # in the order parse_chorale tests them


def parse_chorale(path: Path) -> tuple[np.ndarray, int, int] | str:
    """One chorale -> (notes (N, 4) in C major / A minor, steps, semitones moved), or why it
    is skipped: NOT_FOUR_VOICES (more parts than soprano, alto, tenor and bass: about one in
    18 of music21's chorales), NOT_4_4 (in 3/4 or 3/2, or changing time: about one in 10),
    or NO_NOTES.

    A chorale often starts with an upbeat; the notes are moved right so that bar lines
    fall on multiples of 16 (the first bar then starts with a rest). Tied notes are joined,
    a chord within one voice keeps its top note, and times are rounded to 16ths."""
    from music21 import chord, converter, environment, meter, stream

    # music21 reaches the network only to parse a URL, and asks first (autoDownload);
    # this process never allows it, whatever the learner's music21 settings say.
    environment.Environment()["autoDownload"] = "deny"
    score = converter.parseFile(path, forceSource=True, storePickle=False)  # no pickles written
    parts = list(score.parts)
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)}
    if len(parts) != len(VOICES):
        return NOT_FOUR_VOICES
    if signatures != {"4/4"}:
        return NOT_4_4
    measures = parts[0].getElementsByClass(stream.Measure)
    upbeat = float(measures[1].offset) % 4 if len(measures) > 1 else 0.0
    pad = (4 - upbeat) % 4  # quarters of rest that put the first full bar at a bar line
    out = []
    for v, part in enumerate(parts):
        for n in part.stripTies().flatten().notes:
            pitch = max(p.midi for p in n.pitches) if isinstance(n, chord.Chord) else n.pitch.midi
            start = round((float(n.offset) + pad) * STEPS_PER_BEAT)
            end = round((float(n.offset) + float(n.quarterLength) + pad) * STEPS_PER_BEAT)
            if end > start:
                out.append((pitch, start, end, v))
    if not out:
        return NO_NOTES
    notes = monophonic(np.array(out, dtype=np.int64))
    keys = score.recurse().getElementsByClass("KeySignature")
    sharps = keys[0].sharps if keys else 0
    notes, shift = to_common_key(notes, (7 * sharps) % 12)  # each sharp moves the tonic a fifth up
    return notes, _whole_bars(notes), shift


def kept_text(kept: int, skipped: dict[str, int]) -> str:
    """ "296 kept (19 not in four voices, 35 not in 4/4)": how many were kept and why the
    others were not, each reason with its count."""
    reasons = ", ".join(f"{skipped[why]} {why}" for why in SKIP_REASONS if skipped.get(why))
    return f"{kept} kept" + (f" ({reasons})" if reasons else "")


def _cache_path(max_pieces: int) -> Path:
    return rundir.cache_dir() / f"chorales-v{CHORALES_VERSION}-{max_pieces or 'all'}.npz"


def load_chorales(max_pieces: int = 0, log: Log | None = None) -> MusicSet:
    """Bach's chorales (the first ``max_pieces`` by name, 0 = all), read from music21's
    corpus once and then kept in the GenStudio cache as arrays (notes, grids, tokens),
    written atomically; a damaged cache file is read again, not an error."""
    log = log or (lambda message: None)
    path = _cache_path(max_pieces)
    cached = _read_cache(path)
    if cached is not None:
        return cached
    files = _chorale_files()
    if max_pieces:
        files = files[:max_pieces]
    log(f"reading {len(files)} Bach chorales from music21's corpus (once: later runs use the cache)")
    names, notes, lengths, skipped = [], [], [], {}
    for i, (name, file) in enumerate(files, 1):
        parsed = parse_chorale(file)
        if isinstance(parsed, str):
            skipped[parsed] = skipped.get(parsed, 0) + 1
        else:
            names.append(name)
            notes.append(parsed[0])
            lengths.append(parsed[1])
        if i % 25 == 0 and i < len(files):
            log(f"read {i}/{len(files)} chorales; {kept_text(len(names), skipped)}")
    log(f"{len(files)} chorales read; {kept_text(len(names), skipped)}")
    if not names:
        raise ValueError("none of the chorales read had four voices in 4/4")
    music = make_set("Bach chorales (music21 corpus)", names, notes, lengths)
    _write_cache(path, music)
    return music


def _concat(arrays: list[np.ndarray], axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    sizes = [a.shape[axis] for a in arrays]
    return np.concatenate(arrays, axis=axis), np.cumsum([0] + sizes)


def _write_cache(path: Path, music: MusicSet) -> None:
    notes, note_at = _concat(music.notes)
    grids, grid_at = _concat(music.grids, axis=1)
    tokens, token_at = _concat(music.tokens)
    buf = io.BytesIO()
    np.savez_compressed(buf, version=CHORALES_VERSION, names=np.array(music.names), notes=notes.astype(np.int16),
                        note_at=note_at, grids=grids, grid_at=grid_at, tokens=tokens, token_at=token_at)
    rundir.atomic_write_bytes(path, buf.getvalue())


def _read_cache(path: Path) -> MusicSet | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:  # plain arrays: nothing in it can run code
            if int(z["version"]) != CHORALES_VERSION:
                return None
            note_at, grid_at, token_at = z["note_at"], z["grid_at"], z["token_at"]
            names = [str(n) for n in z["names"]]
            notes = [z["notes"][a:b].astype(np.int64) for a, b in zip(note_at, note_at[1:])]
            grids = [z["grids"][:, a:b] for a, b in zip(grid_at, grid_at[1:])]
            tokens = [z["tokens"][a:b] for a, b in zip(token_at, token_at[1:])]
        if not names or not len(names) == len(notes) == len(grids) == len(tokens):
            return None
        return MusicSet("Bach chorales (music21 corpus)", names, notes, grids, tokens)
    except Exception:  # noqa: BLE001 - any damage means "read the corpus again"
        return None


# ----------------------------------------------------------------------------------------
# A folder of the learner's MIDI files
# ----------------------------------------------------------------------------------------

def read_midi_notes(path: str | Path) -> np.ndarray:
    """One MIDI file -> notes (N, 4) in steps of a 16th note (the file's beat is a quarter).

    Voices: the file's parts (its tracks, or channels within a track; drums left out) when
    there are one to four that play one note at a time, highest first; otherwise notes
    that start together are dealt out by pitch, the highest to the soprano and the lowest
    to the bass. Raises ValueError for a file that is not MIDI or
    has no notes."""
    import mido

    p = Path(path)
    if p.stat().st_size > MAX_MIDI_BYTES:
        raise ValueError(f"{p} is {p.stat().st_size / 1e6:,.0f} MB; a MIDI file over "
                         f"{MAX_MIDI_BYTES / 1e6:,.0f} MB is not music we can learn from")
    try:
        mid = mido.MidiFile(p, clip=True)
    except Exception as e:  # noqa: BLE001 - mido raises OSError, EOFError, ValueError, ... on bad files
        raise ValueError(f"{p} is not a MIDI file that can be read ({type(e).__name__}: {e})") from None
    per_beat = mid.ticks_per_beat or 480
    raw = []  # (pitch, start tick, end tick, part)
    parts: dict[tuple[int, int], int] = {}
    for k, track in enumerate(mid.tracks):
        tick, open_notes = 0, {}
        for msg in track:
            tick += msg.time
            if msg.type not in ("note_on", "note_off") or msg.channel == 9:  # channel 10: drums
                continue
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault(key, []).append(tick)
            elif open_notes.get(key):
                part = parts.setdefault((k, msg.channel), len(parts))
                raw.append((msg.note, open_notes[key].pop(0), tick, part))
    steps = [(n, round(s * STEPS_PER_BEAT / per_beat), round(e * STEPS_PER_BEAT / per_beat), part)
             for n, s, e, part in raw]
    steps = [x for x in steps if x[2] > x[1]]
    if not steps:
        raise ValueError(f"{p} has no notes (or only drums, or notes shorter than a 16th)")
    notes = np.array(steps, dtype=np.int64)
    if len(parts) <= len(VOICES) and not any(_chordal(notes[notes[:, 3] == k]) for k in parts.values()):
        mean = {k: notes[notes[:, 3] == k, 0].mean() for k in np.unique(notes[:, 3])}
        rank = {k: i for i, k in enumerate(sorted(mean, key=lambda k: -mean[k]))}
        notes[:, 3] = [rank[k] for k in notes[:, 3]]
    else:  # chords in one part (a piano), or more parts than voices: deal notes out by pitch
        notes = notes[np.lexsort((-notes[:, 0], notes[:, 1]))]
        for s in np.unique(notes[:, 1]):
            together = np.nonzero(notes[:, 1] == s)[0]
            notes[together, 3] = _deal(len(together))
    notes[:, 1:3] -= notes[:, 1].min() // STEPS_PER_BAR * STEPS_PER_BAR  # skip leading empty bars
    return monophonic(notes)


def _chordal(part: np.ndarray) -> bool:
    """Whether a part plays chords: more than a tenth of its notes start with another."""
    _, counts = np.unique(part[:, 1], return_counts=True)
    return (counts[counts > 1].sum()) > 0.1 * len(part)


def _deal(n: int) -> list[int]:
    """Voices for n notes starting together, highest first: the top to the soprano, the
    bottom to the bass, the ones between to alto and tenor (extras join the tenor, where
    only the highest stays)."""
    if n == 1:
        return [0]
    middle = [1, 2] + [2] * (n - 4) if n >= 4 else [1] * (n - 2)
    return [0, *middle, 3]


def read_midi_folder(folder: str | Path, max_pieces: int = 0, log: Log | None = None) -> MusicSet:
    """Every .mid/.midi file under ``folder`` (sorted by path), each in the common key."""
    log = log or (lambda message: None)
    if not str(folder).strip():
        raise ValueError("dataset=midi needs data_path: a folder of .mid or .midi files")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; data_path must be a folder of .mid or .midi files")
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in MIDI_SUFFIXES)
    if max_pieces:
        files = files[:max_pieces]
    if len(files) < 2:
        raise ValueError(f"{root} has {len(files)} .mid/.midi file{'s' if len(files) != 1 else ''}; at least 2 "
                         "are needed (one is held out)")
    names, notes, lengths = [], [], []
    for f in files:
        raw = read_midi_notes(f)
        piece, _ = to_common_key(raw, best_scale(raw))
        names.append(str(f.relative_to(root)))
        notes.append(piece)
        lengths.append(_whole_bars(piece))
    music = make_set(f"MIDI files in {root}", names, notes, lengths)
    log(f"read {len(files)} MIDI files")
    return music


# ----------------------------------------------------------------------------------------
# What the piano roll shows
# ----------------------------------------------------------------------------------------

def roll_view(notes: np.ndarray, steps: int, label: str, tempo: float, **extra) -> dict:
    """The data artifact a piano roll draws (engine.panes.PianoRollPane): JSON-ready."""
    return {"notes": np.asarray(notes, dtype=np.int64).reshape(-1, 4).tolist(), "steps": int(steps),
            "voices": list(VOICES), "tempo": tempo, "label": label, **extra}


def join_grids(grids) -> np.ndarray:
    """Phrases (each (4, steps)) one after another: one grid."""
    return np.concatenate(list(grids), axis=1)
