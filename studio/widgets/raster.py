"""The pixel-by-pixel drawing of an autoregressive image model, replayed: a cursor walks the
pixels in raster order over a grid of images; the pixels before it are drawn, the one under
it is the next to be drawn (with the model's distribution for it in the first image), the
rest are still blank. Enter asks the engine for a new drawing, which arrives in parts."""

from __future__ import annotations

import numpy as np
from PIL import Image
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from studio.messages import AskEngine
from studio.widgets.image_view import ImageView
from studio.widgets.sampler import read_json
from studio.widgets.scrubber import Scrubber
from studio.widgets.view import ArtifactUpdate

COLS = 4  # images per row of the grid
PAD = 2  # pixels between images
PAD_GREY = 38  # the padding's grey (make_grid's 0.15)
BLANK = (22, 26, 40)  # a pixel not drawn yet
CURSOR = (255, 64, 64)  # the pixel drawn next
PLAY_SECONDS = 10  # a whole image plays in about this long
BARS = "▁▂▃▄▅▆▇█"
CHANNEL_NAMES = {1: ("",), 3: ("R ", "G ", "B ")}


def read_drawing(data: dict | None) -> dict | None:
    """The artifact's fields, checked (the run directory is untrusted): None if malformed."""
    if not data:
        return None
    try:
        h, w, c, levels, done = (int(data[k]) for k in ("height", "width", "channels", "levels", "done"))
        images = np.asarray(data["images"], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 < h <= 256 and 0 < w <= 256 and c in (1, 3) and 2 <= levels <= 256 and 0 <= done <= h * w):
        return None
    if images.ndim != 2 or not 0 < len(images) <= 64 or images.shape[1] != h * w * c:
        return None
    probs = data.get("probs") if isinstance(data.get("probs"), list) else []
    return {"height": h, "width": w, "channels": c, "levels": levels, "done": done, "probs": probs,
            "images": images.clip(0, levels - 1).reshape(len(images), h, w, c),
            "label": str(data.get("label", "")), "request": data.get("request", 0)}


class RasterView(Scrubber):
    """←/→ one pixel, shift+←/→ or PgUp/PgDn one row, Home/End the ends, space plays,
    Enter draws new images."""

    DEFAULT_CSS = """
    RasterView { padding: 0 1; }
    RasterView #raster-bar { height: 3; }
    RasterView ImageView { height: 1fr; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", "Pixel back", tooltip="Move the cursor one pixel back"),
        Binding("right", "move(1)", "Pixel on", tooltip="Draw one more pixel"),
        Binding("shift+left,pageup", "page(-1)", "Row back", show=False),
        Binding("shift+right,pagedown", "page(1)", "Row on", show=False),
        Binding("space", "play", "Play/pause"),
        Binding("home", "jump(0)", "Blank", show=False),
        Binding("end", "jump(-1)", "Drawn", show=False),
        Binding("enter", "draw", "Draw new", tooltip="Ask the model to draw new images, pixel by pixel"),
        Binding("backspace", "latest", "Run's own", tooltip="Back from your drawing to the run's newest samples"),
    ]
    PLAY_FPS = 12

    def __init__(self, artifact: str, action: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.artifact, self.action = artifact, action
        self.drawing: dict | None = None
        self.step = 0  # the training step of the model that drew it
        self.request = 0  # the learner's requests, numbered (each draws from its own seed)
        self.error = ""
        self.held: tuple[dict, int] | None = None  # the run's newer samples (drawing, step), kept back
        self._grid: np.ndarray | None = None  # (Hg, Wg, 3) uint8: every image as drawn
        self._order: np.ndarray | None = None  # (Hg, Wg): each grid pixel's raster index, -1 on padding

    @classmethod
    def from_pane(cls, pane, specs: dict, values: dict) -> RasterView:
        return cls(pane.artifact, pane.action, id=pane.id)

    def compose(self) -> ComposeResult:
        hint = "; then Enter draws new images" if self.action else ""
        yield Static(Text(f"nothing drawn yet: press s to start training{hint}; ←/→ walk the pixels, "
                          "space plays", style="dim"), id="raster-bar")
        yield ImageView(id="raster-image", placeholder="")

    # -- frames: frame k shows k pixels drawn, the cursor on pixel k --
    @property
    def total(self) -> int:
        return self.drawing["height"] * self.drawing["width"] if self.drawing else 0

    @property
    def frames(self) -> int:
        return self.drawing["done"] + 1 if self.drawing else 0

    @property
    def big_step(self) -> int:
        return self.drawing["width"] if self.drawing else 1

    @property
    def play_stride(self) -> int:
        return max(1, self.total // (PLAY_SECONDS * self.PLAY_FPS))

    def load(self, update: ArtifactUpdate) -> None:
        data = read_json(update.path)
        if update.name != self.artifact:  # an error reply to a request
            self.error = str((data or {}).get("error", ""))
            self._show()
            return
        drawing = read_drawing(data)
        if drawing is None:
            return  # being replaced, or damaged: keep what is shown
        old = self.drawing
        if old is not None and old["request"] and not drawing["request"]:
            # The learner asked for the drawing shown: the run's periodic samples wait
            # (Backspace shows them) rather than replace it while it is being studied.
            self.held = (drawing, update.step)
            self._show()
            return
        self._replace(drawing, update.step, old)

    def _replace(self, drawing: dict, step: int, old: dict | None) -> None:
        following = old is None or self.frame >= old["done"] or drawing["request"] != old["request"]
        self.drawing, self.step, self.error = drawing, step, ""
        if drawing["request"]:
            self.held = None
        self._layout(drawing)
        if following and not self.playing:
            self.frame = drawing["done"]  # a drawing in progress: keep up with it
        self._show()

    def _layout(self, d: dict) -> None:
        """The grid of images and each grid pixel's raster index, made once per version (the
        frames only mask them)."""
        n, h, w, c = d["images"].shape
        rows = (n + COLS - 1) // COLS
        colour = (d["images"] * 255 // (d["levels"] - 1)).astype(np.uint8)  # (n, h, w, c)
        if c == 1:
            colour = colour.repeat(3, axis=3)
        grid = np.full((rows * (h + PAD) + PAD, COLS * (w + PAD) + PAD, 3), PAD_GREY, np.uint8)
        order = np.full(grid.shape[:2], -1, np.int64)
        index = np.arange(h * w).reshape(h, w)
        for i in range(n):
            y, x = PAD + (i // COLS) * (h + PAD), PAD + (i % COLS) * (w + PAD)
            grid[y:y + h, x:x + w] = colour[i]
            order[y:y + h, x:x + w] = index
        self._grid, self._order = grid, order
        self.query_one(ImageView).tile = (h + PAD, PAD)

    def _show(self) -> None:
        d = self.drawing
        if d is None or self._grid is None:
            if self.error:
                self.query_one("#raster-bar", Static).update(Text(self.error, style="bold red"))
            return
        self.frame = max(0, min(self.frames - 1, self.frame))
        k = self.frame
        picture = self._grid.copy()
        picture[self._order > k] = BLANK  # not drawn yet at this frame
        picture[self._order == k] = CURSOR  # (past the last pixel: nothing)
        self.query_one(ImageView).set_image(Image.fromarray(picture))
        self.query_one("#raster-bar", Static).update(self._bar(d, k))

    def _bar(self, d: dict, k: int) -> Text:
        total, w = self.total, d["width"]
        filled = round(30 * k / max(1, total))
        where = f"pixel {k + 1}/{total} (row {k // w}, column {k % w})" if k < total else f"all {total} pixels drawn"
        bar = Text.assemble(("█" * filled, "cyan"), ("░" * (30 - filled), "dim"), f"  {where}  ",
                            ("▶ playing" if self.playing else "", "bold green"))
        if d["done"] < total:
            bar.append(f"  drawing … {d['done']}/{total}", style="bold yellow")
        bar.append("\n")
        if k < d["done"] and k < len(d["probs"]):
            bar.append_text(self._distribution(d, k))
        elif k < total:
            bar.append("not drawn yet", style="dim")
        else:
            bar.append("Home: back to a blank image · space: watch it being drawn", style="dim")
        if self.error:
            bar.append(f"\n{self.error}", style="bold red")
        else:
            keys = "←/→ pixel · shift+←/→ row · space plays" + (" · Enter draws new" if self.action else "")
            bar.append(f"\n{keys} · {d['label']} · model at step {self.step}", style="dim")
            if self.held:
                bar.append(f" · Backspace: the run's samples at step {self.held[1]}", style="bold yellow")
        return bar

    def _distribution(self, d: dict, k: int) -> Text:
        """The first image's distribution for pixel k, a bar per level, the drawn level bold."""
        out = Text("image 1, p(level ■ | pixels before): ")  # ■ in each level's shade
        try:
            channels = [[float(p) for p in ch] for ch in d["probs"][k]]
        except (TypeError, ValueError):
            return Text("")
        row, col = divmod(k, d["width"])
        names = CHANNEL_NAMES.get(len(channels), ("",) * len(channels))
        for c, probs in enumerate(channels):
            drawn = int(d["images"][0, row, col, c]) if c < d["images"].shape[3] else -1
            out.append(names[c] if c < len(names) else "", style="bold")
            for level, p in enumerate(probs):
                bar = BARS[min(len(BARS) - 1, int(p * len(BARS)))]
                v = round(255 * level / max(1, len(probs) - 1))  # the level's shade, in its channel
                shade = [v if len(channels) == 1 or i == c else 0 for i in range(3)]
                out.append("■", style=f"rgb({shade[0]},{shade[1]},{shade[2]})")
                out.append(f"{bar}{p:.2f}", style="bold cyan" if level == drawn else "dim")
                out.append(" ")
            out.append(" ")
        return out

    def refused(self, message: str) -> None:
        self.error = message
        self._show()

    def action_latest(self) -> None:
        """From the learner's drawing back to the run's newest samples."""
        if self.held is None:
            return
        (drawing, step), self.held = self.held, None
        self._replace(drawing, step, None)

    def action_draw(self) -> None:
        if not self.action:
            return
        self.request += 1
        self.error = ""
        self.ask_engine(AskEngine(self.action, self.artifact, {"request": self.request}, what="draw new images"))
