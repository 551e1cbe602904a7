"""The lesson's links to code, as a list the keyboard can reach: ↑/↓ and Enter jump to the
definition in the Code tab (a click on the link in the text does the same)."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

LINK = re.compile(r"\[([^\]]+)\]\((code:[^)\s]+)\)")


def code_links(body: str) -> list[tuple[str, str]]:
    """(label, href) of every code link in a lesson's text, in reading order, each once."""
    seen, out = set(), []
    for label, href in LINK.findall(body):
        if href not in seen:
            seen.add(href)
            out.append((re.sub(r"[`*]", "", label), href))  # identifiers keep their underscores
    return out


class CodeLinks(ModalScreen[str | None]):
    """Returns the chosen link's href, or None."""

    DEFAULT_CSS = """
    CodeLinks { align: center middle; }
    CodeLinks > Vertical { width: 72; max-width: 95%; height: auto; max-height: 90%; border: round $primary;
                           background: $surface; padding: 0 1; }
    CodeLinks #links-help { height: auto; color: $text-muted; }
    CodeLinks OptionList { height: auto; max-height: 20; }
    """
    BINDINGS = [Binding("escape,k", "dismiss_none", "Back")]

    def __init__(self, links: list[tuple[str, str]]) -> None:
        super().__init__()
        self.links = links

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("The code this lesson's text links to. ↑/↓ choose, Enter shows it in the Code tab, Esc goes "
                         "back.", id="links-help")
            yield OptionList(*[Option(Text.assemble((label, "bold"), "  ", (href.removeprefix("code:"), "dim")), id=href)
                               for label, href in self.links], id="links")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
