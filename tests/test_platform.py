"""The platform families plug into: no import cycles, a view registered for every pane type,
a lesson screen that names no family, runs created and read in one torch-free module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from engine import panes
from engine.registry import RECIPES
from engine.schema import specs

PACKAGES = ("engine", "studio", "assets")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _our_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, anywhere in its source (a function's lazy
    import is still an edge: it runs as soon as the function does)."""
    modules = _our_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_anywhere():
    graph = import_graph()
    assert "studio.screens.lesson" in graph and "engine.runner" in graph  # the walk sees our modules
    assert "engine.registry" in graph["engine.runner"]
    assert cycles(graph) == []


def test_the_pane_vocabulary_imports_nothing_of_ours_but_the_contract():
    graph = import_graph()
    assert graph["engine.panes"] == set()
    assert graph["engine.schema"] == set()


def test_every_pane_type_has_a_view_that_speaks_the_protocol():
    from textual.widget import Widget

    from studio.views import VIEWS
    from studio.widgets.view import View

    declared = {cls for cls in vars(panes).values()
                if isinstance(cls, type) and issubclass(cls, panes.Pane) and cls is not panes.Pane}
    assert declared and declared == set(VIEWS)
    for view in VIEWS.values():
        assert issubclass(view, View) and issubclass(view, Widget), view


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_dashboard_builds_from_its_declaration(recipe):
    from studio.views import build_view

    entry = RECIPES[recipe]
    by_name = {s.name: s for s in specs(entry.config)}
    values = {s.name: s.default for s in specs(entry.config)}
    ids = [pane.id for tab in entry.dashboard for pane in tab.panes]
    assert ids and len(ids) == len(set(ids))
    for tab in entry.dashboard:
        for pane in tab.panes:
            widget = build_view(pane, by_name, values)
            assert widget.id == pane.id
            assert all(name in by_name for name in pane.settings)


def test_a_pane_without_a_view_is_refused_with_the_fix():
    from dataclasses import dataclass

    from studio.views import build_view

    @dataclass(frozen=True)
    class Hologram(panes.Pane):
        artifact: str
        id: str

    with pytest.raises(TypeError, match="studio/views.py"):
        build_view(Hologram("x", "x"), {}, {})


def test_the_lesson_screen_names_no_family_parameter_or_widget():
    from studio.views import VIEWS

    source = (ROOT / "studio" / "screens" / "lesson.py").read_text()
    tree = ast.parse(source)
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    # The screen's own key actions (Binding("s", "start", ...)) may share a word with a recipe's name.
    actions = {n.args[1].value for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") ==
               "Binding" and len(n.args) > 1 and isinstance(n.args[1], ast.Constant)}
    strings -= actions
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
            {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    params = {s.name for e in RECIPES.values() for s in specs(e.config)}
    assert not strings & params, strings & params
    assert not strings & set(RECIPES), strings & set(RECIPES)
    pane_and_view_classes = {c.__name__ for c in VIEWS} | {c.__name__ for c in VIEWS.values()}
    assert not names & pane_and_view_classes, names & pane_and_view_classes
    assert "isinstance" not in names


def test_path_settings_are_marked_in_the_schema_not_named_in_code():
    marked = {(r, s.name) for r, e in RECIPES.items() for s in specs(e.config) if s.path}
    assert ("gpt", "corpus_path") in marked and ("vae", "data_path") in marked
    source = (ROOT / "engine" / "runs.py").read_text()
    assert "data_path" not in source and "corpus_path" not in source


def test_create_run_resolves_paths_once_and_refuses_the_wrong_kind(tmp_path, monkeypatch):
    from engine.runs import RunError, create_run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello world " * 200)
    (tmp_path / "imgs").mkdir()
    rd = create_run("gpt", ["corpus=file", "corpus_path=notes.txt"], 5, "cpu", "rel-run")
    assert rd.path == tmp_path / "rel-run" and rd.path.is_absolute()
    assert rd.read_config()["params"]["corpus_path"] == str(tmp_path / "notes.txt")
    with pytest.raises(RunError, match="corpus_path imgs is not a file"):
        create_run("gpt", ["corpus=file", "corpus_path=imgs"], 5, "cpu", None)
    with pytest.raises(RunError, match="data_path notes.txt is not a folder"):
        create_run("dcgan", ["dataset=folder", "data_path=notes.txt"], 5, "cpu", None)
    with pytest.raises(RunError, match="is a file"):
        create_run("vae", [], 5, "cpu", "notes.txt")


def test_run_state_is_worked_out_in_one_place(tmp_path):
    from engine.rundir import History, RunDir
    from engine.runs import run_state, summarise

    from conftest import make_run

    rd = make_run(tmp_path / "r")
    hist = History()
    assert run_state(rd, hist) == "new"
    rd.emit("state", 0, {"state": "running", "device": "cpu"})
    from engine.rundir import read_history

    hist = read_history(rd)
    assert run_state(rd, hist) == "interrupted"  # no engine works on it
    assert run_state(rd, hist, alive=True) == "running"
    assert summarise(rd).state == "interrupted"
    assert summarise(RunDir(tmp_path)).state == "damaged"


def test_sample_runs_as_an_engine_process_and_the_cli_never_imports_torch(tmp_path):
    from conftest import make_run
    from engine.runner import Runner

    rd = make_run(tmp_path / "r", steps=3)
    assert Runner(rd.path).run() == 0
    out = tmp_path / "grid.png"
    code = ("import sys; from studio.cli import main; rc = main(['sample', sys.argv[1], '-o', sys.argv[2], '-n', '4',"
            " '--device', 'cpu']); print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(rd.path), str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "NO-TORCH" in done.stdout and "wrote 4 samples" in done.stdout
    assert out.stat().st_size > 100


def test_the_engine_sample_command_says_why_it_fails(tmp_path):
    from conftest import make_run

    rd = make_run(tmp_path / "r", steps=3)
    done = subprocess.run([sys.executable, "-m", "engine", "sample", str(rd.path), "-o", str(tmp_path / "g.png")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "no checkpoint yet" in done.stderr


def test_the_contributing_guide_builds_a_working_family(tmp_path, monkeypatch):
    """The guide's example family, file by file, registered with its one line, trains in the
    real runner and its dashboard builds: the guide is true."""
    import re

    import engine.configs
    import engine.models
    import engine.recipes
    from engine.registry import register
    from engine.runs import create_run
    from engine.runner import Runner
    from studio.views import build_view

    guide = (ROOT / "CONTRIBUTING.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    files = {b.splitlines()[0][2:].strip(): b for b in blocks if b.startswith("# engine/")}
    assert set(files) == {"engine/models/gauss2d.py", "engine/configs/gauss2d.py", "engine/recipes/gauss2d.py"}
    for rel, code in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(code)
    for package in (engine.configs, engine.models, engine.recipes):
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path / "engine" / package.__name__.split(".")[1])])
    line = next(b.strip() for b in blocks if b.startswith("register("))
    try:
        eval(line, {"register": register})  # the one registration line, as written
        rd = create_run("gauss2d", ["steps=150"], None, "cpu", tmp_path / "run")
        assert Runner(rd.path).run() == 0
        from engine.rundir import read_history

        hist = read_history(rd)
        assert hist.state == "finished" and "points" in hist.samples
        val = [v for _, v in hist.metrics["val/loss"]]  # the first is the untrained model's
        assert val[-1] < val[0] - 0.25, val  # the best single Gaussian for the eight is ~0.3 nats better
        entry = RECIPES["gauss2d"]
        by_name = {s.name: s for s in specs(entry.config)}
        for tab in entry.dashboard:
            for pane in tab.panes:
                build_view(pane, by_name, {})
    finally:
        RECIPES.pop("gauss2d", None)
        for name in ("engine.configs.gauss2d", "engine.models.gauss2d", "engine.recipes.gauss2d"):
            sys.modules.pop(name, None)
