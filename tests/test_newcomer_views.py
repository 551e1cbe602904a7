"""What a newcomer hit in the dashboard's views at 80x24 and 120x40, keyboard only: each
reproduced in a Pilot test at the size where it happened (these failed before their fixes)."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from engine.registry import get_config_class
from engine.rundir import RunDir
from engine.schema import validate
from studio.app import GenStudioApp
from studio.messages import RunSnapshot
from studio.widgets.view import ArtifactUpdate
from test_studio import wait_for


def gpt_loss(step: int) -> float:
    return 1.1 + 3.0 * math.exp(-step / 200)


def gpt_run(path: Path) -> RunDir:
    """A GPT run of 1,200 steps, its config only: the test writes its events."""
    path.mkdir(parents=True)
    rd = RunDir(path)
    rd.write_config("gpt", asdict(validate(get_config_class("gpt"), {"steps": 1200})), device="cpu",
                    lesson="gpt-from-scratch")
    rd.emit("state", 0, {"state": "starting"})
    rd.emit("state", 0, {"state": "running", "device": "cpu"})
    return rd


def train_live(rd: RunDir) -> threading.Thread:
    """Its metrics arriving as a training writes them: a step's loss at a time, in ten
    batches a second, with a validation loss every 100 steps, then the end."""
    def write() -> None:
        for step in range(1, 1201):
            rd.emit("metric", step, {"train/loss": gpt_loss(step)})
            if step % 100 == 0:
                rd.emit("metric", step, {"val/loss": gpt_loss(step) + 0.1})
            rd.emit("status", step, {"steps_per_s": 400.0, "elapsed": step / 400, "total_steps": 1200})
            if step % 40 == 0:
                time.sleep(0.1)
        rd.emit("state", 1200, {"state": "finished"})

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def snapshot(state: str, step: int = 0, series: dict | None = None, **status) -> RunSnapshot:
    return RunSnapshot(run_dir="", state=state, device="cpu (2 threads)", step=step, total_steps=2500,
                       status=status, series=series or {}, samples={}, captions={}, errors=[], logs=[],
                       last_log_time=0.0, params={}, has_checkpoint=False, version=step + 1)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_1_the_gpt_loss_chart_shows_the_whole_run_and_its_last_value(tmp_path, size):
    """A finished 1,200-step run: the x axis ended at 300 and the curve near 1.76 while the
    legend said 1.193 (the chart was three times the width of its tab, cut at the edge)."""
    from textual_plotext import PlotextPlot

    from studio.widgets.curves import LossCurves

    rd = gpt_run(tmp_path / "gpt")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        writer = train_live(rd)
        await wait_for(pilot, lambda: screen.snapshot is not None and screen.snapshot.state == "finished",
                       what="the run to finish")
        writer.join()
        curves = screen.query_one(LossCurves)
        last = f"{gpt_loss(1200):.4g}"
        legend = lambda: str(curves.query_one("#legend-0").render())  # noqa: E731
        await wait_for(pilot, lambda: last in legend(), timeout=10, what="the last value in the legend")
        await pilot.pause(0.3)
        assert "train/loss" in legend() and "val/loss" in legend()
        plot = curves.query_one("#curve-0", PlotextPlot)
        dashboard = screen.query_one("#dashboard").region
        assert plot.region.width > 20 and dashboard.contains_region(plot.region)  # all of it on screen
        axis = str(plot.render()).splitlines()[-1]  # the x axis's numbers
        assert axis.split()[0] == "0" and axis.split()[-1] == "1200"


async def test_2_a_grid_cut_to_fit_says_how_many_tiles_it_shows(tmp_path):
    """The caption said 'samples' above 8 of 64 digits at 80x24."""
    from test_studio import _fixture_run

    from studio.widgets.image_view import ImageView, cropped_caption

    assert cropped_caption("64 samples", 8, 64) == "8 of 64 samples · f: full screen"
    assert cropped_caption("faces", 2, 32) == "showing 2 of 32 · faces · f: full screen"
    assert cropped_caption("64 samples", 64, 64) == "64 samples"
    rd = _fixture_run(tmp_path, "finished")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.snapshot is not None, what="snapshot")
        await pilot.press("2")
        await pilot.pause(0.5)
        view = screen.query_one("#samples", ImageView)
        await wait_for(pilot, lambda: view.image is not None, timeout=10, what="the samples")
        caption = lambda: str(view.query_one(".image-view--caption").render())  # noqa: E731
        await wait_for(pilot, lambda: "of 64" in caption(), timeout=10, what="an honest caption")
        shown = int(re.search(r"showing (\d+) of 64", caption()).group(1))
        assert 1 <= shown < 64 and "f: full screen" in caption() and "samples" in caption()


async def test_3_the_vae_train_tab_scrolls_at_once_and_kl_has_its_own_axis(tmp_path):
    """At 80x24 two of three charts were below the fold, PgDn did nothing until Tab was
    pressed twice, and KL (12) shared a 0-570 axis with reconstruction."""
    from test_studio import _fixture_run

    from studio.widgets.curves import LossCurves, group_series

    rd = _fixture_run(tmp_path, "finished")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.snapshot is not None, what="snapshot")
        curves = screen.query_one(LossCurves)
        await wait_for(pilot, lambda: "train/loss" in str(curves.query_one("#legend-0").render()), timeout=10,
                       what="the curves")
        hint = lambda: str(curves.query_one("#curves-more").render())  # noqa: E731
        await wait_for(pilot, lambda: re.search(r"↓ \d more charts? below: PgDn", hint()), timeout=20,
                       what="the hint")
        assert curves.scroller.scroll_y == 0
        await pilot.press("pagedown")  # no Tab first
        await pilot.pause(0.3)
        assert curves.scroller.scroll_y > 0
        assert "above" in hint()
        panels = dict((tuple(names), title) for title, names in group_series(list(screen.snapshot.series),
                                                                              screen.snapshot.series))
        kl = next(names for names in panels if "train/kl" in names)
        assert all(n.endswith("/kl") for n in kl)  # an axis of its own, not the reconstruction's
        assert any("train/recon" in names and "train/kl" not in names for names in panels)


async def test_4_quality_scores_are_labelled_and_explained_and_axes_tell_the_truth(tmp_path):
    """At 120x40 the sample-quality chart had three unlabelled lines and 'confident' was never
    explained; a loss axis went below zero; a validation curve of a few points was one
    straight diagonal."""
    from test_studio import _fixture_run

    from studio.widgets.curves import SPARSE, LossCurves, y_limits

    rd = _fixture_run(tmp_path, "finished")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.snapshot is not None, what="snapshot")
        curves = screen.query_one(LossCurves)
        series = {**screen.snapshot.series, "quality/confident": ([50, 100, 150], [0.2, 0.5, 0.7])}
        curves.show(series)
        await pilot.pause(0.3)
        legends = [str(s.render()).replace("\xa0", " ") for s in curves.query(".curve-legend") if s.display]
        quality = next(text for text in legends if "recognisability" in text)
        for name in ("recognisability 0.95", "coverage 1", "confident 0.7"):
            assert name in quality
        helps = "\n".join(str(s.render()) for s in curves.query(".curve-help") if s.display)
        assert "confident: share of samples the classifier is 90%+ sure of" in helps
        assert "recognisability:" in helps and "coverage:" in helps
        loss = next(text for text in legends if "val/loss" in text)
        assert len(screen.snapshot.series["val/loss"][0]) < SPARSE and "● val/loss" in loss  # drawn as points
    assert y_limits([[5.0, 0.3, 0.05, 0.04, 0.03, 0.02]])[0] == 0.0  # a loss never drawn below 0
    assert y_limits([[-1.0, -0.5, 0.2, 0.1]])[0] < 0  # a series that is negative keeps its range


async def test_5_the_sample_keeps_the_shown_token_in_view_and_attention_says_which_tokens(tmp_path):
    """At 80x24 a 200-token continuation showed 2 lines and ←/→ moved to a position off
    screen; the Attention tab silently showed the last 48 tokens."""
    from textual.containers import VerticalScroll

    from studio.widgets.attention import AttentionView
    from studio.widgets.sampler import SamplerPanel

    tokens = [f"w{i} " for i in range(200)]
    generation = {"prompt": "Once ", "tokens": tokens, "chosen_p": [0.5] * 200, "request": 0, "done": True,
                  "candidates": [[[t, 0.5, 0.6]] + [[f"c{k} ", 0.05, 0.05] for k in range(7)] for t in tokens],
                  "seconds": 1.0, "settings": {"temperature": 1.0, "top_k": 0, "top_p": 1.0}}
    (tmp_path / "generation.json").write_text(json.dumps(generation))
    attention = {"attention": {"title": "self-attention", "rows": tokens, "cols": tokens,
                               "maps": [[[[1.0 / (i + 1) if j <= i else 0.0 for j in range(200)]
                                          for i in range(200)]]]}}
    (tmp_path / "attention.json").write_text(json.dumps(attention))
    app = GenStudioApp(graphics="halfblock", lesson="gpt-from-scratch")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("2")
        await pilot.pause()
        panel = screen.query_one(SamplerPanel)
        panel.load(ArtifactUpdate("generation", str(tmp_path / "generation.json"), "", 10))
        await wait_for(pilot, lambda: panel.shown == 200, timeout=20, what="the whole continuation")
        out = panel.query_one("#sampler-out", VerticalScroll)

        def cursor_on_screen() -> bool:
            """The highlighted token's line lies in the part of the text shown."""
            body = panel.query_one("#sampler-text")
            lines = body.visual.wrap(body.content_size.width)
            at = panel.shown - 1 if panel.cursor is None else panel.cursor
            row = next(i for i, line in enumerate(lines) if re.search(rf"\bw{at}\b", line.plain))
            return out.scroll_y <= row < out.scroll_y + out.scrollable_content_region.height

        await pilot.pause(0.3)
        assert out.scrollable_content_region.height >= 4  # more than 2 lines of the text
        assert cursor_on_screen()  # the newest token, at the end
        await pilot.press("escape", *["left"] * 100)
        await pilot.pause(0.3)
        assert panel.cursor == 99 and cursor_on_screen()
        assert "position 100 of 200" in str(panel.query_one("#sampler-bars").render())

        await pilot.press("3")
        await pilot.pause()
        view = screen.query_one(AttentionView)
        assert app.focused is view  # ←/→ work at once
        view.load(ArtifactUpdate("attention", str(tmp_path / "attention.json"), "", 10))
        await pilot.pause(0.3)
        help_text = lambda: str(view.query_one("#attn-help").render())  # noqa: E731
        first = int(re.search(r"Tokens (\d+)-200 of 200", help_text()).group(1))
        assert first > 1 and "←/→" in help_text()
        await pilot.press("left")
        await pilot.pause(0.3)
        moved = int(re.search(r"Tokens (\d+)-\d+ of 200", help_text()).group(1))
        assert moved < first
        rows = re.findall(r"^ *(w\d+) ", str(view.query_one("#attn-map").render()), re.M)
        assert rows[0] == f"w{moved - 1}"  # the window's tokens down the side too
        await pilot.press("home")
        await pilot.pause(0.3)
        assert "Tokens 1-" in help_text()


async def test_6_the_status_line_keeps_state_step_and_eta_at_80_columns_and_nothing_says_press_s_while_starting():
    """At 80x24 the ETA was never visible; a run starting said 'no data yet (press s ...)'."""
    from studio.widgets.curves import LossCurves
    from studio.widgets.image_view import ImageView
    from studio.widgets.status_line import StatusLine

    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.remove_class("show-lesson")
        await pilot.pause()
        line = screen.query_one(StatusLine)
        line.update_from(snapshot("running", 1200, epoch=3.25, steps_per_s=12.5, samples_per_s=400.0,
                                  elapsed=96.0, ram_bytes=812_000_000))
        await pilot.pause()
        shown = str(line.render())
        assert "running" in shown and "step 1,200/2,500" in shown and "ETA 1:44" in shown
        assert len(shown) <= line.content_size.width

        for view in [screen.query_one(LossCurves), screen.query_one("#train-samples", ImageView)]:
            view.follow(snapshot("starting"))
        await pilot.pause(2.5)
        legend = str(screen.query_one(LossCurves).query_one("#legend-0").render())
        assert "waiting for the first" in legend and "press s" not in legend
        assert "press s" not in screen.query_one("#train-samples", ImageView).placeholder


async def test_7_the_runs_screen_never_cuts_a_run_name_at_80_columns(tmp_path):
    """The names are what attach and stop take: at 80 columns every one shows whole and
    the columns that do not fit are left out (no scrolling sideways to read a row)."""
    from conftest import TINY

    from engine.runs import create_run
    from studio.screens.runs import RunsScreen

    runs = [create_run("vae", dict(TINY), lesson="vae-digits") for _ in range(2)]
    app = GenStudioApp(graphics="halfblock")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one("#runs-table")
        assert table.row_count == 2
        names = {str(table.get_row_at(i)[0]) for i in range(2)}
        assert names == {rd.name for rd in runs}
        assert table.virtual_size.width <= table.scrollable_content_region.width  # nothing off to the side
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[0] == "run" and "state" in labels and "created" not in labels


def test_11_tab_labels_shorten_to_fit_and_keep_their_numbers():
    from studio.widgets.tabs import fit_labels

    labels = ["1 Train", "2 Forward", "3 Timeline", "4 Samplers", "5 Settings", "6 Code", "7 Quiz", "8 Model"]
    assert fit_labels(labels, 200) == labels
    for width in (71, 60, 40):
        shown = fit_labels(labels, width, active=3)
        assert shown[3] == "4 Samplers"  # the shown tab keeps its whole name
        assert [s.split(" ")[0] for s in shown] == [str(n) for n in range(1, 9)]  # every key stays
        assert sum(len(s) + 2 for s in shown) <= width or all(" " not in s for i, s in enumerate(shown) if i != 3)
    assert fit_labels(labels, 71)[1] == "2 Forw…"


async def test_11_at_120_columns_every_tab_of_the_diffusion_lesson_is_in_sight():
    """At 120x40 the diffusion lesson's tab bar ended in "7 Qui": the Model tab was out of
    sight and nothing said so."""
    from textual.widgets import Tabs

    app = GenStudioApp(graphics="halfblock", lesson="diffusion-digits")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        tabs = app.screen.query_one("#tabs Tabs", Tabs)
        labels = [str(t.label) for t in tabs.query("Tab")]
        assert len(labels) == 8 and labels[-1].startswith("8 ")
        assert sum(t.outer_size.width for t in tabs.query("Tab")) <= tabs.size.width
        await pilot.press("4")
        await pilot.pause()
        assert "4 Samplers" in [str(t.label) for t in tabs.query("Tab")]


@pytest.mark.parametrize("state", ["new", "running", "stopped"])
async def test_the_footer_fits_its_line_at_80_columns_with_the_way_back_first(state):
    """A walkthrough at 80x24 never saw "esc Catalog" or "^q Quit": the footer listed every
    key, the disabled ones greyed, and was cut off after "f"."""
    from textual.widgets import Footer

    from studio.screens.lesson import SECONDARY_KEYS

    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        snap = snapshot(state, step=10)
        snap.samples = {screen.export_artifact: "samples.png"}  # e and f available: the longest footer
        snap.has_checkpoint = True
        screen._zoom_items = lambda: ["a tile"]
        screen.snapshot = snap
        screen.refresh_bindings()
        await pilot.pause(0.3)
        footer = screen.query_one(Footer)
        keys = [child for child in footer.children if getattr(child, "key", None)]
        listed = [k.key for k in keys]
        assert listed[0] == "escape" and "ctrl+q" in listed, listed
        assert not set(SECONDARY_KEYS) & set(listed)
        assert footer.virtual_size.width <= 80, (listed, footer.virtual_size)
        assert ("p" in listed) == (state == "running") and ("s" in listed) == (state != "running")
        await pilot.press("t")  # left out of the footer, and still bound
        await pilot.pause()
        assert type(app.screen).__name__ == "TermScreen" or "Term" in type(app.screen).__name__
