"""Live training curves: one plotext panel per group of metrics (the loss, its terms, the
sample quality), terms of very different sizes on axes of their own. Each panel has its
own legend line under it (plotext's drops labels when a plot is small), and quality scores
say what they measure. Panels that do not fit scroll (PgDn, ↑/↓) and a hint says so."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static
from textual_plotext import PlotextPlot

from studio.messages import RunSnapshot
from studio.widgets.view import START_HINT, WAITING_STATES, View

REDRAW_INTERVAL = 2.0  # seconds between redraws of the curves
MAX_PANELS = 8  # plots the widget holds; more groups than this share the last one (the world model has 7)
SPREAD = 5.0  # metrics whose typical sizes differ more than this are drawn on separate axes
SPARSE = 30  # a curve of fewer points (a few evaluations) is drawn as dots, not a line
READABLE = 12  # rows a plot needs to read its shape; fewer when the screen is short
MIN_PLOT = 6  # rows below which a plot shows nothing
# Terminal colour numbers (plotext takes them, and rich as "color(N)"): one per curve of a panel.
PALETTE = [6, 3, 2, 5, 12, 9, 14, 7]  # cyan, orange, green, magenta, bright blue, bright red, bright cyan, grey

# What a quality score measures, in a line, shown under its panel (scores are named
# "quality/NAME" by the recipes; one not listed here is shown without a line).
METRIC_HELP = {
    "recognisability": "the classifier's mean certainty (1: each a clear digit)",
    "coverage": "share of the ten digits drawn (low: only a few kinds)",
    "confident": "share of samples the classifier is 90%+ sure of",
    "near_duplicates": "share of samples nearly identical to another (high: collapse)",
    "sliced_wasserstein": "distance from the real points (0: the same spread)",
    "energy_distance": "distance from the real points' distribution (0: the same)",
    "exact_match": "share of held-out sentences translated exactly",
    "bleu": "word overlap with the reference translations (1: identical)",
    "prompt_accuracy": "share of images that match every part of their prompt",
    "cycle_error": "pixel error of a face sent there and back (0: unchanged)",
    "kept": "share of faces whose other attributes survive the change",
    "to_black": "share of blond faces the classifier then sees with black hair",
    "to_blond": "share of black-haired faces the classifier then sees as blond",
}


def short(name: str) -> str:
    return name.split("/")[-1]


def typical(ys: list[float]) -> float:
    """A series' size now: the median magnitude of its newer half."""
    recent = sorted(abs(y) for y in ys[len(ys) // 2:])
    return recent[len(recent) // 2] if recent else 0.0


def split_by_size(names: list[str], series: dict | None) -> list[list[str]]:
    """Split ``names`` into groups that can share an axis. A metric's train and val curves
    stay together; fractions (every value in [0, 1]) share one 0-1 axis; the rest are
    grouped from the largest down, a new group starting where a metric is more than SPREAD
    times smaller than the group's largest."""
    if not series or len(names) < 2:
        return [names] if names else []
    units: dict[str, list[str]] = {}
    for n in names:
        units.setdefault(short(n), []).append(n)
    values = {u: [y for n in ns for y in series.get(n, ([], []))[1]] for u, ns in units.items()}
    fractions = [u for u in units if values[u] and all(0.0 <= y <= 1.0 for y in values[u])]
    others = sorted((u for u in units if u not in fractions),
                    key=lambda u: -max((typical(series[n][1]) for n in units[u] if n in series), default=0.0))
    groups: list[list[str]] = []
    top = 0.0
    for u in others:
        size = max((typical(series[n][1]) for n in units[u] if n in series), default=0.0)
        if groups and (size == 0.0 or top <= SPREAD * size):
            groups[-1].extend(units[u])
        else:
            groups.append(list(units[u]))
            top = size
    if fractions:
        groups.append([n for u in fractions for n in units[u]])
    return groups


def group_series(names: list[str], series: dict | None = None) -> list[tuple[str, list[str]]]:
    """Split metric names into panels: total loss (train and val), the loss's other terms,
    and quality scores. Works for any recipe that names metrics split/name. With the
    ``series`` ({name: (steps, values)}), metrics of very different sizes (a KL term of 10
    beside a reconstruction term of 500) get panels of their own."""
    def is_loss(n: str) -> bool:
        return short(n).startswith("loss")

    loss = [n for n in names if is_loss(n) and n.split("/")[0] in ("train", "val")]
    terms = [n for n in names if n.split("/")[0] in ("train", "val") and n not in loss]
    quality = [n for n in names if n.startswith("quality/")]
    panels = []
    for title, group in (("loss", loss), ("", terms), ("sample quality", quality)):
        parts = split_by_size(sorted(group, key=lambda n: (short(n), n.startswith("val"), n)), series)
        for part in parts:
            shorts = " · ".join(dict.fromkeys(short(n) for n in part))
            if not title:
                panels.append((shorts, part))
            else:
                panels.append((title if len(parts) == 1 else f"{title}: {shorts}", part))
    return panels or [("loss", [])]


class LossCurves(View, Vertical):
    """Stacked panels, each a legend line over its plot (and, for quality scores, what they
    measure). When they do not all fit at a readable height, each gets a readable share of
    one screen and the rest scroll: the tab focuses the widget, so PgDn and ↑/↓ work at
    once, and a line at the bottom says what lies above and below."""

    DEFAULT_CSS = """
    LossCurves > #curves-scroll { height: 1fr; }
    LossCurves PlotextPlot { height: 1fr; min-height: 4; }
    LossCurves .curve-legend { height: auto; padding: 0 1; }
    LossCurves .curve-help { height: auto; padding: 0 1; color: $text-muted; }
    LossCurves > #curves-more { height: 1; padding: 0 1; background: $boost; color: $text-muted; display: none; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._version = -1
        self._pending: dict | None = None
        self._drawn_at = 0.0
        self._timer = None
        self._drawn: dict[int, tuple] = {}  # what each panel shows now
        self._texts: dict[str | None, Text] = {}  # what each legend and help line shows now
        self._state: str | None = None  # the followed run's state (None: no run)
        self._layout: tuple | None = None  # (height, panels' extra lines) the plot heights were fitted to
        self._hint = "-"  # what the hint line says now

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="curves-scroll"):
            for i in range(MAX_PANELS):
                yield Static("", id=f"legend-{i}", classes="curve-legend")
                yield PlotextPlot(id=f"curve-{i}")
                yield Static("", id=f"help-{i}", classes="curve-help")
        yield Static("", id="curves-more")

    @property
    def scroller(self) -> VerticalScroll:
        return self.query_one("#curves-scroll", VerticalScroll)

    def on_mount(self) -> None:
        self.show({})
        self.watch(self.scroller, "scroll_y", lambda: self._hint_more(), init=False)
        # After the plots' heights change the hint must be worked out from the new layout,
        # which is only known once the scroller has measured its content again.
        self.watch(self.scroller, "virtual_size", lambda: self.call_after_refresh(self._hint_more), init=False)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def focus_input(self) -> bool:
        self.scroller.focus()  # PgDn, PgUp and ↑/↓ scroll the panels; the studio's letter keys still work
        return True

    def follow(self, snapshot: RunSnapshot) -> None:
        if snapshot.state != self._state and not snapshot.series:
            self._state = snapshot.state
            self._drawn.clear()
            self.show({})  # the placeholder says what is awaited now
        self._state = snapshot.state
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
        panels = group_series(list(series), series)
        if len(panels) > MAX_PANELS:  # (no recipe has this many) the rest share the last panel
            rest = [n for _, names in panels[MAX_PANELS - 1:] for n in names]
            panels = panels[:MAX_PANELS - 1] + [("more", rest)]
        for i in range(MAX_PANELS):
            plot = self.query_one(f"#curve-{i}", PlotextPlot)
            legend = self.query_one(f"#legend-{i}", Static)
            help_line = self.query_one(f"#help-{i}", Static)
            shown = i < len(panels)
            plot.display = legend.display = shown
            help_line.display = shown and bool(self._help(panels[i][1]))
            if not shown:
                continue
            title, names = panels[i]
            # A panel whose curves gained no point since its last draw is left alone.
            signature = (title, tuple((n, len(series[n][0]), series[n][0][-1] if series[n][0] else None,
                                       series[n][1][-1] if series[n][1] else None) for n in names))
            if self._drawn.get(i) == signature:
                continue
            self._drawn[i] = signature
            self._draw_plot(plot, names, series)
            self._set_text(legend, self._legend(title, names, series))
            self._set_text(help_line, self._help(names))
        self.call_after_refresh(self._fit)

    def _set_text(self, line: Static, text: Text | str) -> None:
        """Updates a legend or help line, laying the screen out again only when its height
        changes: a layout pass of the whole screen is what a redraw costs most."""
        text = Text(text) if isinstance(text, str) else text
        old = self._texts.get(line.id)
        if old is not None and old.plain == text.plain and old.spans == text.spans:
            return
        width = line.content_size.width
        lines = len(text.wrap(self.app.console, width)) if width > 0 else None
        same_height = lines is not None and old is not None and lines == len(old.wrap(self.app.console, width))
        self._texts[line.id] = text
        line.update(text, layout=not same_height)

    def _draw_plot(self, plot: PlotextPlot, names: list[str], series: dict) -> None:
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        for j, name in enumerate(names):
            xs, ys = series[name]
            if not xs:
                continue
            colour = PALETTE[j % len(PALETTE)]
            if len(xs) < SPARSE:
                # A few evaluations: a line through them would invent the values between.
                plt.scatter(xs, ys, color=colour, marker="●")
            else:
                plt.plot(xs, ys, color=colour, marker="braille")
        values = [series[n][1] for n in names if series[n][1]]
        if values and all(n.startswith("quality/") for n in names) and all(0.0 <= y <= 1.0 for ys in values for y in ys):
            plt.ylim(0, 1)  # fractions: the whole scale, so 0.9 looks high
        else:
            limits = y_limits(values)
            if limits:
                plt.ylim(*limits)
        steps = [x for n in names for x in series[n][0]]
        if steps:
            plt.xlim(min(0, min(steps)), max(max(steps), 1))  # the whole run so far, from its first step (never empty)
        plot.refresh()

    def _legend(self, title: str, names: list[str], series: dict) -> Text:
        """The panel's title, then each curve's mark and colour, name and newest value."""
        out = Text.assemble((title, "bold"), "  ")
        if not names:
            out.append(self.placeholder(), style="dim italic")
        prefixes = {n.split("/")[0] for n in names}
        for j, name in enumerate(names):
            xs, ys = series[name]
            if not ys:
                continue
            mark = "●" if len(xs) < SPARSE else "━━"
            out.append(f"{mark} ", style=f"bold color({PALETTE[j % len(PALETTE)]})")
            out.append(f"{short(name) if len(prefixes) == 1 and len(names) > 1 else name}\u00a0")  # kept with its value
            out.append(f"{ys[-1]:.4g}", style="bold")
            out.append("  ")
        out.rstrip()
        return out

    @staticmethod
    def _help(names: list[str]) -> str:
        return "\n".join(f"{short(n)}: {METRIC_HELP[short(n)]}" for n in dict.fromkeys(names)
                         if short(n) in METRIC_HELP)

    def placeholder(self) -> str:
        """What the empty loss panel says: how to start a run, or what a run is about to show."""
        if self._state in WAITING_STATES:
            return "waiting for the first values (training is starting)"
        return f"no data yet ({START_HINT})"

    # -- fitting the panels to the height, and the hint line --
    def _panels(self) -> list[tuple[Static, PlotextPlot, Static]]:
        return [(self.query_one(f"#legend-{i}", Static), plot, self.query_one(f"#help-{i}", Static))
                for i, plot in enumerate(self.query(PlotextPlot)) if plot.display]

    def _fit(self) -> None:
        """Every panel at a readable height when they all fit; otherwise as many per screen
        as fit at that height, sharing it, so PgDn turns to the next ones."""
        panels = self._panels()
        height = self.size.height
        extras = [legend.outer_size.height + (help_line.outer_size.height if help_line.display else 0)
                  for legend, _, help_line in panels]
        if not panels or height <= 0 or (height, tuple(extras)) == self._layout:
            self._hint_more()
            return
        self._layout = (height, tuple(extras))
        if sum(READABLE + e for e in extras) <= height:
            for _, plot, _ in panels:
                plot.styles.height = "1fr"
        else:
            page = height - 1  # the hint line
            per_page = max(1, page // (READABLE + min(extras)))
            for (_, plot, _), extra in zip(panels, extras):
                plot.styles.height = max(MIN_PLOT, page // per_page - extra)
        self.call_after_refresh(self._hint_more)

    def _hint_more(self) -> None:
        """While charts lie outside the visible part: how many above and below, and the keys."""
        if not self.is_attached:
            return  # a call queued after a refit, arriving once the screen has gone
        hint = self.query_one("#curves-more", Static)
        scroller = self.scroller
        top = scroller.scroll_y
        bottom = top + scroller.scrollable_content_region.height
        above = below = 0
        for _, plot, _ in self._panels():
            middle = plot.virtual_region.y + plot.virtual_region.height / 2
            below += middle > bottom
            above += middle < top
        parts = []
        if below:
            parts.append(f"↓ {below} more chart{'s' if below > 1 else ''} below: PgDn")
        if above:
            parts.append(f"↑ {above} above: PgUp")
        text = "   ".join(parts)
        if scroller.max_scroll_y > 0 and not text:
            text = "↑/↓ scroll"
        if text != self._hint:
            self._hint = text
            hint.update(text)
            hint.display = bool(text)


def y_limits(values: list[list[float]], skip: float = 0.1) -> tuple[float, float] | None:
    """A y-range that ignores the first ``skip`` of each curve: an untrained model's loss is
    many times its later values, and plotting it would flatten everything that follows.
    Curves that are never negative keep the axis at 0 or above."""
    kept = [v for ys in values for v in ys[int(len(ys) * skip):]]
    if len(kept) < 2:
        return None
    lo, hi = min(kept), max(kept)
    margin = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    bottom = lo - margin
    if bottom < 0 <= min(v for ys in values for v in ys):
        bottom = 0.0
    return bottom, hi + margin
