"""Terminal image rendering helpers for the studio (pure functions, no widgets).

Sample grids written by the engine (PNG files, greyscale or RGB) are shown in the
terminal in one of four modes:

``"halfblock"``
    Every terminal cell shows two vertically stacked pixels: the character
    ``'▀'`` with the foreground colour set to the top pixel and the background
    colour set to the bottom pixel. Terminal cells are roughly twice as tall as
    they are wide, so this gives square pixels. Works in any truecolour (or
    256 colour, slightly degraded) terminal. This is the default.
``"ascii"``
    A brightness ramp of characters without any colour, for terminals where
    colour is unavailable or unwanted (``NO_COLOR``, ``TERM=dumb``).
``"sixel"`` / ``"kitty"``
    Real pixels via the `textual-image` package (Sixel, or the Kitty terminal
    graphics protocol). Only used when asked for, or for ``"kitty"`` when the
    environment clearly says we run in a terminal that speaks it.

Importing this module is cheap: it never imports ``textual_image`` (which
queries the terminal when imported) nor the engine / torch.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Mapping

import numpy as np
from PIL import Image, ImageOps
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text

__all__ = [
    "MODES",
    "ASCII_RAMP",
    "HALF_BLOCK",
    "fit_size",
    "to_rgb",
    "halfblock",
    "halfblock_segments",
    "ascii_art",
    "ascii_lines",
    "detect_mode",
    "detect_mode_with_reason",
    "load_textual_image_widget",
]

MODES: tuple[str, ...] = ("auto", "sixel", "kitty", "halfblock", "ascii")
"""Values accepted by :func:`detect_mode` (and the ``--graphics`` option)."""

HALF_BLOCK = "\u2580"  # '▀' upper half block: fg = top pixel, bg = bottom pixel
ASCII_RAMP = " .:-=+*#%@"
"""Characters from dark (sparse) to bright (dense) used by :func:`ascii_art`."""

_KITTY_TERM_PROGRAMS = frozenset({"WezTerm", "ghostty"})
_TRUECOLOR = frozenset({"truecolor", "24bit"})


# --------------------------------------------------------------------------- #
# geometry / resampling
# --------------------------------------------------------------------------- #


def fit_size(
    src_width: int, src_height: int, max_width: int, max_height: int
) -> tuple[int, int, Image.Resampling | None]:
    """Fit a ``src_width x src_height`` image into ``max_width x max_height`` pixels.

    The aspect ratio is kept. Returns ``(width, height, resample)`` where
    ``resample`` is the filter to use with :meth:`PIL.Image.Image.resize`, or
    ``None`` when the image is used as is:

    * downscaling uses ``BOX`` (an exact area average, good for pixel art),
    * upscaling uses the largest *integer* factor that fits, with ``NEAREST``,
      so every source pixel becomes a crisp square block.
    """
    if src_width <= 0 or src_height <= 0 or max_width <= 0 or max_height <= 0:
        return 0, 0, None
    scale = min(max_width / src_width, max_height / src_height)
    if scale >= 1.0:
        factor = int(scale)
        if factor == 1:
            return src_width, src_height, None
        return src_width * factor, src_height * factor, Image.Resampling.NEAREST
    width = min(max_width, max(1, round(src_width * scale)))
    height = min(max_height, max(1, round(src_height * scale)))
    return width, height, Image.Resampling.BOX


def to_rgb(img: Image.Image) -> Image.Image:
    """Return ``img`` as an 8-bit ``RGB`` image.

    Transparent images are composited onto black; 16-bit / 32-bit greyscale
    images are scaled to 0..255 (by their maximum value) rather than clipped.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else float(arr.max() or 1.0)
        grey = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _fit_rgb(img: Image.Image, max_width: int, max_height: int) -> Image.Image | None:
    width, height, resample = fit_size(img.width, img.height, max_width, max_height)
    if width == 0 or height == 0:
        return None
    rgb = to_rgb(img)
    if resample is not None:
        rgb = rgb.resize((width, height), resample)
    return rgb


# --------------------------------------------------------------------------- #
# half block rendering
# --------------------------------------------------------------------------- #

_STYLE_CACHE: dict[int, Style] = {}
_COLOR_CACHE: dict[int, Color] = {}
_STYLE_CACHE_MAX = 1 << 14  # bounded: big caches make gen-2 GC passes slow
_TRUECOLOR_TYPE = ColorType.TRUECOLOR
_new_tuple = tuple.__new__


def _color_for(rgb: int) -> Color:
    """Truecolour rich Color for a packed ``0xRRGGBB`` int (cached)."""
    color = _COLOR_CACHE.get(rgb)
    if color is None:
        if len(_COLOR_CACHE) >= _STYLE_CACHE_MAX:
            _COLOR_CACHE.clear()
        # == Color(name, TRUECOLOR, triplet=ColorTriplet(r, g, b)), built with
        # tuple.__new__ because the NamedTuple constructors are ~2x slower and a
        # noisy RGB frame can need ~10k new colours.
        triplet = _new_tuple(ColorTriplet, (rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF))
        color = _new_tuple(Color, (f"#{rgb:06x}", _TRUECOLOR_TYPE, None, triplet))
        _COLOR_CACHE[rgb] = color
    return color


def _style_for(key: int) -> Style:
    """Style for a packed ``(top << 24) | bottom`` colour pair.

    Bit 48 set means "no bottom pixel" (odd pixel height, last row): the style
    then only has a foreground colour.
    """
    style = _STYLE_CACHE.get(key)
    if style is None:
        if len(_STYLE_CACHE) >= _STYLE_CACHE_MAX:
            _STYLE_CACHE.clear()
        fg = _color_for((key >> 24) & 0xFFFFFF)
        if key & (1 << 48):
            style = Style.from_color(fg)
        else:
            style = Style.from_color(fg, _color_for(key & 0xFFFFFF))
        _STYLE_CACHE[key] = style
    return style


def _halfblock_runs(
    img: Image.Image, width: int, height: int
) -> list[list[tuple[int, Style]]]:
    """Rows of ``(run_length, style)`` for the half block rendering of ``img``."""
    rgb = _fit_rgb(img, width, 2 * height)
    if rgb is None:
        return []
    arr = np.asarray(rgb, dtype=np.int64)
    packed = (arr[..., 0] << 16) | (arr[..., 1] << 8) | arr[..., 2]
    top = packed[0::2]
    bottom = packed[1::2]
    if bottom.shape[0] < top.shape[0]:  # odd pixel height: last row has no bottom
        pad = np.full((1, packed.shape[1]), 1 << 48, dtype=np.int64)
        bottom = np.concatenate([bottom, pad], axis=0)
    keys = (top << 24) | bottom
    cols = keys.shape[1]

    # run boundaries per row, computed for all rows at once
    change = np.ones(keys.shape, dtype=bool)
    change[:, 1:] = keys[:, 1:] != keys[:, :-1]

    rows: list[list[tuple[int, Style]]] = []
    style_for = _style_for
    cache = _STYLE_CACHE
    for key_row, change_row in zip(keys.tolist(), change):
        starts = np.flatnonzero(change_row).tolist()
        starts.append(cols)
        row: list[tuple[int, Style]] = []
        append = row.append
        for i in range(len(starts) - 1):
            start = starts[i]
            key = key_row[start]
            style = cache.get(key)
            if style is None:
                style = style_for(key)
            append((starts[i + 1] - start, style))
        rows.append(row)
    return rows


def halfblock_segments(
    img: Image.Image, width: int, height: int
) -> list[list[Segment]]:
    """Render ``img`` as rows of rich :class:`~rich.segment.Segment` (half blocks).

    Same pixels as :func:`halfblock`, but in the form a Textual line-API widget
    wants (no newline segments, one list per terminal row). Rows are
    ``ceil(pixel_height / 2)`` long lists whose cell lengths are all equal.
    """
    return [
        [Segment(HALF_BLOCK * n, style) for n, style in row]
        for row in _halfblock_runs(img, width, height)
    ]


def halfblock(img: Image.Image, width: int, height: int) -> Text:
    """Render ``img`` into at most ``width`` columns by ``height`` rows of ``'▀'``.

    One cell shows two vertically stacked pixels: foreground = top pixel,
    background = bottom pixel, so pixels come out (about) square. The image
    keeps its aspect ratio and is *not* centred (the caller aligns it). Rows
    are separated by ``"\\n"``; the Text does not end with a newline. When the
    fitted image has an odd pixel height, the last row only has a foreground
    colour (its background is left to the surroundings).
    """
    runs = _halfblock_runs(img, width, height)
    parts: list[str] = []
    spans: list[Span] = []
    offset = 0
    for index, row in enumerate(runs):
        if index:
            parts.append("\n")
            offset += 1
        for n, style in row:
            parts.append(HALF_BLOCK * n)
            spans.append(Span(offset, offset + n, style))
            offset += n
    return Text("".join(parts), spans=spans, no_wrap=True, overflow="crop", end="")


# --------------------------------------------------------------------------- #
# ascii rendering
# --------------------------------------------------------------------------- #


def ascii_lines(
    img: Image.Image,
    width: int,
    height: int,
    ramp: str = ASCII_RAMP,
    *,
    autocontrast: bool = True,
) -> list[str]:
    """Render ``img`` as at most ``height`` strings of at most ``width`` characters.

    Each character covers one pixel horizontally and two vertically (cells are
    about twice as tall as wide), so the aspect ratio is preserved. Brighter
    pixels use characters further along ``ramp`` (denser ink). With
    ``autocontrast`` the darkest pixel maps to ``ramp[0]`` and the brightest to
    ``ramp[-1]`` (dim colour images stay readable); the mapping stays monotonic.
    """
    if not ramp:
        raise ValueError("ramp must not be empty")
    rgb = _fit_rgb(img, width, 2 * height)
    if rgb is None:
        return []
    grey = rgb.convert("L")
    if grey.height > 1:
        grey = grey.reduce((1, 2))  # average vertical pixel pairs into one cell
    if autocontrast:
        grey = ImageOps.autocontrast(grey)
    levels = np.asarray(grey, dtype=np.int32)
    last = len(ramp) - 1
    index = (levels * last + 127) // 255
    chars = np.array(list(ramp))[index]
    return ["".join(row) for row in chars.tolist()][:height]


def ascii_art(
    img: Image.Image,
    width: int,
    height: int,
    ramp: str = ASCII_RAMP,
    *,
    autocontrast: bool = True,
) -> Text:
    """Colourless fallback of :func:`halfblock`: a brightness ramp of characters.

    The result has no styles at all (safe for ``NO_COLOR`` / dumb terminals).
    """
    return Text(
        "\n".join(ascii_lines(img, width, height, ramp, autocontrast=autocontrast)),
        no_wrap=True,
        overflow="crop",
        end="",
    )


# --------------------------------------------------------------------------- #
# mode detection
# --------------------------------------------------------------------------- #


def _isatty(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:  # closed / replaced streams
        return False


class _ProcessStream:
    """The current ``sys.<name>`` *and* the original ``sys.__<name>__``.

    Both must be terminals: textual-image talks to ``sys.__stdin__`` /
    ``sys.__stdout__``, while a running Textual app swaps ``sys.stdout`` for
    an object that always claims to be a TTY, and pytest swaps ``sys.stdin``.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def isatty(self) -> bool:
        return _isatty(getattr(sys, self.name, None)) and _isatty(
            getattr(sys, f"__{self.name}__", None)
        )


_STDIN = _ProcessStream("stdin")
_STDOUT = _ProcessStream("stdout")


def detect_mode_with_reason(
    requested: str = "auto",
    *,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
) -> tuple[str, str]:
    """Decide how images are drawn; return ``(mode, human readable reason)``.

    ``mode`` is one of ``"sixel"``, ``"kitty"``, ``"halfblock"``, ``"ascii"``.

    Explicit requests are honoured, except that ``"sixel"`` and ``"kitty"``
    fall back to ``"halfblock"`` unless *both* stdin and stdout are TTYs:
    textual-image queries the terminal when it is imported and fails or hangs
    when it cannot read the answer.

    ``"auto"`` decides from the environment only (it never sends a query to
    the terminal, so it never picks ``"sixel"``; ask for it explicitly), in
    this order:

    1. ``NO_COLOR`` set (non-empty), ``TERM=dumb``, or ``TERM=linux`` (the
       Linux console) without ``COLORTERM=truecolor|24bit`` -> ``"ascii"``
    2. inside tmux (``TMUX`` set) -> ``"halfblock"`` (graphics protocols are
       not passed through reliably)
    3. a kitty graphics protocol terminal (``TERM`` contains ``kitty``,
       ``KITTY_WINDOW_ID`` set, or ``TERM_PROGRAM`` is ``WezTerm`` or
       ``ghostty``) with TTY stdin and stdout -> ``"kitty"``
    4. otherwise -> ``"halfblock"``

    ``environ`` defaults to ``os.environ``. ``stdin`` / ``stdout`` default to
    the process streams: both ``sys.stdin`` and ``sys.__stdin__`` (resp.
    stdout) must be TTYs (the parameters exist for tests).

    Raises:
        ValueError: ``requested`` is not one of :data:`MODES`.
    """
    env = os.environ if environ is None else environ
    stdin = _STDIN if stdin is None else stdin  # type: ignore[assignment]
    stdout = _STDOUT if stdout is None else stdout  # type: ignore[assignment]
    mode = (requested or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(
            f"unknown graphics mode {requested!r}; choose one of {', '.join(MODES)}"
        )

    def ttys_missing() -> str | None:
        missing = [
            name
            for name, stream in (("stdin", stdin), ("stdout", stdout))
            if not _isatty(stream)
        ]
        return " and ".join(missing) if missing else None

    if mode in ("halfblock", "ascii"):
        return mode, f"{mode} requested"
    if mode in ("sixel", "kitty"):
        missing = ttys_missing()
        if missing:
            return (
                "halfblock",
                f"{mode} requested but {missing} is not a terminal "
                "(textual-image must query the terminal); using halfblock",
            )
        return mode, f"{mode} requested"

    # auto
    term = env.get("TERM", "")
    colorterm = env.get("COLORTERM", "").lower()
    if env.get("NO_COLOR"):
        return "ascii", "auto: NO_COLOR is set"
    if term == "dumb":
        return "ascii", "auto: TERM=dumb"
    if term == "linux" and colorterm not in _TRUECOLOR:
        return "ascii", "auto: Linux console (TERM=linux) without truecolor"
    if env.get("TMUX"):
        return "halfblock", "auto: inside tmux, graphics protocols are unreliable"
    kitty_hint = None
    if "kitty" in term:
        kitty_hint = f"TERM={term}"
    elif env.get("KITTY_WINDOW_ID"):
        kitty_hint = "KITTY_WINDOW_ID is set"
    elif env.get("TERM_PROGRAM") in _KITTY_TERM_PROGRAMS:
        kitty_hint = f"TERM_PROGRAM={env.get('TERM_PROGRAM')}"
    if kitty_hint:
        missing = ttys_missing()
        if missing:
            return (
                "halfblock",
                f"auto: {kitty_hint} but {missing} is not a terminal; using halfblock",
            )
        return "kitty", f"auto: {kitty_hint}"
    return "halfblock", "auto: no graphics protocol detected (sixel needs --graphics sixel)"


def detect_mode(requested: str = "auto") -> str:
    """Like :func:`detect_mode_with_reason` but only return the mode."""
    return detect_mode_with_reason(requested)[0]


# --------------------------------------------------------------------------- #
# textual-image (imported lazily)
# --------------------------------------------------------------------------- #

_WIDGET_CLASS_NAMES = {"sixel": "SixelImage", "kitty": "TGPImage"}
_widget_cache: dict[str, type | None] = {}


def load_textual_image_widget(mode: str) -> type | None:
    """Return textual-image's widget class for ``mode`` (``"sixel"``/``"kitty"``).

    ``textual_image.widget`` is imported only here, only when both stdin and
    stdout are TTYs (``sys.stdin`` and ``sys.__stdin__``, same for stdout), and any failure gives ``None`` (the caller then falls back
    to half blocks). The import queries the terminal, which no longer works
    once a Textual app owns it, so call this once *before* ``App.run()`` when
    the mode is sixel/kitty; later calls return the cached class.
    """
    name = _WIDGET_CLASS_NAMES.get(mode)
    if name is None:
        return None
    if mode in _widget_cache:
        return _widget_cache[mode]
    if not (_STDIN.isatty() and _STDOUT.isatty()):
        return None  # not cached: may be called again from a real terminal
    try:
        import importlib

        module = importlib.import_module("textual_image.widget")
        cls = getattr(module, name)
    except Exception:  # ImportError, TerminalError, OSError from the terminal query...
        cls = None
    _widget_cache[mode] = cls
    return cls
