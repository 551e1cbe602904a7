"""Music as data and sound, shared by the MuseGAN and music Transformer lessons: reading the
chorales from music21's corpus (never the network) and caching them, grids and event
tokens that round-trip, MIDI files that read back with the same notes, the synthesiser's
WAV, a folder of MIDI files with clear refusals, the music figures, and the piano roll's
drawing at two sizes."""

from __future__ import annotations

import socket
import wave

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE, step_seconds, synthesize, write_piece
from engine.data import music
from engine.data.music import (BAR, REST, START, VOCAB_SIZE, grid_to_notes, load_chorales, notes_to_grid,
                               notes_to_tokens, read_midi_folder, read_midi_notes, token_name, tokens_to_notes)
from engine.metrics.music import music_quality
from studio.widgets.piano_roll import BAR as BAR_COLOUR, CURSOR, GUTTER, Layout, roll_text

# A C major cadence, one bar: I (half), IV (quarter), V (quarter); the soprano repeats G.
CADENCE = np.array([
    [72, 0, 8, 0], [72, 8, 12, 0], [71, 12, 16, 0],
    [67, 0, 8, 1], [69, 8, 12, 1], [67, 12, 16, 1],
    [64, 0, 8, 2], [65, 8, 12, 2], [62, 12, 16, 2],
    [48, 0, 8, 3], [53, 8, 12, 3], [55, 12, 16, 3],
])


def piece(bars: int = 2, rest_in_alto: bool = True) -> np.ndarray:
    """The cadence repeated, with a beat of rest in the alto of the last bar."""
    notes = np.concatenate([CADENCE + [0, 16 * b, 16 * b, 0] for b in range(bars)])
    if rest_in_alto:
        last = (notes[:, 3] == 1) & (notes[:, 1] == 16 * (bars - 1) + 12)
        notes = notes[~last]
    return notes[np.lexsort((notes[:, 3], notes[:, 1]))]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was reached")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- the chorales --
def test_chorales_are_read_from_the_bundled_corpus_without_the_network_then_cached(no_network, monkeypatch):
    said = []
    first = load_chorales(3, log=said.append)
    assert "reading 3 Bach chorales" in said[0] and said[-1].startswith("3 chorales read; ")
    assert len(first.names) >= 2 and first.describe().startswith("Bach chorales (music21 corpus): ")
    assert "bars" in first.describe() and "held out" in first.describe()
    for notes, grid, tokens in zip(first.notes, first.grids, first.tokens):
        assert grid.shape[0] == 4 and grid.shape[1] % 16 == 0  # whole bars of 16 steps
        assert set(np.unique(notes[:, 3])) == {0, 1, 2, 3}
        assert tokens[0] == START and tokens.max() < VOCAB_SIZE
    # The second time comes from the cache, identical, without music21.
    monkeypatch.setattr(music, "parse_chorale", lambda path: pytest.fail("parsed again"))
    again = load_chorales(3, log=said.append)
    assert again.names == first.names
    assert all(np.array_equal(a, b) for a, b in zip(again.grids, first.grids))
    assert all(np.array_equal(a, b) for a, b in zip(again.tokens, first.tokens))


def test_the_reading_line_says_why_each_skipped_chorale_was_dropped(no_network):
    """"350 chorales read (296 kept)" did not say why 54 were dropped. The first nine by
    name include one in 3/4 (bwv11.6) and one in more than four parts (bwv112.5): each is
    counted under its reason, and the counts add up to the chorales read."""
    from music21 import corpus

    said = []
    nine = load_chorales(9, log=said.append)
    assert len(corpus.parse("bach/bwv112.5").parts) > 4  # the reasons are the corpus's own
    files = dict(music._chorale_files())
    assert music.parse_chorale(files["bwv11.6"]) == music.NOT_4_4
    assert music.parse_chorale(files["bwv112.5"]) == music.NOT_FOUR_VOICES
    line = said[-1]
    head, _, reasons = line.partition(" (")
    assert head == f"9 chorales read; {len(nine.names)} kept", line
    counts = {why: int(n) for n, why in (part.split(" ", 1) for part in reasons.rstrip(")").split(", "))}
    assert counts.get(music.NOT_4_4, 0) >= 1 and counts.get(music.NOT_FOUR_VOICES, 0) >= 1, line
    assert set(counts) <= set(music.SKIP_REASONS) and sum(counts.values()) == 9 - len(nine.names)
    assert music.kept_text(3, {}) == "3 kept"


def test_reading_is_deterministic_and_a_damaged_cache_is_read_again(no_network):
    first = load_chorales(2)
    path = music._cache_path(2)
    path.write_bytes(b"not an npz file")
    again = load_chorales(2)
    assert again.names == first.names
    assert all(np.array_equal(a, b) for a, b in zip(again.notes, first.notes))
    assert music._read_cache(path) is not None  # rewritten whole


def test_chorales_are_in_the_common_key_and_bar_lines_fall_on_multiples_of_16():
    chorales = load_chorales(3)
    for notes in chorales.notes:
        # Transposed to C major / A minor: nearly all note time is on the white keys.
        white = np.isin(notes[:, 0] % 12, music.MAJOR_SCALE)
        assert (white * (notes[:, 2] - notes[:, 1])).sum() / (notes[:, 2] - notes[:, 1]).sum() > 0.85
        # A piece with an upbeat starts with rests: the upbeat ends at a bar line.
        first = notes[notes[:, 1] == notes[:, 1].min()]
        assert first[0, 1] in (0, 4, 8, 12)


# -- grids and tokens --
def test_grid_round_trip_merges_repeated_notes_only():
    notes = piece()
    grid = notes_to_grid(notes, 32)
    assert grid.shape == (4, 32) and grid[1, 28] == REST
    back = grid_to_notes(grid)
    assert np.array_equal(notes_to_grid(back, 32), grid)
    # Repeated pitches merge: the soprano's C twice in each bar, and the alto's G across
    # the bar line: three notes fewer.
    assert len(back) == len(notes) - 3 and [72, 0, 12, 0] in back.tolist() and [67, 12, 24, 1] in back.tolist()


def test_tokens_round_trip_both_ways():
    notes = piece()
    tokens = notes_to_tokens(notes, 32)
    assert tokens[:2] == [START, BAR] and tokens.count(BAR) == 2
    decoded, steps = tokens_to_notes(tokens)
    assert steps == 32 and np.array_equal(decoded, notes)
    assert notes_to_tokens(decoded, steps) == tokens  # tokens -> notes -> tokens
    names = [token_name(t) for t in tokens[:8]]
    assert names == ["^", "|", "S:C5", "A:G4", "T:E4", "B:C3", "+8", "S:C5"]
    assert "A:-" in [token_name(t) for t in tokens]  # the alto's rest


def test_tokens_of_real_chorales_round_trip():
    chorales = load_chorales(3)
    for notes, grid, tokens in zip(chorales.notes, chorales.grids, chorales.tokens):
        decoded, steps = tokens_to_notes(tokens)
        assert steps == grid.shape[1] and np.array_equal(decoded, notes)
        assert notes_to_tokens(decoded, steps) == tokens.tolist()


def test_any_token_sequence_decodes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        notes, steps = tokens_to_notes(rng.integers(0, VOCAB_SIZE, 200))
        assert steps % 16 == 0 and (notes[:, 2] > notes[:, 1]).all()
        assert ((notes[:, 3] >= 0) & (notes[:, 3] < 4)).all()


# -- files --
def test_midi_written_reads_back_with_the_same_notes(tmp_path):
    import mido

    notes = piece()
    path = write_piece(notes, tmp_path / "piece.mid")
    mid = mido.MidiFile(path)
    assert len(mid.tracks) == 5 and mid.tracks[1].name == "soprano"
    assert np.array_equal(read_midi_notes(path), notes)


def test_wav_length_and_range(tmp_path):
    notes = piece()
    path = write_piece(notes, tmp_path / "piece.wav", tempo=120)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    seconds = 32 * step_seconds(120)  # two bars at 120 quarters a minute: 4 s
    assert seconds == pytest.approx(4.0)
    assert len(pcm) / SAMPLE_RATE == pytest.approx(seconds, abs=0.1)
    assert 0.85 * 32767 < np.abs(pcm).max() <= 0.9 * 32767 + 1  # normalised, never clipped
    audio = synthesize(notes, 120)
    assert np.abs(audio[: SAMPLE_RATE // 2]).max() > 0.1  # sound from the first beat
    with pytest.raises(ValueError, match=".mid or .wav"):
        write_piece(notes, tmp_path / "piece.mp3")


def test_a_midi_folder_is_read_and_bad_files_are_refused_clearly(tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    for k in range(3):
        write_piece(piece(bars=2 + k), folder / f"p{k}.mid")
    songs = read_midi_folder(folder)
    assert songs.names == ["p0.mid", "p1.mid", "p2.mid"] and songs.held_out == [2]
    assert songs.bars() == 2 + 3 + 4 and np.array_equal(songs.notes[0], piece(2))  # already in C
    (folder / "broken.mid").write_bytes(b"this is not a MIDI file at all")
    with pytest.raises(ValueError, match="broken.mid is not a MIDI file"):
        read_midi_folder(folder)
    (folder / "broken.mid").unlink()
    write_piece(np.zeros((0, 4), dtype=int), folder / "empty.mid")
    with pytest.raises(ValueError, match="empty.mid has no notes"):
        read_midi_folder(folder)
    with pytest.raises(ValueError, match="at least 2"):
        read_midi_folder(_one_file(tmp_path))
    with pytest.raises(ValueError, match="not a folder"):
        read_midi_folder(folder / "p0.mid")
    with pytest.raises(ValueError, match="needs data_path"):
        read_midi_folder("")


def _one_file(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    write_piece(piece(), one / "only.mid")
    return one


def test_one_polyphonic_track_is_dealt_out_by_pitch(tmp_path):
    import mido

    mid = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack()
    for chord in ([60, 64, 67, 72, 48], [62, 65, 69, 74, 50]):  # five notes at once: one is left out
        for p in chord:
            track.append(mido.Message("note_on", note=p, velocity=70, time=0))
        for i, p in enumerate(chord):
            track.append(mido.Message("note_off", note=p, velocity=0, time=96 if i == 0 else 0))
    mid.tracks.append(track)
    mid.save(tmp_path / "block.mid")
    notes = read_midi_notes(tmp_path / "block.mid")
    assert notes.tolist() == [[72, 0, 4, 0], [67, 0, 4, 1], [64, 0, 4, 2], [48, 0, 4, 3],
                              [74, 4, 8, 0], [69, 4, 8, 1], [65, 4, 8, 2], [50, 4, 8, 3]]


# -- figures --
def test_music_figures_on_a_cadence_and_on_noise():
    good = music_quality([notes_to_grid(piece(rest_in_alto=False), 32)])
    assert good["scale"] == 1.0 and good["four_voices"] == 1.0 and good["chords"] == 1.0
    assert good["empty_bars"] == 0.0 and good["in_range"] == 1.0 and good["tonal_distance"] < 1.7
    rng = np.random.default_rng(0)
    noise = rng.integers(40, 80, (4, 32)).astype(np.int8)
    noise[1, :16] = REST  # the alto silent for a bar
    bad = music_quality([noise])
    assert bad["scale"] < 0.8 and bad["chords"] < 0.7 and bad["empty_bars"] == 1 / 8
    assert bad["tonal_distance"] > good["tonal_distance"]


# -- the piano roll's drawing --
def roll_data(bars: int = 2) -> dict:
    return {"notes": piece(bars).tolist(), "steps": 16 * bars, "voices": ["soprano", "alto", "tenor", "bass"],
            "tempo": 80, "label": "test"}


@pytest.mark.parametrize("width, height", [(76, 12), (196, 50)])
def test_the_roll_fits_its_size_with_labels_bar_lines_and_numbers(width, height):
    text = roll_text(roll_data(4), width, height)
    lines = text.plain.split("\n")
    assert len(lines) == height and all(len(line) <= width for line in lines)
    assert any(line.startswith("C4") for line in lines)  # middle C is labelled
    assert lines[-1].split() == ["1", "2", "3", "4"]  # bar numbers under the bar lines
    styles = {str(span.style) for span in text.spans}
    assert any(BAR_COLOUR in s for s in styles)  # bar lines drawn
    lay = Layout(64, 48, 72, width - GUTTER, height - 1)
    if width > 64 + GUTTER:
        assert lay.widen >= 1 and lay.per_col == 1
    assert lay.slot(48) is not None and lay.slot(72) is not None  # every note fits
    big = Layout(64, 48, 72, 196 - GUTTER, 49)
    assert big.thick == 3 and big.widen == 3  # the big roll: a semitone three half rows, 3 columns a step
    assert len({big.slot(p) for p in range(48, 73)}) == 25  # every semitone on a row of its own


def bar_line_columns(text) -> set[int]:
    """The roll's columns (after the pitch labels) drawn in the bar-line colour, in any row."""
    cols = set()
    for line in text.split("\n")[:-1]:
        for span in line.spans:
            if BAR_COLOUR in str(span.style):
                cols.update(range(span.start - GUTTER, span.end - GUTTER))
    return cols


@pytest.mark.parametrize("bars, width", [(8, 76), (12, 76), (8, 196), (5, 40), (3, 196)])
def test_each_bar_number_sits_at_the_bar_line_where_its_bar_starts(bars, width):
    """The numbers looked centred in their bars: with 3 steps to a column only every third
    bar line was drawn (the others fell inside a column), and a screenshot dropped the
    gutter's blanks before the numbers. Now every bar has its line, its number starts in
    that column, and the gutter is apart from the numbers."""
    text = roll_text(roll_data(bars), width, 10)
    last = text.split("\n")[-1]
    numbers = {i - GUTTER: word for i, word in enumerate(last.plain) if word != " " and last.plain[i - 1] == " "}
    lines = bar_line_columns(text)
    lay = Layout(16 * bars, 48, 72, width - GUTTER, 9)
    assert lines == {lay.col(16 * b) for b in range(bars)} and len(lines) == bars
    assert set(numbers) <= lines and numbers[0] == "1" and len(numbers) >= min(bars, 3)
    assert all(numbers[lay.col(16 * (int(n) - 1))] == n for n in numbers.values())
    assert last.plain[:GUTTER] == " " * GUTTER and all(span.start >= GUTTER for span in last.spans)


def test_a_long_piece_shares_columns_and_the_cursor_shows():
    text = roll_text(roll_data(16), 40, 10, cursor=100)
    assert all(len(line) <= 40 for line in text.plain.split("\n"))
    assert any(CURSOR in str(span.style) or "#ffffff" in str(span.style) for span in text.spans)
    assert roll_text({"notes": "garbage", "steps": -3}, 40, 10).plain  # a damaged file draws an empty roll


# Bars a tiny test run learns from: four-voice chords on the beats, in C major.
PROGRESSIONS = (
    [(72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55), (72, 67, 64, 48)],
    [(76, 72, 67, 48), (74, 71, 67, 55), (72, 69, 64, 57), (71, 67, 62, 55)],
    [(69, 64, 60, 57), (71, 65, 62, 50), (72, 64, 60, 45), (71, 68, 64, 52)],
)


def make_midi_folder(folder, pieces: int = 10, bars: int = 4, seed: int = 0):
    """``pieces`` MIDI files of ``bars`` bars of quarter-note chords, drawn from PROGRESSIONS."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(pieces):
        notes = []
        for b in range(bars):
            for beat, chord in enumerate(PROGRESSIONS[rng.integers(len(PROGRESSIONS))]):
                notes += [[p, 16 * b + 4 * beat, 16 * b + 4 * beat + 4, v] for v, p in enumerate(chord)]
        write_piece(np.array(notes), folder / f"piece{k:02d}.mid")
    return folder


# -- helpers for the two recipes' runner tests --
def stopped_and_continued(whole, half, total: int) -> tuple[dict, dict, int]:
    """Train ``whole`` to the end; train ``half`` (the same config), stop it after a few
    steps, continue it to the end. Returns both final checkpoints' states and where
    ``half`` stopped."""
    import threading
    import time

    from engine.checkpoint import load_checkpoint
    from engine.rundir import read_history
    from engine.runner import Runner

    assert Runner(whole.path).run() == 0

    def stop_early():
        deadline = time.monotonic() + 60
        while read_history(half).step < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        half.send("stop")

    thread = threading.Thread(target=stop_early)
    thread.start()
    assert Runner(half.path).run() == 0
    thread.join(timeout=10)
    stopped_at = read_history(half).step
    assert read_history(half).state == "stopped" and 3 <= stopped_at < total
    assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
    return (load_checkpoint(whole.checkpoint_path)["state"], load_checkpoint(half.checkpoint_path)["state"],
            stopped_at)


def serve_and_send(rd, commands: list[tuple[str, dict]], until) -> None:
    """Run ``rd`` to its end and keep serving; once it has finished send ``commands``,
    wait until ``until()`` holds (at most a minute), then stop it."""
    import threading
    import time

    from engine.rundir import read_history
    from engine.runner import Runner

    def drive():
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            for name, args in commands:
                rd.send(name, **args)
            while not until() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=30).run() == 0
    thread.join(timeout=10)


def answers(rd, name: str) -> list[dict]:
    """Every version of the data artifact ``name`` the run wrote, oldest first."""
    import json

    return [json.loads((rd.path / e.payload["path"]).read_text()) for e in rd.events()
            if e.type == "sample" and e.payload["name"] == name]


async def start_from_the_form(pilot, screen, values: dict) -> None:
    """Open Settings with its number key (the piano roll holds the focus, and focus in a
    hidden tab would pull that tab back), fill in ``values`` and press Apply."""
    number = [p.id for p in screen.query("TabPane")].index("tab-settings") + 1
    await pilot.press(str(number))
    await pilot.pause()
    for key, value in values.items():
        screen.query_one(f"#hp-{key}").value = str(value)
    await pilot.pause()
    screen.query_one("#form-apply").scroll_visible(animate=False)
    await pilot.pause()
    await pilot.click("#form-apply")
