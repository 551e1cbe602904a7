"""ImageView: shows a PNG written by the engine (e.g. a grid of samples), live.

The widget only *reads* image files; it never talks to the engine (and never
imports torch). Point it at a file with ``view.path = "run/samples.png"`` each
time the engine writes a new grid (setting the same path again reloads it), or
hand it a PIL image with :meth:`ImageView.set_image`.

Rendering depends on the graphics mode (see :mod:`studio.graphics`):

* ``"halfblock"`` / ``"ascii"``: drawn by :class:`ImageCanvas` with the Textual
  line API, re-fitted to the widget on every resize from the cached decoded
  image (the file is not read again).
* ``"sixel"`` / ``"kitty"``: a textual-image widget is mounted as a child;
  when it cannot be loaded (no TTY, import failure) half blocks are used.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from PIL import Image
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Container
from textual.content import Content
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from studio import graphics
from studio.widgets.view import ArtifactUpdate, View, placeholder

__all__ = ["ImageView", "ImageCanvas", "DEFAULT_PLACEHOLDER"]

DEFAULT_PLACEHOLDER = "no samples yet: press s to start training"
FULL_SCREEN_HINT = "f: full screen"  # the lesson screen's key that shows every tile


def cropped_caption(caption: str, shown: int, total: int) -> str:
    """A grid's caption when only ``shown`` of its ``total`` tiles fit: "8 of 64 samples ..."
    when the caption starts with the count, else "showing 8 of 64 · ..."; and the key
    that shows them all."""
    if shown >= total:
        return caption
    if re.match(rf"{total}\b", caption):
        return f"{shown} of {caption} · {FULL_SCREEN_HINT}"
    return f"showing {shown} of {total}{' · ' + caption if caption else ''} · {FULL_SCREEN_HINT}"

_RETRY_DELAY_S = 0.25
_RETRY_ATTEMPTS = 4


class ImageCanvas(Widget):
    """Draws the owning :class:`ImageView`'s image as half blocks or ASCII.

    Lines are computed lazily for the current content size and cached until
    the image, the size, the placeholder or the base style change.
    """

    COMPONENT_CLASSES = {"image-canvas--placeholder"}

    DEFAULT_CSS = """
    ImageCanvas {
        width: 1fr;
        height: 1fr;
    }
    ImageCanvas > .image-canvas--placeholder {
        color: $text-muted;
        text-style: italic;
    }
    """

    def __init__(
        self,
        view: ImageView,
        mode: str = "halfblock",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._view = view
        self.mode = mode
        """"halfblock" or "ascii"."""
        self._cache_key: tuple | None = None
        self._lines: list[Strip] = []

    def render_line(self, y: int) -> Strip:
        lines = self._get_lines()
        if 0 <= y < len(lines):
            return lines[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _get_lines(self) -> list[Strip]:
        width, height = self.size
        base = self.visual_style.rich_style
        view = self._view
        key = (view._version, width, height, self.mode, view.placeholder, base)
        if key != self._cache_key:
            self._lines = self._build_lines(width, height, base)
            self._cache_key = key
        return self._lines

    def _build_lines(self, width: int, height: int, base: Style) -> list[Strip]:
        if width <= 0 or height <= 0:
            return []
        image = self._view._image
        blank = Strip.blank(width, base)
        if image is None:
            return self._placeholder_lines(width, height, base, blank)

        image = self._view.fit_tiles(image, width, height * 2)
        if self.mode == "ascii":
            rows = [
                [Segment(line, base)]
                for line in graphics.ascii_lines(image, width, height)
            ]
        else:
            rows = graphics.halfblock_segments(image, width, height)
        if not rows:
            return [blank] * height

        row_width = sum(len(segment.text) for segment in rows[0])
        left = max(0, (width - row_width) // 2)
        right = max(0, width - row_width - left)
        top = max(0, (height - len(rows)) // 2)
        left_pad = [Segment(" " * left, base)] if left else []
        right_pad = [Segment(" " * right, base)] if right else []

        lines = [blank] * top
        last = len(rows) - 1
        for index, row in enumerate(rows):
            strip = Strip(left_pad + row + right_pad, width)
            if index == last:
                # an odd pixel height leaves the last row without a background
                # colour: give it the widget's background
                strip = strip.apply_style(base)
            lines.append(strip)
        lines.extend([blank] * (height - len(lines)))
        return lines[:height]

    def _placeholder_lines(
        self, width: int, height: int, base: Style, blank: Strip
    ) -> list[Strip]:
        text = self._view.placeholder or ""
        style = base + self.get_component_rich_style("image-canvas--placeholder")
        lines = [blank] * height
        if text:
            text = text[:width]
            left = (width - len(text)) // 2
            segments = [
                Segment(" " * left, base),
                Segment(text, style),
                Segment(" " * (width - left - len(text)), base),
            ]
            lines[height // 2] = Strip(segments, width)
        return lines


class ImageView(View, Widget):
    """Shows an image file (a PNG of generated samples) that is updated live.

    Args:
        path: PNG file to show (may not exist yet).
        mode: ``"auto"``, ``"halfblock"``, ``"ascii"``, ``"sixel"`` or
            ``"kitty"``; ``None`` takes ``app.graphics_mode`` when the app has
            that attribute, else ``"halfblock"``.
        caption: text shown under the image, e.g. ``"samples @ step 1200"``.
        placeholder: text shown while there is no image.
    """

    DEFAULT_CSS = """
    ImageView {
        layout: vertical;
        width: 1fr;
        height: 1fr;
    }
    ImageView > ImageCanvas {
        width: 1fr;
        height: 1fr;
    }
    ImageView > .image-view--frame {
        width: 1fr;
        height: 1fr;
        align: center middle;
    }
    ImageView > .image-view--frame > * {
        width: auto;
        height: auto;
    }
    ImageView > .image-view--caption {
        width: 1fr;
        height: auto;
        content-align: center middle;
        text-align: center;
        color: $text-muted;
    }
    """

    path: reactive[str | None] = reactive(None, always_update=True)
    """Path of the PNG to show, or None for no image (the placeholder).

    Assigning reloads the file even when the value is unchanged (the engine
    overwrites the same file), unless its mtime and size are unchanged. A file
    that is missing, truncated or being replaced does not raise: the previous
    image stays and loading is retried a few times, and again on the next
    assignment.
    """

    tile: tuple[int, int] | None = None
    """(tile pitch, padding) in pixels when the image is a grid of samples; on half-block
    and ASCII screens only the tiles that fit at a readable size are shown."""

    tile_group: int = 1
    """Columns of tiles that belong together and are never split."""

    min_tile_scale: float = 0.45
    """Smallest scale a tile may be drawn at before fewer tiles are shown."""

    caption: reactive[str] = reactive("")
    """Text shown under the image, e.g. "samples @ step 1200" (empty: hidden)."""

    placeholder: reactive[str] = reactive(DEFAULT_PLACEHOLDER)
    """Text shown while there is no image yet."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        mode: str | None = None,
        caption: str = "",
        placeholder: str = DEFAULT_PLACEHOLDER,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._requested_mode = mode
        self._mode: str | None = None
        self._mode_reason = ""
        self._image: Image.Image | None = None
        self._version = 0
        self._signature: tuple[str, int, int] | None = None
        self._retry_timer = None
        self._retries_left = 0
        self.last_error: str | None = None
        """Why the last load failed (None after a successful load)."""
        self._canvas: ImageCanvas | None = None
        self._frame: Container | None = None
        self._native: Widget | None = None  # textual-image widget (sixel/kitty)
        self._caption_label: Static | None = None
        self._tiles: tuple[int, int] | None = None  # (shown, total) tiles of the grid drawn now
        self._pane_placeholder: str | None = None  # the pane's own, with {start} (placeholder() fills it)
        self.set_reactive(ImageView.caption, caption)
        self.set_reactive(ImageView.placeholder, placeholder)
        self.set_reactive(ImageView.path, None if path is None else os.fspath(path))

    # ------------------------------------------------------------------ API

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> ImageView:
        """A dashboard pane (engine.panes.ImagePane)."""
        view = cls(id=pane.id, placeholder=placeholder(pane.placeholder), classes="side-pane" if pane.side else None)
        view.tile, view.tile_group, view.min_tile_scale = pane.tile, pane.group, pane.min_scale
        view._pane_placeholder = pane.placeholder
        if pane.height:
            view.styles.height = pane.height
        return view

    def load(self, update: ArtifactUpdate) -> None:
        """Show a new version of the pane's artifact, captioned with the step that drew it."""
        self.caption = f"{update.caption} · step {update.step}"
        self.path = update.path

    def follow(self, snapshot) -> None:
        """While a run is starting, the placeholder says the images are coming, not how to
        start one."""
        if self._pane_placeholder is not None:
            self.placeholder = placeholder(self._pane_placeholder, snapshot.state)

    @property
    def shown_caption(self) -> str:
        """The caption as shown: with how many tiles of how many when the grid is cut."""
        return cropped_caption(self.caption, *self._tiles) if self._tiles else self.caption

    @property
    def image(self) -> Image.Image | None:
        """The decoded image currently shown (RGB), or None."""
        return self._image

    @property
    def mode(self) -> str:
        """The graphics mode actually used (after fallbacks)."""
        return self._mode or self._resolve_mode()[0]

    @property
    def mode_reason(self) -> str:
        """Human readable reason for :attr:`mode`."""
        if self._mode is None:
            return self._resolve_mode()[1]
        return self._mode_reason

    def fit_tiles(self, image: Image.Image, width_px: int, height_px: int) -> Image.Image:
        """For a grid of tiles (:attr:`tile`), keep only the whole tiles from the top left
        that fit at no less than :attr:`min_tile_scale` of their size, so each sample stays
        recognisable on a small terminal instead of shrinking into a blur."""
        if self.tile is None:
            return image
        step, pad = self.tile
        if (image.width - pad) % step or (image.height - pad) % step:
            self._note_tiles(0, 0)
            return image  # tiles of another size (64-pixel images, say): show the whole grid
        cols = max(1, (image.width - pad) // step)
        rows = max(1, (image.height - pad) // step)
        shown = step * self.min_tile_scale
        fit_cols = max(1, min(cols, int((width_px - pad) // shown)))
        if fit_cols < cols and fit_cols >= self.tile_group:
            fit_cols -= fit_cols % self.tile_group  # keep groups (input | output pairs) whole
        fit_rows = max(1, min(rows, int((height_px - pad) // shown)))
        self._note_tiles(fit_cols * fit_rows, cols * rows)
        if (fit_cols, fit_rows) == (cols, rows):
            return image
        return image.crop((0, 0, fit_cols * step + pad, fit_rows * step + pad))

    def _note_tiles(self, shown: int, total: int) -> None:
        """Remember how many tiles the canvas draws; the caption follows (after this
        frame: fit_tiles runs while the canvas renders)."""
        if (shown, total) != self._tiles:
            self._tiles = (shown, total)
            if self.is_mounted:
                self.call_later(self._show_caption)

    def set_image(self, image: Image.Image | None) -> None:
        """Show a PIL image directly (``path`` becomes None). None clears it."""
        self._cancel_retry()
        self._signature = None
        self.last_error = None
        self.set_reactive(ImageView.path, None)
        self._show(None if image is None else graphics.to_rgb(image).copy())

    def reload(self) -> bool:
        """Read :attr:`path` again; return True if an image is shown from it."""
        self._signature = None
        return self._load(self.path)

    # ------------------------------------------------------------ internals

    def _resolve_mode(self) -> tuple[str, str]:
        requested = self._requested_mode
        if requested is None:
            try:
                requested = getattr(self.app, "graphics_mode", None)
            except Exception:  # no active app
                requested = None
            if requested is None:
                return "halfblock", "default"
        try:
            return graphics.detect_mode_with_reason(str(requested))
        except ValueError as error:
            return "halfblock", str(error)

    def compose(self) -> ComposeResult:
        mode, reason = self._resolve_mode()
        if mode in ("sixel", "kitty"):
            widget_class = graphics.load_textual_image_widget(mode)
            if widget_class is None:
                reason = f"{mode}: textual-image unavailable, using halfblock"
                mode = "halfblock"
            else:
                try:
                    self._native = widget_class(self._image)
                except Exception as error:  # pragma: no cover - defensive
                    reason = f"{mode}: {error!r}, using halfblock"
                    mode = "halfblock"
                    self._native = None
        self._mode, self._mode_reason = mode, reason

        if self._native is not None:
            self._frame = Container(self._native, classes="image-view--frame")
            yield self._frame
        self._canvas = ImageCanvas(
            self, "ascii" if mode == "ascii" else "halfblock"
        )
        yield self._canvas
        self._caption_label = Static(
            Content(self.shown_caption), markup=False, classes="image-view--caption"
        )
        self._caption_label.display = bool(self.shown_caption)
        yield self._caption_label

    def on_mount(self) -> None:
        self._update_children()
        if self.path is not None and self._image is None:
            self._retries_left = _RETRY_ATTEMPTS
            self._load(self.path)

    def watch_path(self, path: str | None) -> None:
        if not self.is_mounted:
            return
        self._cancel_retry()
        if path is None:
            self._signature = None
            self._show(None)
            return
        self._retries_left = _RETRY_ATTEMPTS
        self._load(path)

    def watch_caption(self, caption: str) -> None:
        self._show_caption()

    def _show_caption(self) -> None:
        if self._caption_label is not None:
            caption = self.shown_caption
            self._caption_label.update(Content(caption))
            self._caption_label.display = bool(caption)

    def watch_placeholder(self, placeholder: str) -> None:
        if self._canvas is not None:
            self._canvas.refresh()

    def _load(self, path: str | None) -> bool:
        """Decode ``path`` into the cached image; keep the old one on failure."""
        if path is None:
            return False
        try:
            stat = os.stat(path)
            signature = (os.fspath(path), stat.st_mtime_ns, stat.st_size)
            if signature == self._signature and self._image is not None:
                return True  # unchanged file: nothing to decode
            data = Path(path).read_bytes()
            decoded = Image.open(io.BytesIO(data))
            decoded.load()  # raises on truncated / corrupt data
            image = graphics.to_rgb(decoded)
            if image is decoded:
                image = decoded.copy()
        except Exception as error:  # missing, truncated, being replaced, ...
            self.last_error = f"{path}: {error}"
            self._schedule_retry()
            return False
        self.last_error = None
        self._signature = signature
        self._show(image)
        return True

    def _schedule_retry(self) -> None:
        if self._retry_timer is not None or self._retries_left <= 0:
            return
        if not self.is_mounted:
            return
        self._retries_left -= 1
        self._retry_timer = self.set_timer(_RETRY_DELAY_S, self._retry)

    def _retry(self) -> None:
        self._retry_timer = None
        self._load(self.path)

    def _cancel_retry(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.stop()
            self._retry_timer = None

    def _show(self, image: Image.Image | None) -> None:
        self._image = image
        self._version += 1
        self._update_children()

    def _update_children(self) -> None:
        has_image = self._image is not None
        if self._native is not None:
            try:
                self._native.image = self._image  # type: ignore[attr-defined]
            except Exception:  # pragma: no cover - textual-image internals
                pass
            if self._frame is not None:
                self._frame.display = has_image
            if self._canvas is not None:
                self._canvas.display = not has_image  # placeholder only
        if self._canvas is not None:
            self._canvas.refresh()
