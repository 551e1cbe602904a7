"""Live training curves: one plotext panel per group of metrics (loss, its terms, quality)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual_plotext import PlotextPlot

from studio.messages import RunSnapshot

COLOURS = {"train": "cyan", "val": "orange", "quality": "green"}
QUALITY_COLOURS = ["green", "magenta", "yellow", "blue"]


def group_series(names: list[str]) -> list[tuple[str, list[str]]]:
    """Split metric names into panels: total loss (train and val), the loss's other terms,
    and quality scores. Works for any recipe that names metrics split/name."""
    loss = [n for n in names if n.split("/")[-1] == "loss" and n.split("/")[0] in ("train", "val")]
    terms = [n for n in names if n.split("/")[0] in ("train", "val") and n not in loss]
    quality = [n for n in names if n.startswith("quality/")]
    panels = [("loss", sorted(loss, key=lambda n: n.startswith("val")))]
    if terms:
        panels.append(("loss terms", sorted(terms)))
    if quality:
        panels.append(("sample quality (digit classifier)", sorted(quality)))
    return panels


class LossCurves(VerticalScroll):
    """Stacked plot panels; scroll when the terminal is too short to show them all."""

    DEFAULT_CSS = """
    LossCurves > PlotextPlot { height: 1fr; min-height: 10; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._version = -1
        self._panels: list[str] = []

    def compose(self) -> ComposeResult:
        for i in range(3):
            yield PlotextPlot(id=f"curve-{i}")

    def on_mount(self) -> None:
        self.show({})

    def update_from(self, snap: RunSnapshot) -> None:
        if snap.version == self._version:
            return
        self._version = snap.version
        self.show(snap.series)

    def show(self, series: dict[str, tuple[list[int], list[float]]]) -> None:
        panels = group_series(list(series)) if series else [("loss", [])]
        plots = list(self.query(PlotextPlot))
        for i, plot in enumerate(plots):
            plot.display = i < len(panels)
            if i >= len(panels):
                continue
            title, names = panels[i]
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(title)
            plt.xlabel("step")
            if not names:
                plt.title("loss: no data yet (press s to start training)")
            for j, name in enumerate(names):
                xs, ys = series[name]
                if not xs:
                    continue
                split = name.split("/")[0]
                colour = COLOURS.get(split, "white") if split != "quality" else QUALITY_COLOURS[j % 4]
                label = f"{name} {ys[-1]:.4g}"
                if len(xs) == 1:
                    plt.scatter(xs, ys, label=label, color=colour, marker="dot")
                else:
                    plt.plot(xs, ys, label=label, color=colour, marker="braille")
            if title.startswith("sample quality"):
                plt.ylim(0, 1)
            plot.refresh()
