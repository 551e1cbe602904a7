"""Text for the GPT lesson: an English corpus that needs no download, a user's own text file,
and two tokenisers (characters and words).

The embedded corpus is the documentation that ships inside every CPython: the help topics
``help()`` shows (``pydoc_data.topics``), about half a megabyte of English about Python
with code examples in it. A model trained on it writes "doc-like" English.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

MIN_CHARS = 2_000  # a corpus shorter than this cannot fill a validation split and batches
MAX_BYTES = 200_000_000  # refuse to read files bigger than this into memory
WORD_UNK = "⁇"  # the word tokeniser's stand-in for words outside its vocabulary


def python_docs() -> str:
    """The help topics of this Python's own documentation, in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n"


def read_text_file(path: str | Path) -> str:
    """A learner's corpus, with a message they can act on for each way it can be unusable."""
    p = Path(path).expanduser()
    if not str(path).strip():
        raise ValueError("corpus=file needs corpus_path: the path of a UTF-8 text file")
    if not p.exists():
        raise ValueError(f"corpus file {p} does not exist")
    if p.is_dir():
        raise ValueError(f"corpus path {p} is a folder; give the path of one UTF-8 text file")
    size = p.stat().st_size
    if size == 0:
        raise ValueError(f"corpus file {p} is empty")
    if size > MAX_BYTES:
        raise ValueError(f"corpus file {p} is {size / 1e6:,.0f} MB; the limit is {MAX_BYTES / 1e6:,.0f} MB")
    raw = p.read_bytes()
    if b"\x00" in raw[:65536]:
        raise ValueError(f"corpus file {p} looks binary (it contains NUL bytes); give a plain text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"corpus file {p} is not UTF-8 (a bad byte on line {line}); "
                         "convert it, e.g. iconv -f latin1 -t utf-8") from None
    text = text.replace("\r\n", "\n")
    if len(text.strip()) < MIN_CHARS:
        raise ValueError(f"corpus file {p} has {len(text.strip()):,} characters; at least {MIN_CHARS:,} are needed")
    return text


class CharTokenizer:
    """One token per character: the vocabulary is every character in the corpus."""

    kind = "char"

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}

    @classmethod
    def fit(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            shown = " ".join(repr(c) for c in unknown[:8])
            raise ValueError(f"the model has never seen these characters: {shown}")
        return [self.index[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in ids)

    def piece(self, i: int) -> str:
        return self.vocab[i]


# Words, runs of spaces, line breaks, and single punctuation marks are each one token, so
# decoding is joining: nothing is lost but words outside the vocabulary.
WORD_PATTERN = re.compile(r"\w+|\n|[^\S\n]+|[^\w\s]")


class WordTokenizer:
    """One token per word, space run or punctuation mark; the ``size`` most frequent are
    kept and the rest become one unknown token."""

    kind = "word"

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.unk = self.index[WORD_UNK]

    @classmethod
    def fit(cls, text: str, size: int) -> "WordTokenizer":
        counts = Counter(WORD_PATTERN.findall(text))
        # Most frequent first; ties broken alphabetically so the vocabulary is reproducible.
        common = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: size - 1]
        return cls([WORD_UNK] + sorted(t for t, _ in common))

    def encode(self, text: str) -> list[int]:
        return [self.index.get(t, self.unk) for t in WORD_PATTERN.findall(text)]

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in ids)

    def piece(self, i: int) -> str:
        return self.vocab[i]

