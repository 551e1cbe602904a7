"""Tabs whose labels shorten to fit their width, so every tab stays in sight.

Textual's tab bar scrolls sideways when its labels are wider than the bar: the last tabs
(the quiz, the model) were cut off at 120 columns with nothing saying they were there.
Here the names of the tabs that are not shown shorten ("4 Samp…") until all of them fit;
the shown tab keeps its whole name, and its number is always kept (it is the key).
"""

from __future__ import annotations

from textual import events
from textual.widgets import ContentSwitcher, TabbedContent, TabPane

PAD = 2  # a tab's padding: one cell each side
SHORTEST = 3  # the fewest letters of a name kept before the ellipsis


def shorten(label: str, letters: int) -> str:
    """"4 Samplers" with 4 letters is "4 Samp…"; a name that fits (or has no number) is kept."""
    number, _, name = label.partition(" ")
    if not name or len(name) <= letters + 1:
        return label
    return f"{number} {name[:letters]}…"


def fit_labels(labels: list[str], width: int, active: int | None = None) -> list[str]:
    """The labels, as long as possible, such that they all fit in ``width`` cells; the
    ``active`` one whole. When even the shortest names do not fit, only the numbers."""
    def total(shown: list[str]) -> int:
        return sum(len(label) + PAD for label in shown)

    if total(labels) <= width:
        return list(labels)
    longest = max(len(label.partition(" ")[2]) for label in labels)
    for letters in range(longest - 1, SHORTEST - 1, -1):
        shown = [label if i == active else shorten(label, letters) for i, label in enumerate(labels)]
        if total(shown) <= width:
            return shown
    return [label if i == active else label.partition(" ")[0] for i, label in enumerate(labels)]


class FittedTabs(TabbedContent):
    """A TabbedContent whose tab labels fit its width (see the module's docstring)."""

    def on_mount(self) -> None:
        panes = self.query_one(ContentSwitcher).query_children(TabPane)
        self._labels = {pane.id: str(self.get_tab(pane.id).label) for pane in panes}

    def on_resize(self, event: events.Resize) -> None:
        self.fit()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.fit()  # the message goes on to the screen: not stopped

    def fit(self) -> None:
        labels = getattr(self, "_labels", None)
        if not labels or not self.size.width:
            return
        ids = list(labels)
        active = ids.index(self.active) if self.active in ids else None
        for pane_id, label in zip(ids, fit_labels(list(labels.values()), self.size.width, active)):
            tab = self.get_tab(pane_id)
            if str(tab.label) != label:
                tab.label = label
