"""The engine source that is training, highlighted, with a jump to any def or class."""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.widget import Widget
from textual.widgets import Static, Tab, Tabs

from studio.lessons import REPO_ROOT, find_symbol


def tab_label(path: str) -> str:
    """engine/models/vae.py -> models/vae.py: short, and unique among the lesson's files."""
    parts = Path(path).parts
    return "/".join(parts[1:]) if parts and parts[0] == "engine" else path


class CodeView(Widget):
    """Tabs of the lesson's engine files; ``show(path, symbol)`` highlights a definition."""

    DEFAULT_CSS = """
    CodeView { height: 1fr; }
    CodeView > Tabs { height: 2; }
    CodeView > #code-caption { height: 1; color: $text-muted; padding: 0 1; }
    CodeView > ScrollableContainer { height: 1fr; }
    CodeView #code-body { width: auto; }
    """

    def __init__(self, files: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.files = files
        self.current: str | None = None

    def compose(self) -> ComposeResult:
        yield Tabs(*[Tab(tab_label(f), id=f"code-{i}") for i, f in enumerate(self.files)])
        yield Static(id="code-caption")
        with ScrollableContainer():  # both ways: long lines scroll sideways (←/→), never cut
            yield Static(id="code-body")

    def on_mount(self) -> None:
        if self.files:
            self.show(self.files[0])

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        index = int(event.tab.id.split("-")[1])
        if self.files[index] != self.current:
            self.show(self.files[index])

    def show(self, rel_path: str, symbol: str | None = None) -> bool:
        """Show ``rel_path`` (relative to the project root); returns False if unknown."""
        path = REPO_ROOT / rel_path
        try:
            source = path.read_text(encoding="utf-8")
        except OSError:
            self.query_one("#code-caption", Static).update(f"cannot read {rel_path}")
            return False
        span = find_symbol(source, symbol)
        lines = set(range(span[0], span[1] + 1)) if span else None
        syntax = Syntax(source, "python", line_numbers=True, theme="monokai", highlight_lines=lines,
                        word_wrap=False, indent_guides=True)
        self.query_one("#code-body", Static).update(syntax)
        where = f"  lines {span[0]}-{span[1]}: {symbol}" if span else ""
        self.query_one("#code-caption", Static).update(f"{rel_path}  (the exact file that trains){where}")
        self.current = rel_path
        if rel_path in self.files:
            self.query_one(Tabs).active = f"code-{self.files.index(rel_path)}"
        scroll = self.query_one(ScrollableContainer)
        # After the new text is laid out: a tab shown for the first time has no height yet,
        # and a scroll asked for now would stop at line 1.
        self.call_after_refresh(scroll.scroll_to, y=max(0, span[0] - 3) if span else 0, animate=False)
        return True
