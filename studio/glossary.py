"""The glossary (assets/glossary.toml): every term the lessons lean on, defined once.

A lesson marks the first use of a term with a link, ``[KL divergence](term:kl)``; the
lesson screen shows the definition in place (studio.screens.term.show_term), and the
review deck turns each term into a card (studio.review). Torch-free."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from studio.lessons import ASSETS

GLOSSARY_PATH = ASSETS / "glossary.toml"
TERM_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# [KL divergence](term:kl): the label may wrap onto the next line of the lesson's source.
TERM_LINK = re.compile(r"\[([^\]]+)\]\(term:([^)\s]*)\)")


class GlossaryError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    id: str
    term: str  # as a heading shows it: "KL divergence"
    aliases: tuple[str, ...]  # how the lessons write it: "KL", "KL divergence"
    lessons: tuple[str, ...]  # where it matters
    definition: str  # one paragraph


def parse_glossary(text: str, path: Path | None = None) -> dict[str, Term]:
    """Terms by id; GlossaryError says which entry is malformed and how."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GlossaryError(f"{path}: {e}") from None
    terms = {}
    for term_id, entry in data.items():
        where = f"{path}: [{term_id}]"
        if not TERM_ID.match(term_id):
            raise GlossaryError(f"{where}: an id is lower-case words joined by hyphens")
        if not isinstance(entry, dict):
            raise GlossaryError(f"{where} is not a table")
        try:
            term, aliases, lessons, definition = (entry["term"], entry["aliases"], entry["lessons"],
                                                  entry["definition"])
        except KeyError as e:
            raise GlossaryError(f"{where} lacks {e}") from None
        if not (isinstance(term, str) and isinstance(definition, str) and term.strip() and definition.strip()):
            raise GlossaryError(f"{where}: term and definition are non-empty strings")
        if not (isinstance(aliases, list) and aliases and all(isinstance(a, str) and a for a in aliases)):
            raise GlossaryError(f"{where}: aliases is a non-empty list of strings")
        if not (isinstance(lessons, list) and lessons and all(isinstance(l, str) for l in lessons)):
            raise GlossaryError(f"{where}: lessons is a non-empty list of lesson ids")
        # The file wraps definitions for reading; a definition is one paragraph.
        terms[term_id] = Term(term_id, term.strip(), tuple(aliases), tuple(lessons), " ".join(definition.split()))
    return terms


def load_glossary(path: Path = GLOSSARY_PATH) -> dict[str, Term]:
    return parse_glossary(path.read_text(encoding="utf-8"), path)


def term_links(body: str) -> list[tuple[str, str]]:
    """(label, term id) of every term link in a lesson's text, in reading order."""
    return [(" ".join(label.split()), term_id) for label, term_id in TERM_LINK.findall(body)]


def term_id_of(href: str) -> str | None:
    """``term:kl`` -> ``kl``; None for any other link."""
    return href.removeprefix("term:") if href.startswith("term:") else None
