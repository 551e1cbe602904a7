"""Tests for studio.graphics (pure image -> terminal text rendering)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from rich.color import ColorTriplet

from studio import graphics
from studio.graphics import (
    ASCII_RAMP,
    HALF_BLOCK,
    MODES,
    ascii_art,
    detect_mode,
    detect_mode_with_reason,
    fit_size,
    halfblock,
    halfblock_segments,
    load_textual_image_widget,
)

REPO = Path(__file__).resolve().parents[1]


class _FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _rows(text) -> list[str]:
    return text.plain.split("\n") if text.plain else []


def _cell_styles(text):
    """Map each character offset of ``text`` to its style."""
    styles = {}
    for span in text.spans:
        for offset in range(span.start, span.end):
            styles[offset] = span.style
    return styles


# --------------------------------------------------------------- halfblock


@pytest.mark.parametrize(
    "src, box",
    [
        ((232, 232), (100, 50)),
        ((232, 232), (80, 22)),
        ((242, 122), (60, 40)),
        ((28, 28), (100, 50)),
        ((300, 40), (40, 30)),
        ((1, 1), (5, 5)),
    ],
)
def test_halfblock_fits_bounds_and_keeps_aspect(src, box):
    img = Image.new("L", src, 128)
    width, height = box
    text = halfblock(img, width, height)
    rows = _rows(text)
    assert 1 <= len(rows) <= height
    assert all(len(row) == len(rows[0]) for row in rows)
    assert 1 <= len(rows[0]) <= width
    assert set(text.plain) <= {HALF_BLOCK, "\n"}
    # one cell = 1 pixel wide, 2 pixels tall (an odd pixel height leaves the
    # bottom half of the last row empty)
    pixel_w, pixel_h, _ = fit_size(src[0], src[1], width, 2 * height)
    assert len(rows[0]) == pixel_w
    assert len(rows) == (pixel_h + 1) // 2
    # aspect kept up to rounding one pixel on either axis
    aspect = src[0] / src[1]
    assert abs(pixel_w - aspect * pixel_h) <= max(1.0, aspect)
    if src[0] > 20:
        assert abs(pixel_w / pixel_h - aspect) / aspect < 0.2


def test_halfblock_uses_available_space():
    img = Image.new("L", (232, 232))
    rows = _rows(halfblock(img, 100, 50))
    assert (len(rows[0]), len(rows)) == (100, 50)
    rows = _rows(halfblock(img, 200, 30))  # height bound: 60 px tall
    assert (len(rows[0]), len(rows)) == (60, 30)


def test_halfblock_upscales_by_integer_factor_nearest():
    img = Image.new("L", (2, 2))
    img.putpixel((0, 0), 255)  # top-left white, rest black
    text = halfblock(img, 7, 7)  # box 7x14 px -> factor 3 -> 6x6 px
    rows = _rows(text)
    assert (len(rows[0]), len(rows)) == (6, 3)
    styles = _cell_styles(text)
    # first row of cells: columns 0..2 have white on top
    for col in range(3):
        assert styles[col].color.triplet == ColorTriplet(255, 255, 255)
    for col in range(3, 6):
        assert styles[col].color.triplet == ColorTriplet(0, 0, 0)


def test_halfblock_colours_of_2x2_image():
    img = Image.new("RGB", (2, 2))
    img.putpixel((0, 0), (255, 0, 0))  # top-left red
    img.putpixel((1, 0), (0, 255, 0))  # top-right green
    img.putpixel((0, 1), (0, 0, 255))  # bottom-left blue
    img.putpixel((1, 1), (255, 255, 0))  # bottom-right yellow
    text = halfblock(img, 2, 1)
    assert text.plain == HALF_BLOCK * 2
    styles = _cell_styles(text)
    left, right = styles[0], styles[1]
    assert left.color.triplet == ColorTriplet(255, 0, 0)
    assert left.bgcolor.triplet == ColorTriplet(0, 0, 255)
    assert right.color.triplet == ColorTriplet(0, 255, 0)
    assert right.bgcolor.triplet == ColorTriplet(255, 255, 0)


def test_halfblock_greyscale_and_alpha():
    grey = Image.new("L", (1, 2))
    grey.putpixel((0, 0), 200)
    grey.putpixel((0, 1), 10)
    style = _cell_styles(halfblock(grey, 1, 1))[0]
    assert style.color.triplet == ColorTriplet(200, 200, 200)
    assert style.bgcolor.triplet == ColorTriplet(10, 10, 10)

    rgba = Image.new("RGBA", (1, 2), (255, 255, 255, 0))  # fully transparent
    style = _cell_styles(halfblock(rgba, 1, 1))[0]
    assert style.color.triplet == ColorTriplet(0, 0, 0)  # composited on black


def test_halfblock_odd_pixel_height_last_row_has_no_background():
    img = Image.new("RGB", (1, 3), (9, 9, 9))
    text = halfblock(img, 1, 2)
    rows = _rows(text)
    assert len(rows) == 2
    styles = _cell_styles(text)
    assert styles[0].bgcolor is not None
    last = styles[len(text.plain) - 1]
    assert last.color.triplet == ColorTriplet(9, 9, 9)
    assert last.bgcolor is None


def test_halfblock_degenerate_sizes():
    img = Image.new("L", (10, 10))
    assert halfblock(img, 0, 10).plain == ""
    assert halfblock(img, 10, 0).plain == ""
    assert halfblock_segments(img, 0, 0) == []


def test_halfblock_segments_match_text():
    img = Image.effect_mandelbrot((64, 48), (-2, -1.5, 1, 1.5), 50).convert("RGB")
    text = halfblock(img, 40, 20)
    rows = halfblock_segments(img, 40, 20)
    assert ["".join(s.text for s in row) for row in rows] == _rows(text)
    styles = _cell_styles(text)
    offset = 0
    for row in rows:
        for segment in row:
            for _ in segment.text:
                assert styles[offset] == segment.style
                offset += 1
        offset += 1  # newline


def test_fit_size_filters():
    assert fit_size(232, 232, 100, 100) == (100, 100, Image.Resampling.BOX)
    assert fit_size(28, 28, 100, 100) == (84, 84, Image.Resampling.NEAREST)
    assert fit_size(28, 28, 50, 50) == (28, 28, None)
    assert fit_size(10, 10, 0, 5) == (0, 0, None)


def test_halfblock_is_fast():
    # a worst-ish case: an 8x8 grid of noisy 28x28 samples with 2px padding
    import numpy as np

    rng = np.random.default_rng(0)
    size = 8 * 28 + 9 * 2
    grid = np.zeros((size, size), dtype=np.uint8)
    for i in range(64):
        x, y = 2 + (i % 8) * 30, 2 + (i // 8) * 30
        grid[y : y + 28, x : x + 28] = (rng.random((28, 28)) ** 2 * 255).astype(
            np.uint8
        )
    img = Image.fromarray(grid).resize((232, 232), Image.Resampling.NEAREST)
    halfblock(img, 100, 50)  # warm the style cache
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        halfblock(img, 100, 50)
        best = min(best, time.perf_counter() - start)
    # ~4 ms on a laptop; generous bound for slow CI machines
    assert best < 0.1


# ------------------------------------------------------------------- ascii


def test_ascii_has_no_styles_and_fits():
    img = Image.effect_mandelbrot((120, 90), (-2, -1.5, 1, 1.5), 50)
    text = ascii_art(img, 40, 20)
    rows = _rows(text)
    assert 1 <= len(rows) <= 20
    assert all(1 <= len(row) <= 40 for row in rows)
    assert text.spans == []
    assert not text.style
    assert set(text.plain) <= set(ASCII_RAMP) | {"\n"}
    assert HALF_BLOCK not in text.plain


def test_ascii_aspect_correction():
    # a square image must come out about twice as wide (in chars) as tall
    rows = _rows(ascii_art(Image.new("L", (100, 100), 255), 40, 40))
    assert len(rows[0]) == 40
    assert len(rows) == 20


def test_ascii_brighter_pixels_use_denser_characters():
    img = Image.new("L", (4, 2))
    for x, value in enumerate((0, 90, 180, 255)):
        img.putpixel((x, 0), value)
        img.putpixel((x, 1), value)
    (row,) = _rows(ascii_art(img, 4, 1))
    ranks = [ASCII_RAMP.index(char) for char in row]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 4
    assert row[0] == ASCII_RAMP[0] and row[-1] == ASCII_RAMP[-1]
    # without autocontrast mid greys still order monotonically
    (row,) = _rows(ascii_art(img, 4, 1, autocontrast=False))
    ranks = [ASCII_RAMP.index(char) for char in row]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4


# -------------------------------------------------------------- detect mode


def test_modes_constant():
    assert MODES == ("auto", "sixel", "kitty", "halfblock", "ascii")


@pytest.mark.parametrize("mode", ["ascii", "halfblock"])
def test_detect_mode_honours_explicit_text_modes(mode, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-kitty")
    monkeypatch.setenv("NO_COLOR", "1")
    assert detect_mode(mode) == mode
    chosen, reason = detect_mode_with_reason(mode)
    assert chosen == mode and reason


@pytest.mark.parametrize("mode", ["sixel", "kitty"])
def test_detect_mode_graphics_falls_back_without_tty_stdin(mode, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _FakeStream(tty=False))
    monkeypatch.setattr(sys, "stdout", _FakeStream(tty=True))
    chosen, reason = detect_mode_with_reason(mode)
    assert chosen == "halfblock"
    assert "stdin" in reason
    assert detect_mode(mode) == "halfblock"


@pytest.mark.parametrize("mode", ["sixel", "kitty"])
def test_detect_mode_graphics_honoured_with_ttys(mode):
    chosen, reason = detect_mode_with_reason(
        mode, stdin=_FakeStream(tty=True), stdout=_FakeStream(tty=True)
    )
    assert (chosen, reason) == (mode, f"{mode} requested")


@pytest.mark.parametrize("mode", ["sixel", "kitty"])
def test_detect_mode_graphics_checks_original_streams(mode, monkeypatch):
    # Textual replaces sys.stdout with an object claiming to be a TTY; the
    # real sys.__stdin__/__stdout__ must be terminals too
    monkeypatch.setattr(sys, "stdin", _FakeStream(tty=True))
    monkeypatch.setattr(sys, "stdout", _FakeStream(tty=True))
    monkeypatch.setattr(sys, "__stdin__", _FakeStream(tty=False))
    assert detect_mode(mode) == "halfblock"
    assert load_textual_image_widget(mode) is None


def test_detect_mode_rejects_unknown():
    with pytest.raises(ValueError):
        detect_mode("png")


def _auto(env, tty=True):
    return detect_mode_with_reason(
        "auto",
        environ=env,
        stdin=_FakeStream(tty=tty),
        stdout=_FakeStream(tty=tty),
    )


def test_auto_inside_tmux_is_halfblock(monkeypatch):
    assert _auto({"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0"})[0] == (
        "halfblock"
    )
    # even when the outer terminal is kitty
    env = {"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1", "TMUX": "x"}
    mode, reason = _auto(env)
    assert mode == "halfblock" and "tmux" in reason
    # and through the real environment
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,123,0")
    monkeypatch.setenv("TERM", "xterm-kitty")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert detect_mode("auto") == "halfblock"


@pytest.mark.parametrize(
    "env",
    [
        {"TERM": "xterm-kitty"},
        {"TERM": "xterm-256color", "KITTY_WINDOW_ID": "3"},
        {"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"},
        {"TERM": "xterm-ghostty", "TERM_PROGRAM": "ghostty"},
    ],
)
def test_auto_kitty_terminals(env):
    assert _auto(env)[0] == "kitty"
    assert _auto(env, tty=False)[0] == "halfblock"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"TERM": "xterm-256color"}, "halfblock"),
        ({"TERM": "xterm-256color", "NO_COLOR": "1"}, "ascii"),
        ({"TERM": "xterm-256color", "NO_COLOR": ""}, "halfblock"),
        ({"TERM": "dumb"}, "ascii"),
        ({"TERM": "linux"}, "ascii"),
        ({"TERM": "linux", "COLORTERM": "truecolor"}, "halfblock"),
        ({"TERM": "xterm-kitty", "NO_COLOR": "1"}, "ascii"),
        ({}, "halfblock"),
    ],
)
def test_auto_environment(env, expected):
    assert _auto(env)[0] == expected


def test_auto_never_picks_sixel():
    env = {"TERM": "mlterm", "TERM_PROGRAM": "foot"}
    assert _auto(env)[0] == "halfblock"


# ---------------------------------------------------------- lazy imports


def test_load_textual_image_widget_needs_ttys(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _FakeStream(tty=False))
    monkeypatch.setattr(sys, "stdout", _FakeStream(tty=True))
    graphics._widget_cache.clear()
    assert load_textual_image_widget("sixel") is None
    assert load_textual_image_widget("kitty") is None
    assert load_textual_image_widget("halfblock") is None


def test_import_does_not_pull_textual_image_or_torch():
    code = (
        "import studio.graphics, sys; "
        "assert 'textual_image' not in sys.modules, 'textual_image'; "
        "assert 'torch' not in sys.modules, 'torch'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_image_view_import_does_not_pull_textual_image_or_torch():
    code = (
        "import studio.widgets.image_view, sys; "
        "assert 'textual_image' not in sys.modules, 'textual_image'; "
        "assert 'torch' not in sys.modules, 'torch'; "
        "assert 'engine' not in sys.modules, 'engine'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
