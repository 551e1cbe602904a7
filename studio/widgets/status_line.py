"""One line of run status: state, step and ETA first; device, epoch, speed and elapsed time
as the width allows (a narrow terminal drops the least important first)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from studio.headless import fmt_duration
from studio.messages import RunSnapshot

STATE_STYLE = {
    "running": "bold green", "paused": "bold yellow", "starting": "bold cyan", "finished": "bold blue",
    "stopped": "bold magenta", "failed": "bold red", "interrupted": "bold red", "new": "dim",
}


def fmt_bytes(n: object) -> str:
    """1.2 GB, 340 MB: memory in a few characters ("" for a missing or malformed figure)."""
    if not isinstance(n, (int, float)) or isinstance(n, bool) or n < 0:
        return ""
    for unit, size in (("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n / 1e3:.0f} kB"


def memory_text(status: dict) -> str:
    """The engine's memory in use: its RAM, and GPU memory when it trains on CUDA."""
    ram, gpu = fmt_bytes(status.get("ram_bytes")), fmt_bytes(status.get("gpu_bytes"))
    return "  ".join(part for part in (f"RAM {ram}" if ram else "", f"GPU {gpu}" if gpu else "") if part)


def status_parts(snap: RunSnapshot) -> list[tuple[int, str | tuple[str, str]]]:
    """The line's parts in the order they are shown, each with its rank: 0 is kept longest."""
    st = snap.status
    running = snap.state == "running"
    live = running or snap.state == "paused"
    rate = st.get("steps_per_s", 0.0) if running else 0.0
    remaining = max(0, snap.total_steps - snap.step)
    if snap.state in ("running", "paused", "starting", "new"):
        when = f"ETA {fmt_duration(remaining / rate)}" if rate > 0 else "ETA -"
    else:  # the run has ended: how long it took
        when = f"took {fmt_duration(st.get('elapsed', 0.0))}"
    parts: list[tuple[int, str | tuple[str, str]]] = [
        (0, (f"● {snap.state}", STATE_STYLE.get(snap.state, ""))),
        (5, f"{snap.device or '…'}"),
        (1, f"step {snap.step:,}/{snap.total_steps:,}"),
        (6, f"epoch {st['epoch']:.2f}" if st.get("epoch") is not None else ""),
        (3, f"{rate:,.1f} steps/s" if live else ""),  # (an ended run's speeds are all 0)
        (7, f"{st.get('samples_per_s', 0.0) if rate else 0.0:,.0f} {st.get('unit', 'samples')}/s" if live else ""),
        (8, memory_text(st) if live else ""),
        (4, f"{fmt_duration(st.get('elapsed', 0.0))} elapsed" if live else ""),
        (2, when),
    ]
    return [(rank, part) for rank, part in parts if part]


def status_text(snap: RunSnapshot | None, width: int | None = None) -> Text:
    """The status line for ``snap``, its least important parts left out until it fits
    ``width`` cells (None: all of them)."""
    if snap is None:
        return Text.assemble(("● no run", "dim"), "  press ", ("s", "bold"), " to start training")
    parts = status_parts(snap)
    while True:
        text = Text.assemble(*[p if i == 0 else ("  " + p if isinstance(p, str) else ("  " + p[0], p[1]))
                               for i, (_, p) in enumerate(parts)])
        if width is None or text.cell_len <= width or len(parts) == 1:
            return text
        parts.remove(max(parts, key=lambda rp: rp[0]))


class StatusLine(Widget):
    """Repaints itself only when its text changes, and never asks for a new layout."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._snap: RunSnapshot | None = None
        self._fixed: Text | None = status_text(None)  # a message shown as it is (no run, a run starting)
        self._text = self._fixed

    def render(self) -> Text:
        if self._fixed is not None:
            return self._fixed
        self._text = status_text(self._snap, self.content_size.width or None)
        return self._text

    def update_from(self, snap: RunSnapshot | None) -> None:
        if snap is None:
            self.show(status_text(None))
            return
        self._snap = snap
        text = status_text(snap, self.content_size.width or None)
        if self._fixed is not None or text.plain != self._text.plain or text.spans != self._text.spans:
            self._fixed = None
            self._text = text
            self.refresh()

    def show(self, text: Text) -> None:
        """Show ``text`` as it is until the next snapshot."""
        if self._fixed is None or text.plain != self._fixed.plain or text.spans != self._fixed.spans:
            self._fixed = self._text = text
            self.refresh()
