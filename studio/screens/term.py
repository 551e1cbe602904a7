"""Glossary terms in place: a small window over the lesson with a term's definition.

A lesson marks a term with a link, ``[KL divergence](term:kl)``. :func:`show_term` is
what the lesson screen calls when such a link is clicked; :func:`choose_term` lists every
term the lesson marks, so the keyboard can reach them too (↑/↓ shows each definition)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from studio.glossary import GlossaryError, Term, load_glossary, term_id_of, term_links
from studio.lessons import load_lessons


class TermScreen(ModalScreen[None]):
    """One term's definition, or a list of terms with the highlighted one's definition."""

    DEFAULT_CSS = """
    TermScreen { align: center middle; }
    TermScreen > Vertical { width: 72; max-width: 95%; height: auto; max-height: 90%; border: round $primary;
                            background: $surface; padding: 0 1; }
    TermScreen OptionList { height: auto; max-height: 8; margin-bottom: 1; }
    TermScreen #term-name { text-style: bold; }
    TermScreen #term-where, TermScreen #term-help { color: $text-muted; }
    TermScreen #term-help { margin-top: 1; }
    """
    BINDINGS = [Binding("escape,enter,space", "close", "Close", tooltip="Back to the lesson")]

    def __init__(self, terms: list[Term], start: int = 0) -> None:
        super().__init__()
        self.terms = terms
        self.start = start
        self.titles = {l.id: l.title for l in load_lessons()}

    def compose(self) -> ComposeResult:
        with Vertical():
            if len(self.terms) > 1:
                yield OptionList(*[Option(t.term, id=t.id) for t in self.terms], id="term-list")
            yield Static(id="term-name")
            yield Static(id="term-definition")
            yield Static(id="term-where")
            more = "↑/↓ another term, " if len(self.terms) > 1 else ""
            yield Static(f"{more}Esc closes.", id="term-help")

    def on_mount(self) -> None:
        if len(self.terms) > 1:
            options = self.query_one(OptionList)
            options.highlighted = self.start
            options.focus()
        self.show(self.terms[self.start])

    def show(self, term: Term) -> None:
        self.query_one("#term-name", Static).update(Text(term.term))
        self.query_one("#term-definition", Static).update(Text(term.definition))
        where = ", ".join(self.titles[l] for l in term.lessons if l in self.titles)
        self.query_one("#term-where", Static).update(Text(f"Matters in: {where}" if where else ""))

    @on(OptionList.OptionHighlighted)
    def highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show(self.terms[event.option_index])

    @on(OptionList.OptionSelected)
    def selected(self) -> None:
        self.dismiss()

    def on_click(self, event) -> None:
        if event.widget is self:  # a click outside the window
            self.dismiss()

    def action_close(self) -> None:
        self.dismiss()


def _glossary(screen: Screen) -> dict[str, Term] | None:
    try:
        return load_glossary()
    except (OSError, GlossaryError) as e:
        screen.notify(f"The glossary cannot be read: {e}", severity="error")
        return None


def show_term(screen: Screen, href: str) -> bool:
    """Show the definition of a ``term:ID`` link over ``screen``. Returns False for any
    other link (the caller handles it as before); an unknown term gets a warning."""
    term_id = term_id_of(href)
    if term_id is None:
        return False
    glossary = _glossary(screen)
    if glossary is None:
        return True
    if term_id not in glossary:
        screen.notify(f"No glossary entry for {term_id!r}", severity="warning")
        return True
    screen.app.push_screen(TermScreen([glossary[term_id]]))
    return True


def choose_term(screen: Screen, body: str) -> bool:
    """List the terms a lesson's text marks, each once, in reading order; False when it
    marks none."""
    glossary = _glossary(screen)
    ids = dict.fromkeys(term_id for _, term_id in term_links(body) if glossary and term_id in glossary)
    if not ids:
        return False
    screen.app.push_screen(TermScreen([glossary[term_id] for term_id in ids]))
    return True
