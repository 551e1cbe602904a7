"""Live training curves: one plotext panel per group of metrics (loss, its terms, quality)."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual_plotext import PlotextPlot

from studio.messages import RunSnapshot
from studio.widgets.view import View

REDRAW_INTERVAL = 2.0  # seconds between redraws of the curves

COLOURS = {"train": "cyan", "val": "orange", "quality": "green"}
QUALITY_COLOURS = ["green", "magenta", "yellow", "blue"]


def group_series(names: list[str]) -> list[tuple[str, list[str]]]:
    """Split metric names into panels: total loss (train and val), the loss's other terms,
    and quality scores. Works for any recipe that names metrics split/name."""
    def is_loss(n: str) -> bool:
        return n.split("/")[-1].startswith("loss")

    loss = [n for n in names if is_loss(n) and n.split("/")[0] in ("train", "val")]
    terms = [n for n in names if n.split("/")[0] in ("train", "val") and n not in loss]
    quality = [n for n in names if n.startswith("quality/")]
    panels = [("loss", sorted(loss, key=lambda n: (n.startswith("val"), n)))]
    if terms:
        short = sorted({n.split("/")[-1] for n in terms})
        panels.append((" · ".join(short), sorted(terms)))
    if quality:
        panels.append(("sample quality", sorted(quality)))
    return panels


class LossCurves(View, VerticalScroll):
    """Stacked plot panels; scroll when the terminal is too short to show them all."""

    DEFAULT_CSS = """
    LossCurves > PlotextPlot { height: 1fr; min-height: 10; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._version = -1
        self._pending: dict | None = None
        self._drawn_at = 0.0
        self._timer = None
        self._drawn: dict[int, tuple] = {}  # what each panel shows now

    def compose(self) -> ComposeResult:
        for i in range(3):
            yield PlotextPlot(id=f"curve-{i}")

    def on_mount(self) -> None:
        self.show({})

    def follow(self, snapshot: RunSnapshot) -> None:
        self.update_from(snapshot)

    def update_from(self, snap: RunSnapshot) -> None:
        """Redraw at most once every REDRAW_INTERVAL seconds: plotting is the costliest
        thing the studio does, and the learner cannot read faster anyway. The last update
        is always drawn (a timer catches it up)."""
        if snap.version == self._version:
            return
        self._version = snap.version
        self._pending = snap.series
        wait = REDRAW_INTERVAL - (time.monotonic() - self._drawn_at)
        if wait <= 0:
            self._draw_pending()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._draw_pending)

    def _draw_pending(self) -> None:
        self._timer = None
        if self._pending is not None:
            series, self._pending = self._pending, None
            self._drawn_at = time.monotonic()
            self.show(series)

    def show(self, series: dict[str, tuple[list[int], list[float]]]) -> None:
        panels = group_series(list(series)) if series else [("loss", [])]
        plots = list(self.query(PlotextPlot))
        for i, plot in enumerate(plots):
            plot.display = i < len(panels)
            if i >= len(panels):
                continue
            title, names = panels[i]
            # A panel whose curves gained no point since its last draw is left alone.
            signature = (title, tuple((n, len(series[n][0]), series[n][0][-1] if series[n][0] else None) for n in names))
            if self._drawn.get(i) == signature:
                continue
            self._drawn[i] = signature
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
            if title == "sample quality":
                top = max((max(series[n][1]) for n in names if series[n][1]), default=1.0)
                plt.ylim(0, max(1.0, top))
            else:
                limits = y_limits([series[n][1] for n in names if series[n][1]])
                if limits:
                    plt.ylim(*limits)
            plot.refresh()


def y_limits(values: list[list[float]], skip: float = 0.1) -> tuple[float, float] | None:
    """A y-range that ignores the first ``skip`` of each curve: an untrained model's loss is
    many times its later values, and plotting it would flatten everything that follows."""
    kept = [v for ys in values for v in ys[int(len(ys) * skip):]]
    if len(kept) < 2:
        return None
    lo, hi = min(kept), max(kept)
    margin = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    return lo - margin, hi + margin
