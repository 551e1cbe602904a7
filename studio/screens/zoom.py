"""Full screen for an image view. A grid of samples is shown a page of tiles at a time, each
tile as large as the terminal allows (PgDn/PgUp turn the pages, +/- make tiles larger or
smaller), so every sample can be seen at a readable size; any other image is shown whole.
←/→ go through the images the lesson shows now; Esc or f goes back."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from studio.widgets.image_view import ImageView

SCALES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # tile sizes, in image pixels per half-block cell
START_SCALE = 1  # index into SCALES: a 28-pixel digit 21 cells wide, larger than the lesson view draws it


@dataclass(frozen=True)
class ZoomItem:
    title: str  # the tab it is on, and what it is
    path: str
    caption: str
    tile: tuple[int, int] | None = None  # (pitch, padding) when the image is a grid of tiles
    group: int = 1  # columns of tiles that belong together (input | output pairs)


def grid_shape(image: Image.Image, tile: tuple[int, int] | None) -> tuple[int, int] | None:
    """(columns, rows) of tiles, or None when the image is not a grid of that pitch."""
    if tile is None:
        return None
    step, pad = tile
    if (image.width - pad) % step or (image.height - pad) % step:
        return None
    return (image.width - pad) // step, (image.height - pad) // step


def page_of_tiles(image: Image.Image, tile: tuple[int, int], first: int, cols: int, rows: int,
                  group: int = 1) -> tuple[Image.Image, int]:
    """Tiles first, first + 1, ... (in reading order; groups of ``group`` columns kept
    together) laid out ``cols`` x ``rows``; returns the page and how many tiles it holds."""
    step, pad = tile
    gc, gr = grid_shape(image, tile)
    units = [(c, r) for r in range(gr) for c in range(0, gc, group)]  # a unit: `group` tiles side by side
    per_row = max(1, cols // group)
    chosen = units[first:first + per_row * rows]
    page = Image.new("RGB", (per_row * group * step + pad, max(1, math.ceil(len(chosen) / per_row)) * step + pad),
                     image.getpixel((0, 0)))
    for i, (c, r) in enumerate(chosen):
        box = (c * step, r * step, (c + group) * step + pad, (r + 1) * step + pad)
        page.paste(image.crop(box), ((i % per_row) * group * step, (i // per_row) * step))
    return page, len(chosen)


class ZoomScreen(ModalScreen):
    DEFAULT_CSS = """
    ZoomScreen { background: $background; }
    ZoomScreen > Vertical { width: 100%; height: 100%; }
    ZoomScreen #zoom-title { width: 100%; height: 1; padding: 0 1; background: $primary-background; }
    ZoomScreen ImageView { height: 1fr; }
    ZoomScreen #zoom-hint { width: 100%; height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,f,q", "app.pop_screen", "Back", tooltip="Back to the lesson"),
        Binding("right", "move(1)", "Next image"),
        Binding("left", "move(-1)", "Previous image"),
        Binding("pagedown,space,down", "page(1)", "More tiles"),
        Binding("pageup,up", "page(-1)", "Earlier tiles"),
        Binding("plus,equals_sign", "scale(1)", "Larger"),
        Binding("minus", "scale(-1)", "Smaller"),
    ]

    def __init__(self, items: list[ZoomItem], start: int = 0) -> None:
        super().__init__()
        self.items = items
        self.index = max(0, min(start, len(items) - 1))
        self.first = 0  # the first tile (unit) on the page
        self.scale = START_SCALE
        self.per_page = 0
        self.image: Image.Image | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="zoom-title")
            yield ImageView(id="zoom-image", placeholder="no image")
            yield Static(id="zoom-hint")

    def on_mount(self) -> None:
        self._load()

    def on_resize(self) -> None:
        self.call_after_refresh(self._show)

    def action_move(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.items)
        self.first = 0
        self._load()

    def action_page(self, delta: int) -> None:
        total = self._units()
        if self.per_page and total:
            self.first = max(0, min(self.first + delta * self.per_page, (total - 1) // self.per_page * self.per_page))
            self._show()

    def action_scale(self, delta: int) -> None:
        self.scale = max(0, min(len(SCALES) - 1, self.scale + delta))
        self._show()

    def _load(self) -> None:
        item = self.items[self.index]
        try:
            with Image.open(item.path) as im:
                self.image = im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            self.image = None
        self._show()

    def _units(self) -> int:
        item = self.items[self.index]
        shape = grid_shape(self.image, item.tile) if self.image is not None else None
        return 0 if shape is None else math.ceil(shape[0] / item.group) * shape[1]

    def _show(self) -> None:
        item = self.items[self.index]
        view = self.query_one(ImageView)
        where = ""
        shape = grid_shape(self.image, item.tile) if self.image is not None else None
        if self.image is None:
            view.set_image(None)
        elif shape is None:
            view.set_image(self.image)
        else:
            width, height = view.size.width or self.size.width, (view.size.height or self.size.height - 3) - 1
            pitch = item.tile[0] * SCALES[self.scale] / 2  # cells a tile takes (half-blocks: 2 pixel rows a cell)
            cols = max(item.group, int(width / (pitch * 2)) // item.group * item.group)
            rows = max(1, int(height / pitch))
            self.per_page = max(1, (cols // item.group) * rows)
            self.first = min(self.first, max(0, self._units() - 1) // self.per_page * self.per_page)
            page, n = page_of_tiles(self.image, item.tile, self.first, cols, rows, item.group)
            view.set_image(page)
            unit = "pairs" if item.group == 2 else ("rows" if item.group > 2 else "tiles")
            where = f"  {unit} {self.first + 1}-{self.first + n} of {self._units()}"
        self.query_one("#zoom-title", Static).update(Text.assemble(("full screen  ", "bold"), item.title, where))
        view.caption = item.caption
        keys = ["PgDn/PgUp: more", "+/-: size"] if shape is not None else []
        if len(self.items) > 1:
            keys.append(f"←/→: other images ({self.index + 1} of {len(self.items)})")
        keys.append("Esc or f: back")
        self.query_one("#zoom-hint", Static).update(Text(" · ".join(keys), style="dim"))
