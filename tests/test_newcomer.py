"""What a newcomer hit at 80x24 and 120x40, keyboard only: each reproduced in a Pilot test at
the size where it happened (these failed before their fixes)."""

from __future__ import annotations

import pytest

from conftest import TINY, wait_for
from engine.rundir import JsonlTail
from studio.app import GenStudioApp



async def test_start_then_escape_at_once_keeps_the_new_run_training():
    """`s` then `Esc` within a second left the new run "stopped 0/2,500"."""
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.params.update({**TINY, "steps": 1_000_000})
        await pilot.press("s")
        run = screen.bridge.run
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
        await pilot.pause(1.0)
        sent = [c["cmd"] for c in JsonlTail(run.commands_path).read_objects()]
        assert "stop" not in sent  # leaving a lesson keeps training going, even one still starting
        assert screen.bridge.engine_alive()  # its process, still starting or already training
        run.send("stop")


async def test_s_from_the_lesson_text_gives_the_keys_to_the_dashboard():
    """At 80x24, s from the lesson text showed the Train tab with "↓ 3 more charts below:
    PgDn", but PgDn did nothing: the keys stayed with the hidden lesson text."""
    from studio.widgets.curves import LossCurves

    app = GenStudioApp(graphics="halfblock", lesson="ebm-langevin")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert screen.has_class("show-lesson") and app.focused is screen.query_one("#lesson-pane")
        screen.params.update({"steps": 1_000_000})
        await pilot.press("s")
        await pilot.pause()
        assert not screen.has_class("show-lesson")
        assert app.focused is screen.query_one(LossCurves).scroller  # PgDn scrolls the charts
        screen.bridge.run.send("stop")


async def test_f_shows_every_sample_full_screen_a_page_at_a_time(tmp_path):
    """Images too small to judge at 80x24: f shows the tab's grid full screen, tiles at a
    readable size, and PgDn reaches every one of the 64."""
    from test_studio import _fixture_run

    from studio.screens.zoom import ZoomScreen

    rd = _fixture_run(tmp_path, "finished")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.snapshot is not None, what="snapshot")
        await pilot.press("2", "f")
        await pilot.pause()
        zoom = app.screen
        assert isinstance(zoom, ZoomScreen)
        title = lambda: str(zoom.query_one("#zoom-title").render())  # noqa: E731
        assert "tiles 1-" in title() and "of 64" in title()
        shown = zoom.per_page
        assert 1 <= shown < 64
        seen = shown
        while seen < 64:
            await pilot.press("pagedown")
            await pilot.pause()
            seen += zoom.per_page
        assert "of 64" in title() and "-64 of 64" in title()
        await pilot.press("minus")
        await pilot.pause()
        assert zoom.per_page > shown  # smaller tiles, more of them
        await pilot.press("right")
        await pilot.pause()
        assert "recon" in title()  # the next image of the lesson
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


async def test_code_links_are_reachable_by_keyboard():
    from studio.screens.code_links import CodeLinks
    from studio.widgets.code_view import CodeView

    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert "press k" in str(screen.query_one("#lesson-hint").render())
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, CodeLinks)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is screen and screen.query_one("#tabs").active == "tab-code"
        assert screen.query_one(CodeView).current == screen.links[1][1].removeprefix("code:").split("#")[0]


async def test_escape_in_a_settings_box_leaves_the_box_first():
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("4")  # Settings
        await pilot.pause()
        screen.query_one("#hp-lr").focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and app.focused is None  # still in the lesson, the box left
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen  # the second Esc goes back to the catalog


async def test_the_breadcrumb_fits_80_columns():
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.screen.query_one("#title-bar").render()
        assert "handwritten digits" in str(text) and "Variational autoencoders  ›" not in str(text)


# -- what a first walk through the lessons at 80x24 found --
async def test_the_lesson_text_takes_the_keys_so_pgdn_reads_on_at_once():
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one("#lesson-pane")
        assert app.focused is pane
        await pilot.press("pagedown")
        await pilot.pause()
        assert pane.scroll_y > 0


async def test_a_code_link_opens_at_its_definition_the_first_time():
    from textual.containers import ScrollableContainer

    from studio.widgets.code_view import CodeView

    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen._open_code("code:engine/recipes/vae.py#VAERecipe.train_step")  # the Code tab never shown before
        await pilot.pause()
        await pilot.pause()
        assert app.screen.query_one(CodeView).query_one(ScrollableContainer).scroll_y > 10


def test_code_link_labels_keep_the_underscores_of_names():
    from studio.screens.code_links import code_links

    body = "[sample_classes](code:engine/data/classes2d.py#sample_classes) and [`train_step`](code:x.py#f)"
    assert [label for label, _ in code_links(body)] == ["sample_classes", "train_step"]


async def test_escape_on_a_drop_down_leaves_it_before_the_lesson():
    from textual.widgets import Select

    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("4")  # Settings
        await pilot.pause()
        select = screen.query(Select).first()
        select.focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and not select.has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen


@pytest.mark.parametrize("lesson, panel, box", [
    ("music-transformer", "#continue-roll", "#roll-temperature"),
    ("gpt-from-scratch", "SamplerPanel", "#set-temperature"),
    ("masked-lm", "FillPanel", "Input"),
    ("lstm-text", "HiddenStateView", "Input"),
])
async def test_escape_on_a_panel_goes_back_after_leaving_its_box(lesson, panel, box):
    """Esc on the music Transformer's focused piano roll did nothing: the learner was stuck
    on the Continue tab until they pressed 1 (a walkthrough at 80x24)."""
    app = GenStudioApp(graphics="halfblock", lesson=lesson)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        view = screen.query_one(panel)
        tab = next(a for a in view.ancestors if type(a).__name__ == "TabPane")
        await pilot.press(str([p.id for p in screen.query("TabPane")].index(tab.id) + 1))  # its tab
        await pilot.pause()
        field = view.query(box).first()
        field.focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and app.focused is view  # first the box is left for its panel
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen  # then Esc goes back, as everywhere


async def test_a_live_setting_after_training_has_ended_says_why_it_starts_a_new_run():
    """A walkthrough set noise = 0 on a finished EBM run, as its Things to try suggest, and a
    new 2,000-step run began with no word of why."""
    from test_newcomer_views import snapshot

    from studio.widgets.hyperparams import HyperparamForm

    app = GenStudioApp(graphics="halfblock", lesson="ebm-langevin")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        started = []
        screen._new_run = started.append
        screen.snapshot = snapshot("finished", step=2000)
        values = {**screen.params, "noise": 0.0}
        screen.post_message(HyperparamForm.Submitted(values, {"noise": 0.0}, True))
        await pilot.pause()
        assert started and started[0]["noise"] == 0.0
        messages = [n.message for n in app._notifications]
        assert any("Training had ended, so live settings start a new run" in m for m in messages), messages


async def test_a_tab_of_pickers_gives_the_first_picker_the_keys():
    """On StyleGAN's Noise tab a walkthrough pressed Tab, Enter, ↓, Enter to change the
    picker and reached the tab bar instead: nothing on the tab had the keys."""
    from textual.widgets import Select

    app = GenStudioApp(graphics="halfblock", lesson="stylegan-faces")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("3")  # Noise: its pickers, then the grid
        await pilot.pause()
        picker = screen.query_one("#tab-noise Select", Select)
        assert app.focused is picker
        before = picker.value
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert picker.value != before


async def test_the_button_enter_would_press_stands_out():
    """In Settings a walkthrough pressed Enter on what looked like Apply (drawn solid blue)
    while the keys were on Defaults, and lost the value it had typed."""
    from textual.widgets import Button

    app = GenStudioApp(graphics="halfblock", lesson="world-model-dodge")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        apply, defaults = screen.query_one("#form-apply", Button), screen.query_one("#form-defaults", Button)
        await pilot.press(str([p.id for p in screen.query("TabPane")].index("tab-settings") + 1))
        defaults.focus()
        await pilot.pause()
        from textual.color import Color

        accent = Color.parse(app.current_theme.accent)

        def near(colour: Color) -> bool:
            return sum(abs(a - b) for a, b in zip(colour.rgb, accent.rgb)) < 8

        assert near(defaults.styles.background) and not near(apply.styles.background)
