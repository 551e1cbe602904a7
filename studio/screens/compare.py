"""Compare runs of one lesson: the settings that differ, every metric's curves overlaid (one
line per run), and each run's newest samples side by side.

The runs screen opens it: space marks runs, c compares the marked ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

from engine.registry import RECIPES, dashboard
from engine.rundir import History, RunDir, RunDirError, read_history
from engine.runs import run_state
from studio.widgets.image_view import ImageView

LABELS = "ABCDEFGH"  # one letter per run, in the legend and on the curves
MAX_RUNS = len(LABELS)
COLOURS = ("cyan", "orange", "green", "magenta", "yellow", "blue", "red", "white")  # plotext names
RICH_COLOURS = ("cyan", "dark_orange", "green", "magenta", "yellow", "blue", "red", "white")


@dataclass
class Compared:
    """One run as the comparison shows it."""

    label: str
    rd: RunDir
    recipe: str
    params: dict
    hist: History
    state: str


def load_runs(paths: list[str | Path]) -> tuple[list[Compared], str]:
    """The runs to compare, and "" or what is wrong (fewer than two, several recipes, a
    run that cannot be read: its folder is untrusted input)."""
    if len(paths) < 2:
        return [], "mark two or more runs (space), then press c"
    if len(paths) > MAX_RUNS:
        return [], f"compare at most {MAX_RUNS} runs at a time"
    runs = []
    for label, path in zip(LABELS, paths):
        rd = RunDir(path)
        try:
            cfg = rd.read_config()
        except (RunDirError, OSError, ValueError) as e:
            return [], f"{Path(path).name}: {e}"
        recipe, params = cfg.get("recipe"), cfg.get("params")
        if recipe not in RECIPES or not isinstance(params, dict):
            return [], f"{rd.name}: its config names no recipe GenStudio has"
        hist = read_history(rd)
        params = {**params, **hist.params}  # a value changed live is what the run ended with
        runs.append(Compared(label, rd, recipe, params, hist, run_state(rd, hist)))
    recipes = sorted({r.recipe for r in runs})
    if len(recipes) > 1:
        return [], f"these runs train different recipes ({', '.join(recipes)}): compare runs of one lesson"
    return runs, ""


def differing_settings(runs: list[Compared]) -> list[str]:
    """The settings whose values are not the same in every run, in the config's order."""
    keys = list(dict.fromkeys(k for r in runs for k in r.params))
    return [k for k in keys if len({repr(r.params.get(k)) for r in runs}) > 1]


def shared_metrics(runs: list[Compared]) -> list[str]:
    """Metric names any run logged: train first, then val, then quality."""
    names = {n for r in runs for n in r.hist.metrics}
    order = {"train": 0, "val": 1, "quality": 2}
    return sorted(names, key=lambda n: (order.get(n.split("/")[0], 3), n))


def legend_line(run: Compared, keys: list[str]) -> Text:
    colour = RICH_COLOURS[LABELS.index(run.label)]
    total = run.hist.status.get("total_steps") or run.params.get("steps") or 0
    steps = f"{run.hist.step:,}/{total:,}" if isinstance(total, int) and total else f"{run.hist.step:,}"
    settings = "  ".join(f"{k}={run.params.get(k)!r}".replace("'", "") for k in keys) or "same settings"
    return Text.assemble((f"{run.label} ━ ", f"bold {colour}"), (run.rd.name, "bold"), f"  {run.state} {steps}  ",
                         (settings, "bold"))


class CompareScreen(Screen):
    BINDINGS = [
        Binding("1", "tab('curves')", "Curves"),
        Binding("2", "tab('samples')", "Samples"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    CompareScreen #compare-legend { height: auto; max-height: 9; padding: 0 1; }
    CompareScreen #compare-tabs { height: 1fr; }
    CompareScreen #compare-tabs TabPane { height: 1fr; padding: 0; }
    CompareScreen #compare-tabs TabPane > Horizontal { height: 1fr; }
    CompareScreen #metric-list { width: 30; height: 1fr; }
    CompareScreen #compare-plot { width: 1fr; height: 1fr; }
    CompareScreen #compare-images { height: 1fr; }
    CompareScreen #compare-images > ImageView { width: 1fr; }
    """

    def __init__(self, paths: list[str | Path]) -> None:
        super().__init__()
        self.runs, self.problem = load_runs(paths)
        self.keys = differing_settings(self.runs) if self.runs else []
        self.metrics = shared_metrics(self.runs) if self.runs else []
        recipe = self.runs[0].recipe if self.runs else None
        exports = [p.export for tab in dashboard(recipe) for p in tab.panes if p.export] if recipe else []
        self.image = exports[0] if exports else None  # the artifact the lesson's export key saves
        self.shown: tuple[str, list[str]] = ("", [])  # the metric on the chart, and the runs drawn

    def compose(self) -> ComposeResult:
        title = f"compare {len(self.runs)} runs" if self.runs else "compare runs"
        yield Static(Text.assemble(("GenStudio", "bold"), f"  ›  runs  ›  {title}"), id="title-bar")
        legend = Text("\n").join(legend_line(r, self.keys) for r in self.runs) if self.runs else Text(self.problem)
        if self.runs and self.keys:
            legend.append(f"\nSettings that differ: {', '.join(self.keys)}", style="dim")
        yield Static(legend, id="compare-legend")
        with TabbedContent(id="compare-tabs", initial="curves"):
            with TabPane("1 Curves", id="curves"):
                with Horizontal():
                    yield OptionList(*(Option(m, id=m) for m in self.metrics), id="metric-list")
                    yield PlotextPlot(id="compare-plot")
            with TabPane("2 Samples", id="samples"):
                with Horizontal(id="compare-images"):
                    for run in self.runs:
                        yield self._image(run)
        yield Footer()

    def _image(self, run: Compared) -> ImageView:
        rel = run.hist.samples.get(self.image) if self.image else None
        path = run.rd.artifact_path(rel) if rel else None  # None for a path that leaves the run
        step = run.hist.sample_steps.get(self.image, run.hist.step) if self.image else 0
        what = f"{run.label} · step {step:,}" if path else f"{run.label} · no samples"
        return ImageView(str(path) if path else None, caption=what, placeholder=f"{run.label}: no samples yet")

    def on_mount(self) -> None:
        if self.metrics:
            metric_list = self.query_one("#metric-list", OptionList)
            metric_list.highlighted = 0
            metric_list.focus()
            self.draw(self.metrics[0])

    @on(OptionList.OptionHighlighted, "#metric-list")
    def metric_chosen(self, event: OptionList.OptionHighlighted) -> None:
        self.draw(event.option.id)

    def draw(self, metric: str) -> None:
        """One metric of every run on one chart: a line each, in its legend colour."""
        plot = self.query_one("#compare-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(metric)
        plt.xlabel("step")
        drawn = []
        for run in self.runs:
            points = run.hist.metrics.get(metric, [])
            if points:
                xs, ys = zip(*points)
                plt.plot(list(xs), list(ys), color=COLOURS[LABELS.index(run.label)], label=run.label,
                         marker="braille" if len(points) > 1 else "dot")
                drawn.append(run.label)
        self.shown = (metric, drawn)
        plot.refresh()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
