"""An English-to-French parallel corpus written by code, so the translator lesson needs no
download, and the tokenisers and file loader that go with it.

Three kinds of pairs, each chosen because French does something English does not:

- **Numbers in words** (0 to 9,999): French counts in twenties from 60 up ("soixante-dix"
  is sixty-ten, "quatre-vingt-dix-sept" is four-twenty-ten-seven), says "et un" in 21, 31,
  41, 51, 61 and 71 but not in 81 or 91, and writes "quatre-vingts" and "deux cents" with
  an s only when nothing follows. English follows the British style: "two hundred and one".
- **Dates**: "march 3, 2021" becomes "le 3 mars 2021" (digits are copied, the month is
  translated and moves), "the third of march" becomes "le trois mars", and the first of
  a month is "premier" (written "1er" with digits).
- **Sentences** from a small grammar: French adjectives agree with the noun in gender and
  number, and most of them (colours, "heavy", "fast") go *after* the noun, while a few
  (petit, grand, beau, nouveau, vieux, jeune, joli) stay before it:
  "a small white house" -> "une petite maison blanche". Every noun and adjective starts
  with a consonant, so no elision (l', cet, bel) is needed.

All text is lowercase. Each English sentence has exactly one French translation, so an
exact match against the reference is a fair score.

Tokens are words, with three rules so that ``detokenize(tokenize(s)) == s`` for every
sentence generated here:

- a hyphen is a token of its own and joins its neighbours without spaces:
  "soixante-dix" <-> ["soixante", "-", "dix"], so "dix" is one token wherever it appears;
- a number written with digits is one token per digit, and digits join each other:
  "2021" <-> ["2", "0", "2", "1"], so a model can copy any year digit by digit; a digit
  run followed by letters ("1er") stays one token;
- punctuation is a token of its own that joins the word before it ("3," <-> ["3", ","]);
  an apostrophe joins both sides (l'eau <-> ["l", "'", "eau"]).

A learner's own text round-trips up to spacing (French writes "comment ?" with a space
that comes back as "comment?").
"""

from __future__ import annotations

import calendar
import functools
import random
import re
from pathlib import Path
from typing import NamedTuple

# -- numbers ------------------------------------------------------------------------------

_FR_SMALL = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
             "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf"]
_FR_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}

_EN_SMALL = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}

MAX_NUMBER = 9_999  # the corpus draws numbers up to this; french_number itself goes to 999,999


def _fr_below_100(n: int, final: bool) -> str:
    """1..99. ``final``: nothing follows (quatre-vingts keeps its s only then)."""
    if n < 20:
        return _FR_SMALL[n]
    tens, unit = divmod(n, 10)
    if tens == 7:  # 70..79 = soixante + 10..19
        return "soixante et onze" if n == 71 else "soixante-" + _FR_SMALL[n - 60]
    if tens in (8, 9):  # 80..99 = quatre-vingt(s) + 0..19, never with "et"
        rest = n - 80
        if rest == 0:
            return "quatre-vingts" if final else "quatre-vingt"
        return "quatre-vingt-" + _FR_SMALL[rest]
    if unit == 0:
        return _FR_TENS[tens]
    if unit == 1:
        return _FR_TENS[tens] + " et un"  # vingt et un ... soixante et un
    return _FR_TENS[tens] + "-" + _FR_SMALL[unit]


def _fr_below_1000(n: int, final: bool) -> str:
    """1..999. "cent" takes an s when multiplied and final: deux cents, deux cent un."""
    hundreds, rest = divmod(n, 100)
    if hundreds == 0:
        return _fr_below_100(rest, final)
    head = "cent" if hundreds == 1 else _FR_SMALL[hundreds] + " cent"
    if rest == 0:
        return head + ("s" if hundreds > 1 and final else "")
    return head + " " + _fr_below_100(rest, final)


def french_number(n: int) -> str:
    """A whole number 0..999,999 in French words (traditional spelling: hyphens only inside
    the numbers below 100, none around cent and mille). "mille" never takes an s and
    needs no "un" before it; cent and quatre-vingt lose their s before mille."""
    if not 0 <= n <= 999_999:
        raise ValueError(f"french_number covers 0..999,999, not {n}")
    if n == 0:
        return _FR_SMALL[0]
    thousands, rest = divmod(n, 1000)
    if thousands == 0:
        return _fr_below_1000(rest, final=True)
    head = "mille" if thousands == 1 else _fr_below_1000(thousands, final=False) + " mille"
    return head if rest == 0 else head + " " + _fr_below_1000(rest, final=True)


def _en_below_100(n: int) -> str:
    if n < 20:
        return _EN_SMALL[n]
    tens, unit = divmod(n, 10)
    return _EN_TENS[tens] + ("-" + _EN_SMALL[unit] if unit else "")


def _en_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if hundreds == 0:
        return _en_below_100(rest)
    head = _EN_SMALL[hundreds] + " hundred"
    return head if rest == 0 else head + " and " + _en_below_100(rest)


def english_number(n: int) -> str:
    """A whole number 0..999,999 in English words, British style: "and" before the last
    part below 100 ("two hundred and one", "one thousand and five")."""
    if not 0 <= n <= 999_999:
        raise ValueError(f"english_number covers 0..999,999, not {n}")
    if n < 1000:
        return _en_below_1000(n) if n else _EN_SMALL[0]
    thousands, rest = divmod(n, 1000)
    head = _en_below_1000(thousands) + " thousand"
    if rest == 0:
        return head
    return head + (" and " if rest < 100 else " ") + _en_below_1000(rest)


# -- dates --------------------------------------------------------------------------------

MONTHS = [("january", "janvier"), ("february", "février"), ("march", "mars"), ("april", "avril"),
          ("may", "mai"), ("june", "juin"), ("july", "juillet"), ("august", "août"),
          ("september", "septembre"), ("october", "octobre"), ("november", "novembre"), ("december", "décembre")]
YEARS = (1900, 2099)  # years drawn for dates, inclusive

_EN_ORDINAL_SMALL = ["", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
                     "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
                     "seventeenth", "eighteenth", "nineteenth"]


def english_ordinal(n: int) -> str:
    """1..31 as an English ordinal word: "twenty-first", "thirtieth"."""
    if n < 20:
        return _EN_ORDINAL_SMALL[n]
    tens, unit = divmod(n, 10)
    if unit == 0:
        return _EN_TENS[tens][:-1] + "ieth"  # twenty -> twentieth
    return _EN_TENS[tens] + "-" + _EN_ORDINAL_SMALL[unit]


def date_pair(day: int, month: int, year: int | None, words: bool) -> tuple[str, str]:
    """One date in English and French. ``words``: "the third of march" -> "le trois mars";
    otherwise "march 3, 2021" -> "le 3 mars 2021". French dates use cardinal numbers,
    except for the first of the month: "le premier mai", "le 1er mai"."""
    en_month, fr_month = MONTHS[month - 1]
    if words:
        en = f"the {english_ordinal(day)} of {en_month}"
        fr = f"le {'premier' if day == 1 else french_number(day)} {fr_month}"
    else:
        en = f"{en_month} {day}"
        fr = f"le {'1er' if day == 1 else day} {fr_month}"
    if year is not None:
        en += f", {year}" if not words else f" {year}"
        fr += f" {year}"
    return en, fr


# -- sentences ----------------------------------------------------------------------------

# (English singular, English plural, French singular, French plural, gender)
NOUNS = [
    ("cat", "cats", "chat", "chats", "m"), ("dog", "dogs", "chien", "chiens", "m"),
    ("book", "books", "livre", "livres", "m"), ("bike", "bikes", "vélo", "vélos", "m"),
    ("boat", "boats", "bateau", "bateaux", "m"), ("truck", "trucks", "camion", "camions", "m"),
    ("garden", "gardens", "jardin", "jardins", "m"), ("horse", "horses", "cheval", "chevaux", "m"),
    ("cake", "cakes", "gâteau", "gâteaux", "m"), ("coat", "coats", "manteau", "manteaux", "m"),
    ("car", "cars", "voiture", "voitures", "f"), ("house", "houses", "maison", "maisons", "f"),
    ("table", "tables", "table", "tables", "f"), ("chair", "chairs", "chaise", "chaises", "f"),
    ("apple", "apples", "pomme", "pommes", "f"), ("flower", "flowers", "fleur", "fleurs", "f"),
    ("dress", "dresses", "robe", "robes", "f"), ("door", "doors", "porte", "portes", "f"),
    ("cup", "cups", "tasse", "tasses", "f"), ("lamp", "lamps", "lampe", "lampes", "f"),
]

# English -> French forms (masculine singular, feminine singular, masculine plural,
# feminine plural). BEFORE_NOUN are the few that precede the noun; the rest follow it.
ADJECTIVES = {
    "small": ("petit", "petite", "petits", "petites"), "big": ("grand", "grande", "grands", "grandes"),
    "beautiful": ("beau", "belle", "beaux", "belles"), "new": ("nouveau", "nouvelle", "nouveaux", "nouvelles"),
    "old": ("vieux", "vieille", "vieux", "vieilles"), "young": ("jeune", "jeune", "jeunes", "jeunes"),
    "pretty": ("joli", "jolie", "jolis", "jolies"),
    "red": ("rouge", "rouge", "rouges", "rouges"), "white": ("blanc", "blanche", "blancs", "blanches"),
    "black": ("noir", "noire", "noirs", "noires"), "green": ("vert", "verte", "verts", "vertes"),
    "blue": ("bleu", "bleue", "bleus", "bleues"), "grey": ("gris", "grise", "gris", "grises"),
    "heavy": ("lourd", "lourde", "lourds", "lourdes"), "fast": ("rapide", "rapide", "rapides", "rapides"),
}
BEFORE_NOUN = ("small", "big", "beautiful", "new", "old", "young", "pretty")
AFTER_NOUN = tuple(a for a in ADJECTIVES if a not in BEFORE_NOUN)

# English (singular, plural) -> French (masculine singular, feminine singular, plural)
DETERMINERS = {("the", "the"): ("le", "la", "les"), ("a", None): ("un", "une", None),
               ("my", "my"): ("mon", "ma", "mes"), ("this", "these"): ("ce", "cette", "ces")}

# English (third person singular, plural) -> French (singular, plural)
VERBS = {("sees", "see"): ("voit", "voient"), ("likes", "like"): ("aime", "aiment"),
         ("has", "have"): ("a", "ont"), ("wants", "want"): ("veut", "veulent"),
         ("finds", "find"): ("trouve", "trouvent")}
BE = ("is", "are"), ("est", "sont")


def _form(forms: tuple, gender: str, plural: bool) -> str:
    return forms[(2 if plural else 0) + (gender == "f")]


class Phrase(NamedTuple):
    en: str
    fr: str
    gender: str  # the French noun's: "m" or "f"
    plural: bool


_NOUN_BY_EN = {entry[0]: entry for entry in NOUNS}
_DET_BY_EN = {en_sg: (en_pl, fr) for (en_sg, en_pl), fr in DETERMINERS.items()}
_VERB_BY_EN = {en[0]: (en, fr) for en, fr in VERBS.items()}


def noun_phrase(noun: str, det: str = "the", before: str | None = None, after: str | None = None,
                plural: bool = False) -> Phrase:
    """English "det [before] [after] noun" -> French "det [before] noun [after]", every word
    agreeing with the noun's gender and number: ("house", "a", "small", "white") gives
    "a small white house" -> "une petite maison blanche". ``noun`` and ``det`` are English
    singulars; ``before`` is one of BEFORE_NOUN, ``after`` one of AFTER_NOUN."""
    en_sg, en_pl, fr_sg, fr_pl, gender = _NOUN_BY_EN[noun]
    en_det_pl, fr_det = _DET_BY_EN[det]
    if (before and before not in BEFORE_NOUN) or (after and after not in AFTER_NOUN) or (plural and not en_det_pl):
        raise ValueError(f"no such phrase: {det} {before} {after} {noun} (plural={plural})")
    en = [en_det_pl if plural else det] + [a for a in (before, after) if a] + [en_pl if plural else en_sg]
    fr = [fr_det[2] if plural else fr_det[gender == "f"]]
    fr += [_form(ADJECTIVES[before], gender, plural)] if before else []
    fr += [fr_pl if plural else fr_sg]
    fr += [_form(ADJECTIVES[after], gender, plural)] if after else []
    return Phrase(" ".join(en), " ".join(fr), gender, plural)


def is_sentence(subject: Phrase, adjective: str) -> tuple[str, str]:
    """"the red car is big" -> "la voiture rouge est grande": the adjective after the verb
    agrees with the subject too (and stays after the verb, whatever its kind)."""
    fr_adj = _form(ADJECTIVES[adjective], subject.gender, subject.plural)
    return f"{subject.en} {BE[0][subject.plural]} {adjective}", f"{subject.fr} {BE[1][subject.plural]} {fr_adj}"


def verb_sentence(subject: Phrase, verb: str, obj: Phrase) -> tuple[str, str]:
    """Subject, verb, object, the verb agreeing with the subject's number: ``verb`` is the
    English third person singular ("sees"); "the cats see my dog" -> "les chats voient mon chien"."""
    en_verb, fr_verb = _VERB_BY_EN[verb]
    return f"{subject.en} {en_verb[subject.plural]} {obj.en}", f"{subject.fr} {fr_verb[subject.plural]} {obj.fr}"


def random_noun_phrase(rng: random.Random) -> Phrase:
    """A random noun with a random determiner, and up to two adjectives."""
    det, plural_det = rng.choice(list(DETERMINERS))
    return noun_phrase(rng.choice(NOUNS)[0], det,
                       before=rng.choice(BEFORE_NOUN) if rng.random() < 0.5 else None,
                       after=rng.choice(AFTER_NOUN) if rng.random() < 0.55 else None,
                       plural=plural_det is not None and rng.random() < 0.35)


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    """A noun phrase alone, with "is"/"are" and an adjective, or with a verb and an object."""
    subject = random_noun_phrase(rng)
    kind = rng.random()
    if kind < 0.2:
        return subject.en, subject.fr
    if kind < 0.55:
        return is_sentence(subject, rng.choice(list(ADJECTIVES)))
    return verb_sentence(subject, rng.choice(list(_VERB_BY_EN)), random_noun_phrase(rng))


# -- the corpus ---------------------------------------------------------------------------

MIX = (("number", 0.3), ("date", 0.2), ("sentence", 0.5))  # share of each kind of pair


def random_number(rng: random.Random) -> int:
    """As many 1-, 2-, 3- and 4-digit numbers as each other, so the irregular 70s and 90s
    are not drowned among the thousands."""
    digits = rng.randint(1, 4)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits - 1)


def random_pair(rng: random.Random) -> tuple[str, str]:
    """One (English, French) pair of a random kind (see MIX)."""
    kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
    if kind == "number":
        n = random_number(rng)
        return english_number(n), french_number(n)
    if kind == "date":
        year = rng.randint(*YEARS)
        month = rng.randint(1, 12)
        day = rng.randint(1, calendar.monthrange(year, month)[1])
        words = rng.random() < 0.4
        return date_pair(day, month, year if not words or rng.random() < 0.3 else None, words)
    return sentence_pair(rng)


# Numbers below 100 are never held out. There are so few of them that the held-out draw
# would take every one-word number ("seven") and many two-word ones: a model that never
# saw a number standing alone cannot be expected to know that "seven" alone is "sept"
# alone, any more than one that never saw "seventy" can guess where it ends.
_NEVER_HELD_OUT = frozenset(english_number(n) for n in range(100))


Pairs = list[tuple[str, str]]  # (English, French)


def make_split(train_size: int, seed: int, heldout_size: int = 500) -> tuple[Pairs, Pairs]:
    """(train, held-out) pairs, the same for the same arguments. The held-out pairs are
    distinct and none of their English sentences appears in the training set, so the
    held-out score measures translating sentences the model has never seen. Training
    pairs are drawn independently and may repeat (the few hundred word dates would run
    out otherwise)."""
    rng = random.Random(seed)
    heldout: dict[str, str] = {}
    while len(heldout) < heldout_size:
        en, fr = random_pair(rng)
        if en not in _NEVER_HELD_OUT:
            heldout.setdefault(en, fr)
    train = []
    while len(train) < train_size:
        en, fr = random_pair(rng)
        if en not in heldout:
            train.append((en, fr))
    return train, list(heldout.items())


def split_pairs(pairs: Pairs, seed: int, share: float = 0.1, most: int = 500) -> tuple[Pairs, Pairs]:
    """Split a learner's pairs into (train, held-out): a seeded share of the distinct English
    sentences (at most ``most``) is held out with all its translations."""
    sentences = sorted({en for en, _ in pairs})
    random.Random(seed).shuffle(sentences)
    held = set(sentences[: max(1, min(most, int(len(sentences) * share)))])
    return [p for p in pairs if p[0] not in held], [p for p in pairs if p[0] in held]


# -- tokens -------------------------------------------------------------------------------

_PIECE = re.compile(r"\d+[^\W\d_]+|\d|[^\W\d_]+|[^\w\s]")  # ordinal like 1er | digit | word | mark
_JOIN_BEFORE = {",", ".", "!", "?", ";", ":", "-", "'", ")"}  # no space before these
_JOIN_AFTER = {"-", "'", "("}  # no space after these


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens (see the module docstring for hyphens, digits, punctuation)."""
    return _PIECE.findall(text.lower())


def detokenize(tokens: list[str]) -> str:
    """The inverse of tokenize for the corpus's sentences: spaces between tokens, except
    around the joining marks and between digits."""
    out: list[str] = []
    for tok in tokens:
        if out and not (tok in _JOIN_BEFORE or out[-1] in _JOIN_AFTER or (tok.isdigit() and out[-1].isdigit())):
            out.append(" ")
        out.append(tok)
    return "".join(out)


class Vocab:
    """Token <-> id for one language. Ids 0..3 are the specials: padding (fills a batch to
    one length), start and end of a sentence (the decoder starts from BOS and stops at EOS)
    and unknown (any token the vocabulary lacks)."""

    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

    def __init__(self, words: list[str]):
        self.words = list(self.SPECIALS) + [w for w in words if w not in self.SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def fit(cls, texts) -> "Vocab":
        """Every token of ``texts``, in sorted order (so the same texts give the same ids)."""
        return cls(sorted({t for text in texts for t in tokenize(text)}))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(t, self.UNK) for t in tokenize(text)]

    def unknown(self, text: str) -> list[str]:
        """The tokens of ``text`` this vocabulary does not have, in order, once each."""
        return list(dict.fromkeys(t for t in tokenize(text) if t not in self.index))

    def tokens(self, ids) -> list[str]:
        """Ids -> tokens, stopping at EOS and skipping padding and BOS."""
        out = []
        for i in ids:
            if i == self.EOS:
                break
            if i not in (self.PAD, self.BOS):
                out.append(self.words[i])
        return out

    def decode(self, ids) -> str:
        return detokenize(self.tokens(ids))


@functools.lru_cache(maxsize=1)
def generated_vocabs() -> tuple[Vocab, Vocab]:
    """(English, French) vocabularies of every token the generator can write. They depend
    on the code only, not on the seed or the training-set size, so a checkpoint can be
    loaded without generating any data."""
    en_texts, fr_texts = [], []
    for n in range(MAX_NUMBER + 1):
        en_texts.append(english_number(n))
        fr_texts.append(french_number(n))
    for month in range(1, 13):
        for day in range(1, 32):
            for words in (False, True):
                en, fr = date_pair(day, month, 2019, words)  # 2019: every digit after the split
                en_texts.append(en)
                fr_texts.append(fr)
    en_texts.append("0 1 2 3 4 5 6 7 8 9")
    fr_texts.append("0 1 2 3 4 5 6 7 8 9")
    for (en_sg, en_pl, fr_sg, fr_pl, _) in NOUNS:
        en_texts.append(f"{en_sg} {en_pl}")
        fr_texts.append(f"{fr_sg} {fr_pl}")
    en_texts += list(ADJECTIVES) + [w for pair in DETERMINERS for w in pair if w] + [w for pair in VERBS for w in pair]
    fr_texts += [w for forms in ADJECTIVES.values() for w in forms]
    fr_texts += [w for forms in DETERMINERS.values() for w in forms if w] + [w for pair in VERBS.values() for w in pair]
    en_texts += list(BE[0])
    fr_texts += list(BE[1])
    return Vocab.fit(en_texts), Vocab.fit(fr_texts)


# -- a learner's own pairs ----------------------------------------------------------------

MIN_FILE_PAIRS = 20  # fewer cannot fill a held-out set and a training set
MAX_FILE_BYTES = 100_000_000


def load_pairs_tsv(path: str | Path, min_pairs: int = MIN_FILE_PAIRS) -> list[tuple[str, str]]:
    """Pairs from a tab-separated file, one ``english<TAB>french`` per line, lowercased.
    Blank lines are skipped. Every way the file can be unusable raises ValueError with a
    message that names the file (and the line) and says what to do."""
    if not str(path).strip():
        raise ValueError("dataset=file needs data_path: a UTF-8 text file with one english<TAB>french pair a line")
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"translation pairs file {p} does not exist")
    if p.is_dir():
        raise ValueError(f"{p} is a folder; data_path must be one tab-separated text file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{p} is {size / 1e6:,.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:,.0f} MB")
    raw = p.read_bytes()
    if not raw.strip():
        raise ValueError(f"translation pairs file {p} is empty; write one english<TAB>french pair a line")
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ValueError(f"{p} looks binary (a NUL byte on line {line}); give a plain UTF-8 text file")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is dropped
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{p} is not UTF-8 (a bad byte on line {line}); convert it, "
                         f"e.g. iconv -f latin1 -t utf-8 {p.name} > pairs.tsv") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            hint = (" (keep the first two columns with: cut -f1,2 FILE > pairs.tsv)" if len(parts) > 2
                    else " (separate the English and the French with one tab)")
            raise ValueError(f"{p}, line {number}: expected english<TAB>french with exactly one tab, found "
                             f"{len(parts) - 1}: {line[:60]!r}{hint}")
        en, fr = parts[0].strip().lower(), parts[1].strip().lower()
        if not tokenize(en) or not tokenize(fr):
            raise ValueError(f"{p}, line {number}: one side of the pair is empty: {line[:60]!r}")
        pairs.append((en, fr))
    if len(pairs) < min_pairs:
        raise ValueError(f"{p} has {len(pairs)} pair{'s' if len(pairs) != 1 else ''}; a translator needs at "
                         f"least {min_pairs} (thousands to translate new sentences well)")
    return pairs
