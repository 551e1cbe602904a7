"""The studio, driven by a Pilot: catalog, lesson, a real engine process training, pause and
resume, form validation, quiz progress, code links, failure banners, and snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import TINY, make_run, settle, wait_for
from engine.rundir import RunDir, read_history
from studio.app import GenStudioApp
from studio.messages import RunSnapshot
from studio.progress import load_progress
from studio.screens.catalog import CatalogScreen
from studio.screens.lesson import LessonScreen
from studio.widgets.code_view import CodeView
from studio.widgets.curves import LossCurves
from studio.widgets.image_view import ImageView



def lesson_screen(app) -> LessonScreen:
    assert isinstance(app.screen, LessonScreen), type(app.screen)
    return app.screen


async def fill_form(pilot, screen: LessonScreen, values: dict) -> None:
    screen.query_one("#tabs").active = "tab-settings"
    await pilot.pause()
    for key, value in values.items():
        screen.query_one(f"#hp-{key}").value = str(value)
    await pilot.pause()


async def test_catalog_lists_the_lesson_and_opens_it():
    app = GenStudioApp(graphics="halfblock")
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, CatalogScreen)
        ol = app.screen.query_one("#lesson-list")
        ids = [ol.get_option_at_index(i).id for i in range(ol.option_count)]
        titles = {l.id: l.title for l in app.screen.lessons}
        assert titles["vae-digits"] == "Variational autoencoder: handwritten digits" and "vae-digits" in ids
        assert titles["gan-shape"] == "A GAN learns a shape" and "gan-shape" in ids
        assert ol.get_option_at_index(ol.highlighted).id == "start-here"  # a newcomer starts at the start
        while ol.get_option_at_index(ol.highlighted).id != "vae-digits":
            await pilot.press("down")
        assert ids.index("vae-digits") == ol.highlighted
        await pilot.press("enter")
        await pilot.pause()
        screen = lesson_screen(app)
        assert screen.lesson.id == "vae-digits"
        assert "reparameter" in screen.query_one("#lesson-text").source.lower()
    assert load_progress()["lessons"]["vae-digits"]["opened"] is True


async def test_train_live_from_the_studio_pause_resume_stop(tmp_path, monkeypatch):
    """Starts a real engine process from the form, sees metrics and samples arrive."""
    monkeypatch.chdir(tmp_path)
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    snapshots: list[RunSnapshot] = []

    def hook(message):
        if isinstance(message, RunSnapshot):
            snapshots.append(message)

    async with app.run_test(size=(160, 48), message_hook=hook) as pilot:
        screen = lesson_screen(app)
        await fill_form(pilot, screen, {**TINY, "steps": 1_000_000})
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await wait_for(pilot, lambda: screen.snapshot is not None and screen.snapshot.state == "running", what="running")
        await wait_for(pilot, lambda: "train/loss" in screen.snapshot.series and "samples" in screen.snapshot.samples,
                       timeout=300, what="metrics and samples")  # a cold cache first fits the digit judge
        screen.query_one("#tabs").active = "tab-train"
        await pilot.pause()
        assert screen.query_one("#train-samples", ImageView).path == screen.snapshot.samples["samples"]
        assert screen.query_one(LossCurves)._version > 0
        status = str(screen.query_one("#status").render())
        assert "running" in status and "steps/s" in status and "cpu" in status

        # The learning rate applies live: the engine confirms it with a param event.
        await fill_form(pilot, screen, {"lr": "0.0007"})
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await wait_for(pilot, lambda: screen.snapshot.params.get("lr") == 0.0007, what="live lr")
        assert screen.snapshot.state == "running"  # no restart for a live change

        await pilot.press("e")  # export the sample grid into the current folder
        await pilot.pause()
        exported = list(Path.cwd().glob(f"genstudio-{Path(screen.snapshot.run_dir).name}-*.png"))
        assert exported and Image.open(exported[0]).size[0] > 100

        await pilot.press("p")
        await wait_for(pilot, lambda: screen.snapshot.state == "paused", what="paused")
        paused_at = screen.snapshot.step
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.snapshot.step == paused_at + 1, what="single step")
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.snapshot.state == "running" and screen.snapshot.step > paused_at + 3,
                       what="resumed")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")
        assert screen.snapshot.has_checkpoint
        assert app.screen.check_action("continue_run", ()) is True
    assert snapshots and all(isinstance(s.step, int) for s in snapshots)
    rd = RunDir(snapshots[-1].run_dir)
    assert read_history(rd).params == {"lr": 0.0007}


async def test_form_refuses_bad_values_with_a_message():
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        await fill_form(pilot, screen, {"lr": "fast", "batch_size": "0"})
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await pilot.pause()
        error = str(screen.query_one("#form-error").render())
        assert "lr must be a number" in error and "batch_size = 0 is out of range" in error
        assert screen.bridge.run is None  # nothing started


async def test_quiz_feedback_and_progress():
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        screen.query_one("#tabs").active = "tab-quiz"
        await pilot.pause()
        questions = screen.lesson.quiz
        from studio.widgets.quiz import QuizPanel

        quiz = screen.query_one(QuizPanel)  # the choices are shuffled: find each by its index in the lesson
        for i, q in enumerate(questions):
            wrong = (q.answer + 1) % len(q.choices) if i == 0 else q.answer
            quiz.button_for(i, wrong).value = True
        await pilot.pause()
        screen.query_one("#quiz-check").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#quiz-check")
        await pilot.pause()
        assert "✗" in str(screen.query_one("#fb0").render())
        assert "✓" in str(screen.query_one("#fb1").render())
        entry = load_progress()["lessons"]["vae-digits"]
        assert entry["quiz_best"] == len(questions) - 1 and not entry["quiz_passed"]
        quiz.button_for(0, questions[0].answer).value = True
        await pilot.pause()
        screen.query_one("#quiz-check").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#quiz-check")
        await pilot.pause()
        assert load_progress()["lessons"]["vae-digits"]["quiz_passed"] is True


async def test_the_quiz_tab_puts_the_keys_on_the_first_open_question():
    """At 80x24, 6 opened the Quiz with nothing focused: ↑/↓ scrolled the page, and every
    question showed its first answer highlighted, so none looked like the one in use. The
    tab now focuses the first question not yet answered."""
    from textual.widgets import RadioSet

    from studio.widgets.quiz import QuizPanel

    app = GenStudioApp(graphics="halfblock", lesson="music-transformer")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = lesson_screen(app)
        await pilot.press("l", "6")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-quiz"
        assert isinstance(app.focused, RadioSet) and app.focused.id == "q0"
        await pilot.press("down", "enter")
        assert screen.query_one("#q0", RadioSet).pressed_index >= 0
        await pilot.press("1", "6")  # away and back: the next question waiting for an answer
        await pilot.pause()
        assert app.focused is screen.query_one("#q1", RadioSet)
        assert screen.query_one(QuizPanel).first_open() == 1


async def test_the_question_being_answered_is_marked_and_shown_with_its_text():
    """A walkthrough at 80x24 could not tell which question it was on (only a thin frame),
    and Tab brought a question's answers into view with the question itself cut off."""
    from textual.widgets import RadioSet

    from studio.widgets.quiz import QuizPanel

    app = GenStudioApp(graphics="halfblock", lesson="pixelcnn-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = lesson_screen(app)
        await pilot.press("l", str(len(screen.tabs) + 3))  # the Quiz tab
        await pilot.pause()
        panel = screen.query_one(QuizPanel)
        labels = list(panel.query(".question"))
        assert str(labels[0].render()).startswith("▶ 1.")
        for i in range(1, len(labels)):
            await pilot.press("tab")
            await pilot.pause()
            assert app.focused is screen.query_one(f"#q{i}", RadioSet)
            marked = [str(label.render()).startswith("▶") for label in labels]
            assert marked == [j == i for j in range(len(labels))]
            assert panel.region.contains_region(labels[i].region), i  # the question, not only its answers


async def test_code_links_jump_to_the_definition():
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        from textual.widgets import Markdown

        md = screen.query_one("#lesson-text", Markdown)
        md.post_message(Markdown.LinkClicked(md, "code:engine/models/vae.py#VAE.reparameterize"))
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-code"
        caption = str(screen.query_one("#code-caption").render())
        assert "engine/models/vae.py" in caption and "VAE.reparameterize" in caption
        assert screen.query_one(CodeView).current == "engine/models/vae.py"


def test_every_code_link_in_the_lessons_resolves():
    from studio.lessons import CODE_LINK, REPO_ROOT, find_symbol, load_lessons
    import re

    for lesson in load_lessons():
        links = re.findall(r"\]\((code:[^)]+)\)", lesson.body)
        assert links, lesson.id
        for link in links:
            m = CODE_LINK.match(link)
            assert m, link
            source = (REPO_ROOT / m["path"]).read_text()
            assert find_symbol(source, m["symbol"]) is not None, link
        for path in lesson.code:
            assert (REPO_ROOT / path).exists(), path


def _fixture_run(tmp_path: Path, state: str, error: dict | None = None) -> RunDir:
    """A deterministic finished/failed/interrupted run with metrics and sample images."""
    rd = make_run(tmp_path / f"fixture-{state}", steps=400 if state != "interrupted" else 1000)
    rd.emit("state", 0, {"state": "starting"})
    rd.emit("state", 0, {"state": "running", "device": "cpu (2 threads)"})
    rng = np.random.default_rng(0)
    for step in range(10, 401, 10):
        loss = 200 * np.exp(-step / 120) + 110
        rd.emit("metric", step, {"train/loss": loss, "train/recon": loss - 12, "train/kl": 12.0})
        if step % 50 == 0:
            rd.emit("metric", step, {"val/loss": loss + 3, "val/recon": loss - 9, "val/kl": 12.0,
                                     "quality/recognisability": min(0.95, step / 400), "quality/coverage": 1.0})
        rd.emit("status", step, {"epoch": step * 32 / 512, "steps_per_s": 50.0, "samples_per_s": 1600.0,
                                 "elapsed": step / 50, "total_steps": 400})
    grid = (rng.random((8 * 30 + 2, 8 * 30 + 2)) * 255).astype(np.uint8)
    rd.samples_dir.mkdir(exist_ok=True)
    for name in ("samples", "recon", "latent_walk"):
        Image.fromarray(grid).save(rd.samples_dir / f"{name}-00000400.png")
        rd.emit("sample", 400, {"name": name, "kind": "image", "path": f"samples/{name}-00000400.png", "caption": name})
    pts = rng.normal(size=(100, 2))
    (rd.samples_dir / "latent_map-00000400.json").write_text(
        __import__("json").dumps({"x": pts[:, 0].tolist(), "y": pts[:, 1].tolist(),
                                  "label": [i % 10 for i in range(100)], "projection": "z[0] against z[1]"}))
    rd.emit("sample", 400, {"name": "latent_map", "kind": "points", "path": "samples/latent_map-00000400.json"})
    if error:
        rd.emit("error", 400, error)
    if state != "interrupted":
        rd.emit("state", 400, {"state": state})
    return rd


async def test_a_failed_run_explains_itself(tmp_path):
    rd = _fixture_run(tmp_path, "failed", {"kind": "nan", "message": "train/loss became nan at step 400",
                                            "hint": "lower the learning rate (lr)"})
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        await wait_for(pilot, lambda: screen.snapshot is not None, what="snapshot")
        banner = str(screen.query_one("#banner").render())
        assert "became nan" in banner and "lower the learning rate" in banner


async def test_a_killed_engine_is_reported(tmp_path):
    rd = _fixture_run(tmp_path, "interrupted")
    (rd.checkpoint_path.parent).mkdir(parents=True)
    rd.checkpoint_path.write_bytes(b"x")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        await wait_for(pilot, lambda: screen.snapshot is not None, what="snapshot")
        assert screen.snapshot.state == "interrupted"
        banner = str(screen.query_one("#banner").render())
        assert "ended unexpectedly" in banner and "press u to continue" in banner
        assert screen.check_action("continue_run", ()) is True


async def test_reopening_a_lesson_shows_its_last_finished_run(tmp_path):
    """A lesson trained to the end and opened again shows that run (charts filled, the status
    line saying it finished), not an empty "press s"; no engine starts until s."""
    from engine.rundir import index_run
    from studio.widgets.status_line import StatusLine

    rd = _fixture_run(tmp_path, "finished")
    index_run(rd.path)  # where `genstudio train` and the studio put it: in the runs list
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = lesson_screen(app)
        await wait_for(pilot, lambda: screen.snapshot is not None, what="the last run's snapshot")
        assert screen.bridge.run.path == rd.path and screen.snapshot.state == "finished"
        assert "train/loss" in screen.snapshot.series and "samples" in screen.snapshot.samples
        assert "● finished" in screen.query_one(StatusLine)._text.plain
        assert not screen.bridge.engine_alive() and screen.check_action("start", ()) is True


async def test_reopening_a_lesson_whose_last_run_failed_starts_empty(tmp_path):
    """Only a finished, stopped or training run comes back on its own; a failed one is in Runs."""
    from engine.rundir import index_run

    index_run(_fixture_run(tmp_path, "failed", {"kind": "nan", "message": "nan", "hint": "lower lr"}).path)
    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = lesson_screen(app)
        assert screen.bridge.run is None
        assert "no run" in str(screen.query_one("#status").render())


async def test_runs_screen_lists_runs_and_continues_a_stopped_one(tmp_path):
    from engine.runner import Runner
    from engine.runs import create_run
    from studio.screens.runs import RunsScreen

    rd = create_run("vae", [f"{k}={v}" for k, v in TINY.items() if k != "steps"], 1_000_000, "cpu", None,
                    lesson="vae-digits")
    rd.send("stop")  # stop at once: a stopped run with a checkpoint at step 0
    assert Runner(rd.path).run() == 0
    app = GenStudioApp(graphics="halfblock")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one("#runs-table")
        assert table.row_count == 1
        assert "stopped" in str(table.get_row_at(0)[2])
        await pilot.press("u")
        await pilot.pause()
        screen = lesson_screen(app)
        await wait_for(pilot, lambda: screen.snapshot is not None and screen.snapshot.state == "running"
                       and screen.snapshot.step > 0, what="continued run")
        assert screen.bridge.run.path == rd.path
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


async def test_too_small_terminal_says_so():
    app = GenStudioApp(graphics="halfblock")
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert "needs at least 80x24" in str(app.screen.query_one("#too-small").render())


# -- snapshots of the main screens (deterministic fixtures) --

def test_snapshot_catalog(snap_compare):
    assert snap_compare(GenStudioApp(graphics="halfblock"), terminal_size=(100, 30), run_before=settle)


def test_snapshot_lesson_with_a_finished_run(snap_compare, tmp_path):
    rd = _fixture_run(tmp_path, "finished")

    async def finished(pilot):
        screen = pilot.app.screen
        await wait_for(pilot, lambda: getattr(screen.snapshot, "state", None) == "finished", what="snapshot")
        await settle(pilot)

    assert snap_compare(GenStudioApp(graphics="halfblock", attach=str(rd.path)), terminal_size=(140, 40),
                        run_before=finished)


def test_snapshot_lesson_narrow(snap_compare):
    assert snap_compare(GenStudioApp(graphics="halfblock", lesson="vae-digits"), terminal_size=(80, 24),
                        run_before=settle)


async def test_command_palette_offers_only_what_can_run_now():
    from studio.commands import ScreenActions

    app = GenStudioApp(graphics="halfblock", lesson="vae-digits")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = lesson_screen(app)
        titles = [t for t, _, _ in ScreenActions(screen)._commands()]
        assert "Start" in titles and "Lesson" in titles
        assert "Pause/resume" not in titles and "Stop" not in titles  # nothing is running
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"lesson")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.has_class("hide-lesson")


async def test_the_gan_lesson_trains_live_and_shows_the_field():
    app = GenStudioApp(graphics="halfblock", lesson="gan-shape")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = lesson_screen(app)
        assert [p.id for p in screen.query("TabPane")][:2] == ["tab-train", "tab-field"]
        await fill_form(pilot, screen, {"hidden": 16, "steps": 1_000_000, "shape": "ring"})
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await wait_for(pilot, lambda: screen.snapshot is not None and "field" in screen.snapshot.samples
                       and "train/loss_d" in screen.snapshot.series, what="field and GAN losses")
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-field"
        assert screen.query_one("#field", ImageView).path == screen.snapshot.samples["field"]
        # Step modes apply live: train the discriminator alone.
        await fill_form(pilot, screen, {"step_mode": "discriminator"})
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await wait_for(pilot, lambda: screen.snapshot.params.get("step_mode") == "discriminator", what="live mode")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


async def test_the_attribute_picker_redraws_faces_with_the_chosen_attributes():
    app = GenStudioApp(graphics="halfblock", lesson="cgan-faces")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        assert [p.id for p in screen.query("TabPane")][:3] == ["tab-train", "tab-picker", "tab-explorer"]
        # Without a run, a choice is kept for the next one.
        screen.query_one("#ctl-pick_glasses").value = "yes"
        await wait_for(pilot, lambda: screen.query_one("#hp-pick_glasses").value == "yes", timeout=10,
                       what="the form to agree")
        assert screen.params["pick_glasses"] == "yes" and screen.bridge.run is None
        await fill_form(pilot, screen, {"width": 8, "noise_dim": 8, "batch_size": 16, "train_size": 256,
                                        "steps": 1_000_000})
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await wait_for(pilot, lambda: screen.snapshot is not None and "picked" in screen.snapshot.samples,
                       timeout=120, what="picked faces")
        assert "glasses yes" in screen.snapshot.captions["picked"]
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one("#tabs").active == "tab-picker"
        screen.query_one("#ctl-pick_hair").value = "black"
        await wait_for(pilot, lambda: "hair black" in screen.snapshot.captions.get("picked", ""),
                       what="faces redrawn with black hair")
        caption = screen.query_one("#picked", ImageView).caption
        assert "glasses yes, hair black" in caption and "classifier agrees" in caption
        # The explorer's direction works the same way.
        await pilot.press("3")
        screen.query_one("#ctl-explore").value = "hat"
        await wait_for(pilot, lambda: "hat direction" in screen.snapshot.captions.get("explore", ""),
                       what="explorer redrawn")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


async def test_a_run_saved_with_an_older_value_type_still_opens(tmp_path):
    """CycleGAN's size was the string "32" before it became an int choice: attaching to
    such a run shows 32, not a crash."""
    from engine.schema import validate
    from engine.configs.cyclegan import CycleGANConfig
    from dataclasses import asdict

    rd = RunDir(tmp_path / "old")
    (tmp_path / "old").mkdir()
    params = {**asdict(validate(CycleGANConfig, {})), "size": "32"}
    rd.write_config("cyclegan", params, device="cpu", lesson="cyclegan-hair")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = lesson_screen(app)
        assert screen.query_one("#hp-size").value == 32


async def test_the_sampling_panel_streams_a_continuation_and_the_attention_viewer_draws_it():
    from studio.widgets.attention import AttentionView
    from studio.widgets.sampler import SamplerPanel

    app = GenStudioApp(graphics="halfblock", lesson="gpt-from-scratch")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        await fill_form(pilot, screen, {"model": "custom", "layers": 1, "heads": 2, "width": 16, "context": 32,
                                        "batch_size": 8, "steps": 1_000_000, "max_new_tokens": 40})
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await wait_for(pilot, lambda: screen.snapshot is not None and "sample" in screen.snapshot.samples,
                       timeout=120, what="the first text sample")
        run = screen.bridge.run.path
        await pilot.press("2")
        await pilot.pause()
        panel = screen.query_one(SamplerPanel)
        assert app.focused is screen.query_one("#prompt")  # typing goes into the box at once
        screen.query_one("#set-temperature").value = "-1"
        await pilot.press("enter")
        await pilot.pause()
        assert "out of range" in str(screen.query_one("#sampler-status").render())
        screen.query_one("#set-temperature").value = "0.5"
        screen.query_one("#set-top_k").value = "3"
        screen.query_one("#prompt").focus()
        for key in ("T", "h", "e", "space", "s"):  # an s typed here must not start a new run
            await pilot.press(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: panel.data is not None and panel.data.get("done")
                       and panel.shown == len(panel.data["tokens"]), what="the whole continuation shown")
        assert screen.bridge.run.path == run
        assert panel.data["prompt"] == "The s" and len(panel.data["tokens"]) == 40
        assert panel.data["settings"] == {"temperature": 0.5, "top_k": 3, "top_p": 1.0, "max_new_tokens": 40}
        assert screen.params["temperature"] == 0.5  # the form follows the panel
        bars = str(screen.query_one("#sampler-bars").render())
        assert "position 40" in bars and "█" in bars
        await pilot.press("escape")
        await pilot.press("left", "left")
        assert "position 38" in str(screen.query_one("#sampler-bars").render())
        await pilot.press("3")
        view = screen.query_one(AttentionView)
        await wait_for(pilot, lambda: view.data is not None and view.data["rows"][-1] == panel.data["tokens"][-1],
                       what="attention over the generated text")
        mean_map = str(screen.query_one("#attn-map").render())
        assert "layer 1, mean of the heads" in str(screen.query_one("#attn-help").render())
        screen.query_one("#attn-head").value = 1
        await pilot.pause()
        assert "head 2" in str(screen.query_one("#attn-help").render())
        assert str(screen.query_one("#attn-map").render()) == mean_map  # same tokens, other colours
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


async def test_the_translate_panel_translates_what_is_typed_and_shows_the_alignment():
    from studio.widgets.attention import AttentionView
    from studio.widgets.translate import TranslatePanel

    app = GenStudioApp(graphics="halfblock", lesson="translator-en-fr")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        await fill_form(pilot, screen, {"width": 32, "layers": 1, "ff": 64, "batch_size": 32,
                                        "train_size": 400, "warmup": 10, "steps": 1_000_000})
        screen.query_one("#hp-heads").value = 2  # a menu: int choices
        screen.query_one("#form-apply").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#form-apply")
        await wait_for(pilot, lambda: screen.snapshot is not None and "examples" in screen.snapshot.samples,
                       timeout=120, what="held-out examples")
        await pilot.press("2")
        await pilot.pause()
        assert app.focused is screen.query_one("#source")
        screen.query_one("#beam").value = 2
        for key in "the red car":
            await pilot.press("space" if key == " " else key)
        await pilot.press("enter")
        panel = screen.query_one(TranslatePanel)
        shown = lambda: str(screen.query_one("#translation").render())  # noqa: E731
        await wait_for(pilot, lambda: "beam 2" in shown() and "the red car" in shown(), what="the translation")
        assert screen.params["beam"] == 2
        assert "exactly right" in screen.query_one("#examples").content.caption
        view = screen.query_one(AttentionView)
        await wait_for(pilot, lambda: view.data is not None and view.data["cols"][:3] == ["the", "red", "car"],
                       what="the alignment of the typed sentence")
        assert "cross-attention" in str(screen.query_one("#attn-help").render())
        screen.query_one("#source").value = "the purple unicorn"
        screen.query_one("#source").focus()
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "unicorn" in shown() and panel.request == 2, what="the error for unknown words")
        await pilot.press("escape")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


async def start_tiny(pilot, screen: LessonScreen, values: dict, choices: dict | None = None) -> None:
    """Fill the Settings form (menus by value) and start a run from it."""
    await fill_form(pilot, screen, values)
    for key, value in (choices or {}).items():
        screen.query_one(f"#hp-{key}").value = value
    screen.query_one("#form-apply").scroll_visible(animate=False)
    await pilot.pause()
    await pilot.click("#form-apply")


async def test_the_denoising_timeline_scrubs_and_plays_and_the_samplers_compare():
    from studio.widgets.diffusion_views import ActionImage, TimelineView

    app = GenStudioApp(graphics="halfblock", lesson="diffusion-digits")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        await start_tiny(pilot, screen, {"base": 4, "batch_size": 16, "train_size": 256, "timesteps": 50,
                                         "steps": 1_000_000}, {"sampler_steps": 10})
        await wait_for(pilot, lambda: screen.snapshot is not None and "timeline" in screen.snapshot.samples
                       and "timeline-meta" in screen.snapshot.samples, timeout=120, what="the timeline")
        await pilot.press("3")
        await pilot.pause()
        view = screen.query_one(TimelineView)
        assert app.focused is view
        await wait_for(pilot, lambda: view.strip is not None and view.frames > 1, what="frames")
        k = view.frames
        assert view.strip.width % k == 0
        await pilot.press("right", "right")
        assert view.frame == 2
        await pilot.press("left")
        assert view.frame == 1
        await pilot.press("end")
        assert view.frame == k - 1 and "frame" in str(screen.query_one("#timeline-bar").render())
        frame_image = view.query_one("#timeline-frame").image
        assert frame_image.width == view.strip.width // k
        await pilot.press("space")  # at the end, play starts again from the noise
        assert view.playing and view.frame < k - 2  # (it may have moved on a frame already)
        await wait_for(pilot, lambda: view.frame >= 2, timeout=10, what="playing")
        await pilot.press("space")
        assert not view.playing
        await pilot.press("4")
        await pilot.pause()
        action = screen.query_one(ActionImage)
        await pilot.click("#action-run")
        await wait_for(pilot, lambda: "DDIM" in str(screen.query_one("#action-note").render()),
                       timeout=120, what="the DDPM vs DDIM comparison")
        assert action.query_one("#action-image").image is not None
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")


async def test_the_prompt_box_draws_images_for_a_caption_and_refuses_unknown_words():
    from studio.widgets.diffusion_views import PromptImagePanel

    app = GenStudioApp(graphics="halfblock", lesson="text-to-image")
    async with app.run_test(size=(140, 44)) as pilot:
        screen = lesson_screen(app)
        await start_tiny(pilot, screen, {"base": 8, "text_dim": 16, "batch_size": 8, "train_size": 256,
                                         "timesteps": 100, "steps": 1_000_000}, {"sampler_steps": 10})
        await wait_for(pilot, lambda: screen.snapshot is not None and "prompted" in screen.snapshot.samples,
                       timeout=120, what="the first prompted images")
        await pilot.press("2")
        await pilot.pause()
        assert app.focused is screen.query_one("#t2i-prompt")
        note = lambda: str(screen.query_one("#t2i-note").render())  # noqa: E731
        screen.query_one("#t2i-guidance").value = "99"
        await pilot.press("enter")
        await pilot.pause()
        assert "out of range" in note()
        screen.query_one("#t2i-guidance").value = "2"
        screen.query_one("#t2i-prompt").value = "a small blue square at the top right"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "a small blue square at the top right" in note() and "guidance 2" in note(),
                       what="images for the typed prompt")
        assert screen.params["guidance"] == 2.0
        assert screen.query_one(PromptImagePanel).query_one("#t2i-image").image is not None
        screen.query_one("#t2i-prompt").value = "a small pink hexagon"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "hexagon" in note(), what="the unknown-word error")
        await pilot.press("escape")
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.snapshot.state == "stopped", what="stopped")
