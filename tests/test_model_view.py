"""The Model tab: the engine writes the network that trains (layers, output shapes from the
first step, parameter counts, a link to each layer's code) for every recipe, and the studio
shows it on a tab every lesson has; Enter on a layer opens its code. A damaged summary is
skipped, never a crash."""

from __future__ import annotations

import json
from dataclasses import asdict

import torch.nn as nn

from engine.configs.start import StartConfig
from engine.model_summary import code_link, recording, summary_rows
from engine.models.start import Classifier
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import validate
from studio.lessons import CODE_LINK, REPO_ROOT, find_symbol


def trained_start_run(path, steps: int = 3) -> RunDir:
    cfg = validate(StartConfig, {"train_size": 200, "steps": steps})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("start", asdict(cfg), device="cpu", lesson="start-here")
    assert Runner(rd.path).run() == 0
    return rd


def test_the_summary_has_every_layer_its_shape_and_its_parameters():
    import torch

    model = Classifier(2, 8)
    with recording({"classifier": model}) as shapes:
        model(torch.zeros(5, 2))
    data = summary_rows({"classifier": model}, shapes)
    names = [(r["depth"], r["name"], r["type"], r["shape"]) for r in data["rows"]]
    assert names[0] == (0, "classifier", "Classifier", "(5, 2)")
    assert (2, "0", "Linear", "(5, 8)") in names
    assert data["total"] == data["trainable"] == sum(p.numel() for p in model.parameters())
    assert all(r["code"] == "code:engine/models/start.py#Classifier" for r in data["rows"])  # torch layers: their holder's
    assert not model._forward_hooks and not model.net[0]._forward_hooks  # the hooks are gone after the step


def test_code_links_point_at_the_definition_and_torch_classes_have_none():
    link = code_link(Classifier)
    m = CODE_LINK.match(link)
    assert m and find_symbol((REPO_ROOT / m["path"]).read_text(), m["symbol"]) is not None
    assert code_link(nn.Linear) == ""


def test_every_run_writes_its_model(tmp_path):
    rd = trained_start_run(tmp_path / "run")
    hist = read_history(rd)
    assert "model" in hist.samples
    data = json.loads(rd.artifact_path(hist.samples["model"]).read_text())
    assert {r["name"] for r in data["rows"] if r["depth"] == 0} == {"classifier", "mixture"}


async def test_the_model_tab_shows_the_layers_and_enter_opens_their_code(tmp_path):
    from textual.widgets import DataTable, TabbedContent

    from studio.app import GenStudioApp
    from studio.widgets.code_view import CodeView
    from studio.widgets.model_view import ModelView

    rd = trained_start_run(tmp_path / "run")
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        for _ in range(100):
            if screen.snapshot is not None and "model" in screen.snapshot.samples:
                break
            await pilot.pause(0.05)
        await pilot.pause()
        screen._show_tab("tab-model")  # its number (after Quiz) is past 9 for the larger dashboards
        await pilot.pause()
        view = screen.query_one(ModelView)
        table = view.query_one(DataTable)
        assert table.row_count == len(view.rows) >= 8
        assert app.focused is table  # arrows move along the layers at once
        await pilot.press("down", "enter")  # classifier.net
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "tab-code"
        assert screen.query_one(CodeView).current == "engine/models/start.py"


async def test_a_damaged_summary_is_skipped(tmp_path):
    from studio.widgets.model_view import clean_rows

    assert clean_rows(None) is None and clean_rows({"rows": "x"}) is None
    rows = clean_rows({"rows": [7, {"name": 3}, {"name": "ok", "depth": -1, "params": "many", "code": "../x"}]})
    assert rows == [{"depth": 0, "name": "ok", "type": "", "shape": "", "params": 0, "code": ""}]
