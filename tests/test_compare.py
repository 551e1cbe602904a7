"""Compare runs: a learner changes beta and wants to see what changed. Mark runs on the runs
screen, compare them: the settings that differ are labelled, each metric's curves are
overlaid (a line per run) and the sample grids sit side by side. Runs of different recipes,
or a damaged run folder, are refused with a reason, never a crash."""

from __future__ import annotations

import json

from studio.app import GenStudioApp
from studio.screens.compare import CompareScreen, differing_settings, load_runs, shared_metrics
from test_studio import _fixture_run


def two_runs(tmp_path):
    a = _fixture_run(tmp_path / "a", "finished")
    b = _fixture_run(tmp_path / "b", "finished")
    cfg = json.loads(b.config_path.read_text())
    cfg["params"]["beta"] = 4.0
    b.config_path.write_text(json.dumps(cfg))
    return a, b


def test_the_settings_that_differ_and_the_metrics_any_run_logged(tmp_path):
    a, b = two_runs(tmp_path)
    runs, problem = load_runs([a.path, b.path])
    assert problem == "" and [r.label for r in runs] == ["A", "B"]
    assert differing_settings(runs) == ["beta"]
    metrics = shared_metrics(runs)
    assert metrics[0].startswith("train/") and "quality/recognisability" in metrics


def test_runs_that_cannot_be_compared_say_why(tmp_path):
    a, _ = two_runs(tmp_path)
    assert "two or more" in load_runs([a.path])[1]
    gan = _fixture_run(tmp_path / "gan", "finished")
    cfg = json.loads(gan.config_path.read_text())
    gan.config_path.write_text(json.dumps({**cfg, "recipe": "gan2d"}))
    assert "different recipes" in load_runs([a.path, gan.path])[1]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert load_runs([a.path, broken])[1].startswith("broken")


async def test_marked_runs_compare_with_overlaid_curves_and_side_by_side_samples(tmp_path):
    from textual.widgets import DataTable, TabbedContent

    from studio.screens.runs import RunsScreen
    from studio.widgets.image_view import ImageView

    from engine.rundir import index_run

    a, b = two_runs(tmp_path)
    for rd in (a, b):
        index_run(rd.path)  # runs made outside the runs root, as --run-dir makes them
    app = GenStudioApp(graphics="halfblock")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.query_one(DataTable).row_count == 2
        await pilot.press("c")  # nothing marked yet: says what to do
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("space", "down", "space", "c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert "beta=4.0" in str(screen.query_one("#compare-legend").render())
        assert screen.shown == (screen.metrics[0], ["A", "B"])
        await pilot.press("down")  # the next metric, drawn for both runs
        await pilot.pause()
        assert screen.shown == (screen.metrics[1], ["A", "B"])
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "samples"
        images = list(screen.query(ImageView))
        assert [v.caption for v in images] == ["A · step 400", "B · step 400"]
        assert all(v.path for v in images)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
