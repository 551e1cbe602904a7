"""The PixelCNN lesson on tiny CPU configs: the masks (A hides the centre, B keeps it, colour
channels in order), an output never depends on its own or later pixels, the windowed
drawing equals the full network, shapes, the loss falls, the views and their formats, the
receptive field's blind spot, exact resume, the draw request streamed through the runner
with its error replies, and the raster view driven by a Pilot."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.configs.pixelcnn import PixelCNNConfig
from engine.models.pixelcnn import PixelCNN, PixelCNNArgs, raster_mask
from engine.recipes.base import RunContext
from engine.recipes.pixelcnn import PixelCNNRecipe, quantise
from engine.registry import RECIPES
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import validate

TINY = {"width": 8, "blocks": 2, "first_kernel": 7, "batch_size": 8, "train_size": 256, "lr": 3e-3, "samples": 4}


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


@pytest.fixture
def untrained_judge(monkeypatch):
    """An untrained digit classifier in place of the cached one (scores in milliseconds)."""
    from engine.metrics import digit_classifier

    monkeypatch.setattr(digit_classifier, "get_digit_classifier",
                        lambda *a, **k: digit_classifier.DigitClassifier().eval())


def model(channels: int = 1, **kw) -> PixelCNN:
    torch.manual_seed(0)
    m = PixelCNN(PixelCNNArgs(channels=channels, **{"width": 12, "blocks": 2, "size": 10, **kw})).eval()
    for p in m.parameters():  # larger weights than the initial ones: every path carries signal
        torch.nn.init.normal_(p, std=0.3)
    return m


def recipe(**over) -> PixelCNNRecipe:
    torch.manual_seed(0)
    return PixelCNNRecipe(RunContext(device=torch.device("cpu")), PixelCNNConfig(**{**TINY, **over}))


# -- the masks --

def test_mask_a_hides_the_centre_and_mask_b_keeps_it():
    a, b = raster_mask(5, 1, 1, "A")[0, 0], raster_mask(5, 1, 1, "B")[0, 0]
    assert a[2, 2] == 0 and b[2, 2] == 1
    for m in (a, b):
        assert m[:2].eq(1).all()  # rows above: earlier pixels
        assert m[2, :2].eq(1).all()  # left in the same row: earlier
        assert m[2, 3:].eq(0).all() and m[3:].eq(0).all()  # right and below: later
    with pytest.raises(ValueError, match="'A' or 'B'"):
        raster_mask(3, 1, 1, "C")


def test_colour_masks_order_the_channels_inside_a_pixel():
    # Three input channels (R, G, B) to six outputs (two per colour), at the centre tap.
    a = raster_mask(3, 3, 6, "A", colours=3)[:, :, 1, 1]
    b = raster_mask(3, 6, 6, "B", colours=3)[:, :, 1, 1]
    assert a.tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]]
    groups = torch.arange(6) // 2
    assert torch.equal(b, (groups[:, None] >= groups[None, :]).float())


# -- what a pixel may depend on --

@pytest.mark.parametrize("channels,positions", [(1, False), (3, False), (1, True), (3, True)])
def test_a_pixel_never_depends_on_itself_or_later_pixels(channels, positions):
    m = model(channels, positions=positions)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 4, (2, channels, 9, 8), generator=g)
    with torch.no_grad():
        base = m(x)
        for row, col in [(0, 0), (4, 3), (4, 7), (8, 7)]:
            y = x.clone()
            y[:, :, row, col:] = torch.randint(0, 4, y[:, :, row, col:].shape, generator=g)  # this pixel, and on
            y[:, :, row + 1:] = torch.randint(0, 4, y[:, :, row + 1:].shape, generator=g)  # every row below
            out = m(y)
            # Grey: the pixel's own logits and every earlier one unchanged. Colour: the
            # first channel (R) of this pixel too; G and B may see this pixel's R.
            assert torch.equal(out[:, :, :, :row], base[:, :, :, :row])
            assert torch.equal(out[:, :, :, row, :col], base[:, :, :, row, :col])
            assert torch.equal(out[:, :, 0, row, col], base[:, :, 0, row, col])
        # An earlier pixel does reach a later one.
        y = x.clone()
        y[:, :, 3, 3] = (y[:, :, 3, 3] + 1) % 4
        assert not torch.equal(m(y)[..., 4, 3], base[..., 4, 3])


def test_inside_a_colour_pixel_g_sees_r_and_b_sees_r_and_g():
    m = model(3)
    x = torch.randint(0, 4, (1, 3, 6, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        base = m(x)
        for changed, unchanged, moved in [(0, [0], [1, 2]), (1, [0, 1], [2]), (2, [0, 1, 2], [])]:
            y = x.clone()
            y[:, changed, 3, 3] = (y[:, changed, 3, 3] + 2) % 4
            out = m(y)
            for c in unchanged:
                assert torch.equal(out[:, :, c, 3, 3], base[:, :, c, 3, 3]), (changed, c)
            for c in moved:
                assert not torch.equal(out[:, :, c, 3, 3], base[:, :, c, 3, 3]), (changed, c)


def test_type_a_first_layer_is_what_hides_the_pixel_from_itself():
    """With mask B in the first layer too, a pixel's own value leaks into its prediction."""
    m = model(1)
    leaky = model(1)
    leaky.first.mask.copy_(raster_mask(7, 1, 12, "B"))
    x = torch.randint(0, 4, (1, 1, 6, 6), generator=torch.Generator().manual_seed(3))
    y = x.clone()
    y[:, :, 2, 2] = (y[:, :, 2, 2] + 1) % 4
    with torch.no_grad():
        assert torch.equal(m(x)[..., 2, 2], m(y)[..., 2, 2])
        assert not torch.equal(leaky(x)[..., 2, 2], leaky(y)[..., 2, 2])


@pytest.mark.parametrize("channels,positions", [(1, False), (3, True)])
def test_the_windowed_logits_equal_the_whole_network_at_every_pixel(channels, positions):
    m = model(channels, first_kernel=5, positions=positions)
    x = torch.randint(0, 4, (2, channels, 10, 9), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = m(x)
        for row in range(10):
            for col in range(9):
                assert torch.allclose(m.logits_at(x, row, col), full[..., row, col], atol=1e-6), (row, col)


def test_positions_tell_a_pixel_where_it_is():
    """On a blank image, two pixels far from every edge they can see look alike to the plain
    stack; the row and column features tell them apart."""
    blank = torch.zeros(1, 1, 28, 28, dtype=torch.long)
    with torch.no_grad():
        for positions, differ in ((False, False), (True, True)):
            out = model(1, positions=positions, size=28)(blank)  # reach 5: rows 12 and 20 see no edge
            assert torch.equal(out[..., 12, 14], out[..., 20, 14]) is not differ


# -- shapes and sampling --

def test_shapes_and_the_loss_in_bits():
    m = model(3, levels=5)
    x = torch.randint(0, 5, (4, 3, 8, 8))
    assert m(x).shape == (4, 5, 3, 8, 8)
    assert m.nll(x).shape == ()
    fresh = PixelCNN(PixelCNNArgs(levels=4, width=8, blocks=1))
    # An untrained model is close to uniform: about log2(4) = 2 bits per dimension.
    assert fresh.nll(torch.randint(0, 4, (8, 1, 8, 8))).item() / np.log(2) == pytest.approx(2.0, abs=0.2)
    with pytest.raises(ValueError, match="width"):
        PixelCNN(PixelCNNArgs(width=7))


def test_drawing_goes_in_raster_order_and_is_reproducible():
    m = model(1)
    seen = []
    for i, x, probs in m.draw(3, (5, 4), torch.Generator().manual_seed(0)):
        assert probs.shape == (3, 1, 4) and torch.allclose(probs.sum(-1), torch.ones(3, 1))
        seen.append((i, x.clone()))
    assert [i for i, _ in seen] == list(range(20))
    final = seen[-1][1]
    assert final.shape == (3, 1, 5, 4) and final.min() >= 0 and final.max() < 4
    for i, x in seen:  # once drawn, a pixel never changes
        flat, done = x.flatten(1), final.flatten(1)
        assert torch.equal(flat[:, : i + 1], done[:, : i + 1]) and flat[:, i + 1:].eq(0).all()
    again = m.sample(3, (5, 4), torch.Generator().manual_seed(0))
    assert torch.equal(again, final)
    cold = m.sample(64, (5, 4), torch.Generator().manual_seed(0), temperature=0.05)
    logits = m(cold)  # at a low temperature each pixel takes its most likely level
    assert (logits.argmax(1) == cold).float().mean() > 0.95


def test_quantise_uses_equal_bins():
    x = torch.tensor([0, 63, 64, 127, 128, 255], dtype=torch.uint8)
    assert quantise(x, 4).tolist() == [0, 0, 1, 1, 2, 3]
    assert quantise(x, 2).tolist() == [0, 0, 0, 0, 1, 1]


# -- the recipe --

def test_the_loss_falls():
    r = recipe(width=16, batch_size=16)
    first = [r.train_step()["train/bpd"].item() for _ in range(5)]
    for _ in range(60):
        last = r.train_step()
    assert last["train/bpd"].item() < 0.6 * np.mean(first)
    assert last["train/bpd"].item() == pytest.approx(last["train/loss"].item() / np.log(2))


def test_views_have_their_formats_and_the_field_shows_the_blind_spot(untrained_judge):
    r = recipe()
    r.train_step()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "raster", "field", "field-layers"}
    assert arts["samples"].data.shape == (30 + 2, 4 * 30 + 2)
    raster = arts["raster"].data
    assert json.loads(json.dumps(raster)) == raster  # JSON-ready
    assert (raster["height"], raster["width"], raster["channels"], raster["levels"]) == (28, 28, 1, 4)
    assert raster["done"] == 784 and len(raster["images"]) == 4 and len(raster["images"][0]) == 784
    assert len(raster["probs"]) == 784 and all(abs(sum(p[0]) - 1) < 0.01 for p in raster["probs"])
    assert arts["field"].data.shape == (28, 28, 3)
    assert arts["field-layers"].data.shape == (32, 3 * 30 + 2, 3)  # the first layer and 2 blocks
    fields, _ = r.field()
    assert fields.shape == (3, 28, 28)
    later = np.arange(784).reshape(28, 28) >= 14 * 28 + 14
    assert (fields[:, later] == 0).all()  # never the pixel itself or anything after it
    assert (fields[-1][13, 11:18] > 0).all()  # the row above, within reach: seen
    blind = r.reach_window(2) & (fields[-1] == 0)
    assert blind.any() and "blind spot" in arts["field"].caption
    assert blind[13, 18] and fields[-1][12, 18] > 0  # the row just above is cut short on the right
    scores = r.evaluate()
    assert set(scores) == {"val/loss", "val/bpd", "quality/recognisability", "quality/coverage"}
    # The views draw from a fixed seed and keep what they drew until the weights change.
    assert r.fixed_samples()[0] is r.fixed_samples()[0]
    images = r.sample_images(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_faces_are_drawn_in_colour(tmp_path):
    r = recipe(dataset="faces", image_size=16, train_size=256)
    assert r.x_train.shape[1:] == (3, 16, 16) and r.x_train.max() <= 3
    assert torch.isfinite(r.train_step()["train/loss"])
    assert r.sample_images(2, torch.Generator().manual_seed(0)).shape == (2, 3, 16, 16)
    assert not r.scored and "quality/recognisability" not in r.evaluate()


def test_live_settings():
    r = recipe()
    r.set_live("lr", 5e-4)
    r.set_live("temperature", 0.5)
    assert r.cfg.lr == 5e-4 and r.temperature == 0.5
    r.steps_done = r.cfg.steps  # the schedule's end: a tenth of the peak
    r.train_step()
    assert r.opt.param_groups[0]["lr"] == pytest.approx(5e-5)
    with pytest.raises(KeyError):
        r.set_live("width", 8)


def test_draw_streams_and_refuses_bad_requests():
    r = recipe()
    parts = [a.data for a in r.interact("draw", {"request": 3})]
    assert parts[-1]["done"] == 784 and parts[-1]["request"] == 3 and "new drawing 3" in parts[-1]["label"]
    assert all(p["done"] <= q["done"] for p, q in zip(parts, parts[1:]))
    with pytest.raises(ValueError, match="no 'paint' action"):
        list(r.interact("paint", {}))
    with pytest.raises(ValueError, match="whole number"):
        list(r.interact("draw", {"request": "x"}))


# -- through the runner --

def write_run(path, **params) -> RunDir:
    cfg = validate(PixelCNNConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("pixelcnn", asdict(cfg), device="cpu", lesson="pixelcnn-digits")
    return rd


def test_registered():
    assert RECIPES["pixelcnn"] == (PixelCNNConfig, "engine.recipes.pixelcnn")


def test_runner_trains_and_resumes_exactly(tmp_path, untrained_judge):
    whole = write_run(tmp_path / "whole", steps=10)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=4)
    assert Runner(half.path).run() == 0
    cfg = half.read_config()
    cfg["params"]["steps"] = 10
    half.write_config("pixelcnn", cfg["params"], device="cpu", lesson="pixelcnn-digits")
    assert Runner(half.path).run() == 0
    a, b = (load_checkpoint(rd.checkpoint_path)["state"] for rd in (whole, half))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    hist = read_history(half)
    assert hist.state == "finished"
    assert {"train/loss", "train/bpd", "val/bpd", "quality/recognisability"} <= set(hist.metrics)
    assert {"samples", "raster", "field", "field-layers"} <= set(hist.samples)


def test_draw_through_the_runner_and_errors_come_back(tmp_path, untrained_judge):
    rd = write_run(tmp_path / "run", steps=2)

    def answers(name):
        return [(e.payload["path"], json.loads((rd.path / e.payload["path"]).read_text())) for e in rd.events()
                if e.type == "sample" and e.payload["name"] == name]

    def drive():
        deadline = time.monotonic() + 90
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            rd.send("set", key="temperature", value=0.5)
            rd.send("interact", name="draw", reply="raster", request=1)
            rd.send("interact", name="draw", reply="raster", request="one")
            rd.send("interact", name="paint", reply="raster", request=2)
            while len(answers("raster.error")) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    drawn = [data for path, data in answers("raster") if "-r1-" in path]
    assert drawn and drawn[-1]["done"] == 784 and "temperature 0.5" in drawn[-1]["label"]
    errors = [data["error"] for _, data in answers("raster.error")]
    assert any("whole number" in e for e in errors) and any("no 'paint' action" in e for e in errors)


# -- the raster view, in the studio --

async def test_the_raster_view_scrubs_plays_and_draws_on_request():
    from test_studio import lesson_screen, start_tiny, wait_for

    from studio.app import GenStudioApp
    from studio.widgets.raster import BLANK, CURSOR, PAD, RasterView

    app = GenStudioApp(graphics="halfblock", lesson="pixelcnn-digits")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        menus = {"first_kernel": TINY["first_kernel"]}  # a menu: set by value
        await start_tiny(pilot, screen, {**{k: v for k, v in TINY.items() if k not in menus}, "blocks": 1,
                                         "steps": 1_000_000}, menus)
        await wait_for(pilot, lambda: screen.snapshot is not None and "raster" in screen.snapshot.samples,
                       timeout=120, what="the first drawing")
        # Requests are answered between steps: past step 0, which fits the digit classifier
        # when the session has none cached (minutes on a busy machine).
        await wait_for(pilot, lambda: screen.snapshot.step > 0, timeout=600, what="the first training step")
        await pilot.press("2")
        await pilot.pause()
        view = screen.query_one(RasterView)
        assert app.focused is view
        await wait_for(pilot, lambda: view.drawing is not None, what="the drawing loaded")
        assert view.frame == view.total == 784  # a finished drawing opens on its last frame

        def pixel(k):  # the first image's pixel k as shown
            return view.query_one("#raster-image").image.getpixel((PAD + k % 28, PAD + k // 28))

        await pilot.press("home", "right", "right")
        assert view.frame == 2 and pixel(2) == CURSOR and pixel(3) == BLANK
        await pilot.press("left")
        assert view.frame == 1
        await pilot.press("shift+right")
        assert view.frame == 29
        await pilot.press("pagedown", "pageup", "pageup")
        assert view.frame == 1
        bar = str(screen.query_one("#raster-bar").render())
        assert "pixel 2/784 (row 0, column 1)" in bar and "p(level" in bar
        # each level's bar after a swatch in its shade, dark to light (the levels had no names)
        shades = [tuple(span.style.foreground.rgb) for span in screen.query_one("#raster-bar").render().spans
                  if getattr(span.style, "foreground", None) is not None]
        assert (0, 0, 0) in shades and (255, 255, 255) in shades, shades
        assert shades.index((0, 0, 0)) < shades.index((85, 85, 85)) < shades.index((255, 255, 255))
        await pilot.press("end")
        assert view.frame == 784 and "all 784 pixels drawn" in str(screen.query_one("#raster-bar").render())
        await pilot.press("space")  # at the end, play starts again from a blank image
        assert view.playing
        await wait_for(pilot, lambda: view.frame >= 30, timeout=10, what="playing")
        await pilot.press("space")
        assert not view.playing
        await pilot.press("enter")  # a new drawing, from its own seed
        await wait_for(pilot, lambda: view.drawing["request"] == 1 and view.drawing["done"] == 784,
                       timeout=120, what="the requested drawing")
        assert "new drawing 1" in str(screen.query_one("#raster-bar").render())
        # The run's next periodic drawing waits while the learner studies theirs.
        await wait_for(pilot, lambda: view.held is not None, timeout=120, what="the run's next samples")
        assert view.drawing["request"] == 1
        assert "Backspace: the run's samples" in str(screen.query_one("#raster-bar").render())
        await pilot.press("backspace")
        assert view.drawing["request"] == 0 and view.held is None
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


async def test_enter_with_no_model_says_why_in_the_raster_view():
    """Enter in the Raster tab before any run asked the engine and then showed nothing:
    the view now says there is no model and how to get one."""
    from test_studio import lesson_screen, wait_for

    from studio.app import GenStudioApp
    from studio.widgets.raster import RasterView

    app = GenStudioApp(graphics="halfblock", lesson="pixelcnn-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = lesson_screen(app)
        await pilot.press("l", "2")  # the dashboard (at 80 columns the text comes first), the Raster tab
        await pilot.pause()
        view = screen.query_one(RasterView)
        view.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "press s" in view.error, timeout=10, what=f"the refusal, not {view.error!r}")
        assert "press s" in str(screen.query_one("#raster-bar").render())
