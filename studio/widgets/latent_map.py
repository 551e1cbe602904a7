"""The latent map: validation digits' latent means as a scatter coloured by class."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from textual_plotext import PlotextPlot

from studio.widgets.view import ArtifactUpdate, View

CLASS_COLOURS = ["red", "orange", "yellow", "green", "cyan", "blue", "magenta", "white", "gray", "bright_green"]


class LatentMap(View, PlotextPlot):
    """Reads a points JSON artifact ({"x", "y", "label", "projection"}) and draws it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path: str | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.plt.title("latent map: no data yet (press s to start training)")

    def load(self, update: ArtifactUpdate) -> None:
        path = update.path
        if not path or path == self.path:
            return
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return  # keep the last map; the next snapshot tries again
        self.path = path
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        groups: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        for x, y, c in zip(data["x"], data["y"], data["label"]):
            groups[int(c)][0].append(x)
            groups[int(c)][1].append(y)
        for c in sorted(groups):
            xs, ys = groups[c]
            plt.scatter(xs, ys, color=CLASS_COLOURS[c % 10], marker="dot", label=str(c))
        plt.title(f"latent means by digit, step {update.step}: {data.get('projection', '')}")
        self.refresh()
