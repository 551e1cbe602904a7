"""Tests for studio.widgets.image_view.ImageView (Textual pilot tests)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from rich.color import ColorTriplet
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget

from studio.graphics import ASCII_RAMP, HALF_BLOCK
from studio.widgets.image_view import DEFAULT_PLACEHOLDER, ImageCanvas, ImageView

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)


class ViewApp(App):
    """Minimal app hosting one ImageView."""

    def __init__(self, view: ImageView, graphics_mode: str | None = None) -> None:
        super().__init__()
        self._view = view
        if graphics_mode is not None:
            self.graphics_mode = graphics_mode

    def compose(self) -> ComposeResult:
        yield self._view


def _two_tone(path: Path, top=RED, bottom=BLUE, size=(28, 28)) -> Path:
    """PNG whose upper half is ``top`` and lower half ``bottom``."""
    img = Image.new("RGB", size, bottom)
    img.paste(Image.new("RGB", (size[0], size[1] // 2), top), (0, 0))
    img.save(path)
    return path


def _solid(path: Path, colour, size=(28, 28)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def digit_grid(n: int = 4, size: int = 28, pad: int = 2) -> Image.Image:
    """A sample grid like the engine writes: n x n digits, ``pad`` px padding."""
    side = n * size + (n + 1) * pad
    img = Image.new("RGB", (side, side), (40, 40, 40))
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=22)
    except TypeError:  # very old Pillow
        font = ImageFont.load_default()
    colours = [(255, 80, 80), (80, 255, 80), (80, 160, 255), (255, 220, 60)]
    for i in range(n * n):
        x = pad + (i % n) * (size + pad)
        y = pad + (i // n) * (size + pad)
        draw.rectangle([x, y, x + size - 1, y + size - 1], fill=(0, 0, 0))
        draw.text(
            (x + size // 2, y + size // 2),
            str(i % 10),
            fill=colours[i % len(colours)],
            font=font,
            anchor="mm",
        )
    return img


def canvas_strips(view: ImageView):
    canvas = view.query_one(ImageCanvas)
    width, height = canvas.size
    return canvas.render_lines(Region(0, 0, width, height))


def canvas_text(view: ImageView) -> str:
    return "\n".join(strip.text for strip in canvas_strips(view))


def image_cell_colours(view: ImageView) -> set[tuple]:
    """(fg, bg) triplets of every half block cell on the canvas."""
    colours = set()
    for strip in canvas_strips(view):
        for segment in strip:
            if HALF_BLOCK in segment.text and segment.style is not None:
                fg = segment.style.color.triplet if segment.style.color else None
                bg = segment.style.bgcolor.triplet if segment.style.bgcolor else None
                colours.add((fg, bg))
    return colours


async def test_placeholder_without_image():
    view = ImageView()
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert view.image is None
        text = canvas_text(view)
        assert DEFAULT_PLACEHOLDER in text
        assert HALF_BLOCK not in text


async def test_shows_png_from_path(tmp_path):
    png = _two_tone(tmp_path / "samples.png")
    view = ImageView(caption="samples @ step 1200")
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view.path = str(png)
        await pilot.pause()
        assert view.image is not None and view.image.size == (28, 28)
        assert view.mode == "halfblock"
        text = canvas_text(view)
        assert text.count(HALF_BLOCK) > 100
        assert DEFAULT_PLACEHOLDER not in text
        colours = image_cell_colours(view)
        # upper half: red on red, lower half: blue on blue
        assert (ColorTriplet(*RED), ColorTriplet(*RED)) in colours
        assert (ColorTriplet(*BLUE), ColorTriplet(*BLUE)) in colours
        # the caption is on screen
        caption = view.query_one(".image-view--caption")
        assert caption.display
        assert "samples @ step 1200" in str(caption.render())


async def test_image_fits_and_refits_on_resize(tmp_path):
    png = _solid(tmp_path / "grid.png", GREEN, size=(232, 232))
    view = ImageView(png)
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        canvas = view.query_one(ImageCanvas)
        rows = [line for line in canvas_text(view).split("\n") if HALF_BLOCK in line]
        assert len(rows) == canvas.size.height  # height-bound square image
        assert max(line.count(HALF_BLOCK) for line in rows) == 2 * len(rows)
        # the decoded image is cached: resizing does not need the file any more
        png.unlink()
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        rows = [line for line in canvas_text(view).split("\n") if HALF_BLOCK in line]
        assert len(rows) == canvas.size.height > 24
        width = max(line.count(HALF_BLOCK) for line in rows)
        assert width == 2 * len(rows) <= canvas.size.width
        assert view.image is not None


async def test_truncated_png_keeps_previous_image(tmp_path):
    good = _solid(tmp_path / "good.png", RED)
    view = ImageView()
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        view.path = str(good)
        await pilot.pause()
        before = view.image
        assert before is not None

        # a new grid that is still being written: cut the PNG in half
        full = tmp_path / "full.png"
        _solid(full, BLUE, size=(64, 64))
        data = full.read_bytes()
        samples = tmp_path / "samples.png"
        samples.write_bytes(data[: len(data) // 2])
        view.path = str(samples)  # must not raise
        await pilot.pause()
        assert view.image is before
        assert view.last_error
        assert (ColorTriplet(*RED), ColorTriplet(*RED)) in image_cell_colours(view)

        # garbage, an empty file and a missing file are fine too
        samples.write_bytes(b"not a png at all")
        view.path = str(samples)
        samples.write_bytes(b"")
        view.path = str(samples)
        view.path = str(tmp_path / "missing.png")
        await pilot.pause()
        assert view.image is before

        # once the file is complete the next update shows it
        samples.write_bytes(data)
        view.path = str(samples)
        await pilot.pause()
        assert view.image is not before and view.image.size == (64, 64)
        assert view.last_error is None
        assert (ColorTriplet(*BLUE), ColorTriplet(*BLUE)) in image_cell_colours(view)


async def test_retries_after_failed_load(tmp_path):
    samples = tmp_path / "samples.png"
    view = ImageView()
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        view.path = str(samples)  # not written yet
        await pilot.pause()
        assert view.image is None
        _solid(samples, GREEN)
        for _ in range(20):  # the widget retries on its own (every 0.25 s)
            await pilot.pause(0.1)
            if view.image is not None:
                break
        assert view.image is not None
        assert view.last_error is None


async def test_same_path_rewritten_is_reloaded(tmp_path):
    samples = _solid(tmp_path / "samples.png", RED)
    view = ImageView(samples)
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert view.image.getpixel((0, 0)) == RED
        # engine writes the next grid to the same file (atomically)
        tmp = tmp_path / "samples.tmp.png"
        _solid(tmp, BLUE, size=(30, 30))
        os.replace(tmp, samples)
        stat = samples.stat()
        os.utime(samples, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        view.path = str(samples)
        await pilot.pause()
        assert view.image.getpixel((0, 0)) == BLUE
        assert (ColorTriplet(*BLUE), ColorTriplet(*BLUE)) in image_cell_colours(view)
        view.path = None
        await pilot.pause()
        assert view.image is None
        assert DEFAULT_PLACEHOLDER in canvas_text(view)


async def test_set_image_and_caption():
    view = ImageView(caption="")
    async with ViewApp(view).run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        caption = view.query_one(".image-view--caption")
        assert not caption.display
        view.set_image(Image.new("L", (10, 10), 255))
        view.caption = "samples @ step 5"
        await pilot.pause()
        assert caption.display
        assert view.path is None
        white = ColorTriplet(255, 255, 255)
        assert image_cell_colours(view) == {(white, white)}


async def test_ascii_mode(tmp_path):
    png = _two_tone(tmp_path / "s.png", top=(255, 255, 255), bottom=(0, 0, 0))
    view = ImageView(png, mode="ascii")
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert view.mode == "ascii"
        text = canvas_text(view)
        assert HALF_BLOCK not in text
        assert ASCII_RAMP[-1] in text
        assert set(text) <= set(ASCII_RAMP) | {"\n"}


async def test_mode_from_app_attribute(tmp_path):
    view = ImageView(_solid(tmp_path / "s.png", RED))
    async with ViewApp(view, graphics_mode="ascii").run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert view.mode == "ascii"


async def test_sixel_falls_back_to_halfblock_without_tty(tmp_path):
    # under pytest stdin/stdout are not terminals: textual-image is not loaded
    view = ImageView(_solid(tmp_path / "s.png", RED), mode="sixel")
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert view.mode == "halfblock"
        assert "halfblock" in view.mode_reason
        assert HALF_BLOCK in canvas_text(view)


async def test_screenshots_of_sample_grid(tmp_path):
    png = tmp_path / "grid.png"
    digit_grid(4).save(png)
    out_dir = Path(os.environ.get("IMAGEVIEW_SCREENSHOT_DIR", tmp_path))
    for width, height in ((80, 24), (200, 60)):
        view = ImageView(png, caption="samples @ step 1200")
        async with ViewApp(view).run_test(size=(width, height)) as pilot:
            await pilot.pause()
            assert view.image is not None
            name = f"imageview_{width}x{height}.svg"
            saved = Path(pilot.app.save_screenshot(name, path=str(out_dir)))
            svg = saved.read_text()
            assert "samples @ step 1200" in svg.replace("&#160;", " ")
            assert HALF_BLOCK in svg


class FakeNativeImage(Widget):
    """Stand-in for textual-image's SixelImage / TGPImage (same constructor
    and ``image`` attribute), so the test process never imports textual_image."""

    def __init__(self, image=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image = image

    def get_content_width(self, container, viewport) -> int:
        return min(container.width, 20) if self.image is not None else 0

    def get_content_height(self, container, viewport, width) -> int:
        return min(container.height, 10) if self.image is not None else 0

    def render(self) -> str:
        return "NATIVE"


async def test_native_widget_is_mounted_for_sixel(tmp_path, monkeypatch):
    """sixel/kitty mount the class load_textual_image_widget returns."""
    import studio.graphics as graphics

    loaded = []

    def fake_loader(mode):
        loaded.append(mode)
        return FakeNativeImage

    monkeypatch.setattr(graphics, "load_textual_image_widget", fake_loader)
    monkeypatch.setattr(
        graphics, "detect_mode_with_reason", lambda requested: (requested, "test")
    )
    view = ImageView(mode="kitty")
    async with ViewApp(view).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert loaded == ["kitty"]
        assert view.mode == "kitty"
        native = view.query_one(FakeNativeImage)
        canvas = view.query_one(ImageCanvas)
        assert not native.parent.display and canvas.display  # placeholder first
        assert DEFAULT_PLACEHOLDER in canvas_text(view)
        view.path = str(_solid(tmp_path / "s.png", RED, size=(64, 64)))
        await pilot.pause()
        assert native.image is view.image
        assert native.parent.display and not canvas.display
        # centred in its frame by the default CSS
        assert native.size == (20, 10)
        frame = native.parent.region
        assert native.region.x - frame.x == (frame.width - 20) // 2
