"""One line of run status: state, device, step, epoch, speed, elapsed, ETA."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from studio.headless import fmt_duration
from studio.messages import RunSnapshot

STATE_STYLE = {
    "running": "bold green", "paused": "bold yellow", "starting": "bold cyan", "finished": "bold blue",
    "stopped": "bold magenta", "failed": "bold red", "interrupted": "bold red", "new": "dim",
}


def status_text(snap: RunSnapshot | None) -> Text:
    if snap is None:
        return Text.assemble(("● no run", "dim"), "  press ", ("s", "bold"), " to start training")
    st = snap.status
    rate = st.get("steps_per_s", 0.0) if snap.state == "running" else 0.0
    remaining = max(0, snap.total_steps - snap.step)
    eta = fmt_duration(remaining / rate) if rate > 0 else "-"
    parts = [
        (f"● {snap.state}", STATE_STYLE.get(snap.state, "")),
        f"  {snap.device or '…'}",
        f"  step {snap.step:,}/{snap.total_steps:,}",
        f"  epoch {st['epoch']:.2f}" if st.get("epoch") is not None else "",
        f"  {rate:,.1f} steps/s",
        f"  {st.get('samples_per_s', 0.0) if rate else 0.0:,.0f} {st.get('unit', 'samples')}/s",
        f"  {fmt_duration(st.get('elapsed', 0.0))} elapsed",
        f"  ETA {eta}",
    ]
    return Text.assemble(*parts)


class StatusLine(Widget):
    """Repaints itself only when its text changes, and never asks for a new layout."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._text = status_text(None)

    def render(self) -> Text:
        return self._text

    def update_from(self, snap: RunSnapshot | None) -> None:
        self.show(status_text(snap))

    def show(self, text: Text) -> None:
        if text.plain != self._text.plain or text.spans != self._text.spans:
            self._text = text
            self.refresh()
