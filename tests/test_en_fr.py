"""The generated English-French corpus: French number words (the irregular ones too),
dates, agreement and adjective order, tokenisers that round-trip, a held-out set disjoint
from training, and a pairs-file loader with errors a learner can act on."""

from __future__ import annotations

import random

import pytest

from engine.data.en_fr import (Vocab, date_pair, detokenize, english_number, french_number, generated_vocabs,
                               is_sentence, load_pairs_tsv, make_split, noun_phrase, sentence_pair, split_pairs,
                               tokenize, verb_sentence)

FRENCH = {
    0: "zéro", 1: "un", 7: "sept", 10: "dix", 16: "seize", 17: "dix-sept", 19: "dix-neuf", 20: "vingt",
    21: "vingt et un", 22: "vingt-deux", 31: "trente et un", 61: "soixante et un", 69: "soixante-neuf",
    70: "soixante-dix", 71: "soixante et onze", 72: "soixante-douze", 77: "soixante-dix-sept",
    80: "quatre-vingts", 81: "quatre-vingt-un", 89: "quatre-vingt-neuf", 90: "quatre-vingt-dix",
    91: "quatre-vingt-onze", 99: "quatre-vingt-dix-neuf", 100: "cent", 101: "cent un", 180: "cent quatre-vingts",
    200: "deux cents", 201: "deux cent un", 280: "deux cent quatre-vingts", 999: "neuf cent quatre-vingt-dix-neuf",
    1000: "mille", 1001: "mille un", 1100: "mille cent", 1981: "mille neuf cent quatre-vingt-un",
    2000: "deux mille", 2021: "deux mille vingt et un", 9999: "neuf mille neuf cent quatre-vingt-dix-neuf",
    21000: "vingt et un mille", 80000: "quatre-vingt mille", 200000: "deux cent mille",
}

ENGLISH = {
    0: "zero", 13: "thirteen", 21: "twenty-one", 71: "seventy-one", 100: "one hundred",
    101: "one hundred and one", 201: "two hundred and one", 1000: "one thousand", 1005: "one thousand and five",
    1981: "one thousand nine hundred and eighty-one", 2000: "two thousand",
}


@pytest.mark.parametrize("n, words", sorted(FRENCH.items()))
def test_french_number_words(n, words):
    assert french_number(n) == words


@pytest.mark.parametrize("n, words", sorted(ENGLISH.items()))
def test_english_number_words(n, words):
    assert english_number(n) == words


def test_numbers_out_of_range_are_refused():
    with pytest.raises(ValueError, match="999,999"):
        french_number(1_000_000)
    with pytest.raises(ValueError):
        english_number(-1)


def test_dates():
    assert date_pair(3, 3, 2021, words=False) == ("march 3, 2021", "le 3 mars 2021")
    assert date_pair(1, 5, 2020, words=False) == ("may 1, 2020", "le 1er mai 2020")
    assert date_pair(3, 3, None, words=True) == ("the third of march", "le trois mars")
    assert date_pair(1, 5, None, words=True) == ("the first of may", "le premier mai")
    assert date_pair(21, 6, None, words=True) == ("the twenty-first of june", "le vingt et un juin")
    assert date_pair(30, 8, 1999, words=True) == ("the thirtieth of august 1999", "le trente août 1999")


@pytest.mark.parametrize("args, english, french", [
    (("house", "a", "small", "white"), "a small white house", "une petite maison blanche"),
    (("car", "the", None, "red"), "the red car", "la voiture rouge"),
    (("car", "the", "big", "white", True), "the big white cars", "les grandes voitures blanches"),
    (("horse", "my", "old", None, True), "my old horses", "mes vieux chevaux"),
    (("dress", "this", "beautiful", "grey", True), "these beautiful grey dresses", "ces belles robes grises"),
    (("boat", "this", "new", "fast"), "this new fast boat", "ce nouveau bateau rapide"),
    (("lamp", "my", "new"), "my new lamp", "ma nouvelle lampe"),
    (("cake", "a", "pretty", "green"), "a pretty green cake", "un joli gâteau vert"),
    (("chair", "the", "old", "black"), "the old black chair", "la vieille chaise noire"),
])
def test_noun_phrases_agree_and_reorder(args, english, french):
    phrase = noun_phrase(*args)
    assert (phrase.en, phrase.fr) == (english, french)


def test_sentences_agree_with_their_subject():
    assert is_sentence(noun_phrase("car", "the", None, "red"), "big") == ("the red car is big",
                                                                          "la voiture rouge est grande")
    assert is_sentence(noun_phrase("cat", "my", plural=True), "white") == ("my cats are white",
                                                                           "mes chats sont blancs")
    assert verb_sentence(noun_phrase("dog", "my", "old"), "likes", noun_phrase("apple", "the", None, "red", True)) == (
        "my old dog likes the red apples", "mon vieux chien aime les pommes rouges")
    assert verb_sentence(noun_phrase("cat", plural=True), "has", noun_phrase("cup", "a")) == (
        "the cats have a cup", "les chats ont une tasse")
    with pytest.raises(ValueError):
        noun_phrase("house", "a", plural=True)  # no plural of "a" in this corpus
    with pytest.raises(ValueError):
        noun_phrase("house", "a", before="red")  # colours go after the noun


def test_random_sentences_use_every_template():
    rng = random.Random(3)
    pairs = [sentence_pair(rng) for _ in range(300)]
    assert any(" is " in en for en, _ in pairs) and any(" sees " in en for en, _ in pairs)
    assert any(" est " not in fr and " sont " not in fr and len(fr.split()) <= 4 for _, fr in pairs)


def test_tokenizer_round_trips_every_generated_sentence():
    train, held = make_split(3000, seed=5)
    for en, fr in train + held:
        assert detokenize(tokenize(en)) == en
        assert detokenize(tokenize(fr)) == fr
    assert tokenize("soixante-dix-sept") == ["soixante", "-", "dix", "-", "sept"]
    assert tokenize("march 3, 2021") == ["march", "3", ",", "2", "0", "2", "1"]
    assert tokenize("le 1er mai") == ["le", "1er", "mai"]


def test_vocabularies_cover_the_corpus_and_have_the_specials():
    en_vocab, fr_vocab = generated_vocabs()
    for vocab in (en_vocab, fr_vocab):
        assert vocab.words[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
        assert (vocab.PAD, vocab.BOS, vocab.EOS, vocab.UNK) == (0, 1, 2, 3)
    train, held = make_split(3000, seed=6)
    for en, fr in train + held:
        assert Vocab.UNK not in en_vocab.encode(en) and Vocab.UNK not in fr_vocab.encode(fr)
        assert fr_vocab.decode(fr_vocab.encode(fr) + [Vocab.EOS, 9, 9]) == fr  # stops at EOS
    assert en_vocab.unknown("the purple cat") == ["purple"]


def test_split_is_deterministic_and_held_out_sentences_are_never_trained_on():
    train, held = make_split(5000, seed=11, heldout_size=300)
    assert (train, held) == make_split(5000, seed=11, heldout_size=300)
    assert make_split(5000, seed=12, heldout_size=300)[1] != held
    assert len(train) == 5000 and len(held) == 300
    held_en = [en for en, _ in held]
    assert len(set(held_en)) == 300
    assert not set(held_en) & {en for en, _ in train}
    assert "seven" not in held_en and "seventy-one" not in held_en  # small numbers stay in training


def test_split_pairs_holds_out_whole_sentences():
    pairs = [(f"s{i % 50}", f"t{i}") for i in range(200)]
    train, held = split_pairs(pairs, seed=0)
    assert held and not {en for en, _ in held} & {en for en, _ in train}
    assert len(train) + len(held) == 200


def _write(tmp_path, content: bytes):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    return path


GOOD = "".join(f"the cat {i}\tle chat {i}\n" for i in range(25)).encode()


def test_loader_reads_pairs_and_lowercases(tmp_path):
    pairs = load_pairs_tsv(_write(tmp_path, b"\xef\xbb\xbfThe Cat\tLe Chat\n\n" + GOOD))
    assert pairs[0] == ("the cat", "le chat") and len(pairs) == 26


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    (b"the cat\x00\tle chat\n", "binary"),
    (GOOD + "the café\tle café\n".encode("latin-1"), "not UTF-8 .*line 26"),
    (GOOD + b"no tab here\n", "line 26: expected english<TAB>french with exactly one tab, found 0"),
    (b"a\tb\tc\n" + GOOD, r"line 1: .*found 2.*cut -f1,2"),
    (GOOD + b"\tle chat\n", "line 26: one side of the pair is empty"),
    (b"the cat\tle chat\n" * 3, "has 3 pairs; a translator needs at least 20"),
])
def test_loader_errors_name_the_file_and_line(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(ValueError, match=message) as e:
        load_pairs_tsv(path)
    assert str(path) in str(e.value)


def test_loader_missing_paths(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_pairs_tsv(tmp_path / "nope.tsv")
    with pytest.raises(ValueError, match="needs data_path"):
        load_pairs_tsv("")
    with pytest.raises(ValueError, match="is a folder"):
        load_pairs_tsv(tmp_path)
