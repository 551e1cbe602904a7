"""The captioned shapes: deterministic drawings whose pixels show what the captions say, a
tokenizer and parser that read the template (and refuse the rest clearly), and the shape
classifier that judges generated images."""

from __future__ import annotations

import itertools

import pytest
import torch

from engine.data.shapes import (ATTRIBUTES, COLOURS, KNOWN_WORDS, MAX_WORDS, PAD, POSITIONS, SHAPES, SIZES, VOCAB,
                                _CENTRES, _RGB, canonical_caption, caption_of, caption_tokens, encode_captions,
                                labels_tensor, make_shapes, normalise_caption, parse_caption, random_labels,
                                tokenize)


def read_drawing(image: torch.Tensor) -> dict[str, int]:
    """Read the attributes of one drawn image (3, S, S) uint8 with plain geometry, no network:
    the pixels that differ from the corner's background are the shape."""
    img = image.float() / 255
    S = img.shape[-1]
    mask = (img - img[:, :1, :1]).norm(dim=0) > 0.35  # (S, S)
    area = mask.sum().item()
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    top, bottom, left, right = rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()
    box = (bottom - top + 1) * (right - left + 1)
    mid = (top + bottom + 1) / 2
    upper = mask[top:int(mid)].sum().item()
    lower = mask[int(mid + 0.5):bottom + 1].sum().item()
    if area / box >= 0.97:
        shape = SHAPES.index("square")
    elif lower > 1.6 * upper:  # an upright triangle is wider at the bottom
        shape = SHAPES.index("triangle")
    else:
        shape = SHAPES.index("circle")
    colour = (img[:, mask].mean(1) - _RGB).norm(dim=1).argmin().item()
    ys, xs = mask.nonzero().float().unbind(1)
    centre = torch.tensor([(xs.mean() + 0.5) / S, (ys.mean() + 0.5) / S])
    position = (_CENTRES - centre).norm(dim=1).argmin().item()
    size = int(area / (S * S) > 90 / 1024)  # small shapes cover ~4%, large ~14% of the image
    return {"shape": shape, "colour": colour, "size": size, "position": position}


def test_same_seed_same_bytes_and_balanced_labels():
    a, la = make_shapes(200, 7)
    b, lb = make_shapes(200, 7)
    assert a.dtype == torch.uint8 and a.shape == (200, 3, 32, 32)
    assert torch.equal(a, b) and all(torch.equal(la[k], lb[k]) for k in ATTRIBUTES)
    assert not torch.equal(a, make_shapes(200, 8)[0])
    for name, values in (("shape", SHAPES), ("colour", COLOURS), ("size", SIZES), ("position", POSITIONS)):
        counts = torch.bincount(la[name], minlength=len(values))
        assert counts.max() - counts.min() <= 1, name


@pytest.mark.parametrize("size", [32, 64])
def test_the_pixels_show_what_the_caption_says(size):
    images, labels = make_shapes(300, 3, size)
    wrong = [(i, caption_of(labels, i), read_drawing(images[i])) for i in range(300)
             if read_drawing(images[i]) != {k: int(labels[k][i]) for k in ATTRIBUTES}]
    assert not wrong, wrong[:5]
    # The background is dark, the colour at the shape's centre is the one named.
    assert images[:, :, 0, 0].float().max() < 0.2 * 255
    assert caption_of(labels, 0).startswith("a ") and ("at the" in caption_of(labels, 0) or "centre" in caption_of(labels, 0))


def test_the_same_seed_draws_the_same_scene_at_both_sizes():
    small, _ = make_shapes(20, 4, 32)
    big, _ = make_shapes(20, 4, 64)
    shrunk = torch.nn.functional.avg_pool2d(big.float(), 2)
    assert (shrunk - small.float()).abs().mean() < 4  # of 255: the same drawing, anti-aliased differently


def test_captions_in_words():
    assert canonical_caption(0, 0, 0, 0) == "a small red circle at the top left"
    assert canonical_caption(2, 4, 1, 4) == "a large white triangle in the centre"
    assert canonical_caption(1, None, None, None) == "a square"
    assert canonical_caption() == "a shape"
    assert max(len(tokenize(canonical_caption(*c))) for c in itertools.product(*(range(k) for k in (3, 5, 2, 5)))) \
        == MAX_WORDS


def test_unknown_words_are_refused_with_the_vocabulary():
    with pytest.raises(ValueError) as e:
        tokenize("a small pink hexagon")
    msg = str(e.value)
    assert msg.startswith("unknown words: pink, hexagon; known: a, small, large, red")
    assert all(w in msg for w in KNOWN_WORDS)
    with pytest.raises(ValueError, match="unknown word: purple"):
        parse_caption("a purple circle")
    with pytest.raises(ValueError, match="empty"):
        tokenize("   ")
    assert tokenize("A red Circle, in the CENTER.") == [VOCAB.index(w) for w in "a red circle in the centre".split()]


def test_every_caption_parses_back_to_its_labels():
    for combo in itertools.product(range(3), range(5), range(2), range(5)):
        for keep in itertools.product((True, False), repeat=3):  # colour, size, position may be left out
            labels = dict(zip(ATTRIBUTES, combo))
            for name, k in zip(("colour", "size", "position"), keep):
                if not k:
                    labels[name] = None
            assert parse_caption(canonical_caption(**labels)) == labels


def test_the_parser_is_lenient_where_the_template_allows_and_clear_where_not():
    assert parse_caption("red small circle") == {"shape": 0, "colour": 0, "size": 0, "position": None}
    assert normalise_caption("Red small circle in the center.") == "a small red circle in the centre"
    assert parse_caption("a large shape at the bottom right") == {"shape": None, "colour": None, "size": 1,
                                                                   "position": 3}
    for bad, says in [("a red blue circle", "two colours"), ("a red", "names no shape"),
                      ("a circle square", "more than one shape"), ("a circle red", "cannot read the position"),
                      ("a red circle top left", "at the top left"), ("the red circle", "cannot come before")]:
        with pytest.raises(ValueError, match=says):
            parse_caption(bad)


def test_batched_caption_tokens_match_the_tokenizer():
    g = torch.Generator().manual_seed(0)
    labels = labels_tensor(random_labels(200, 1))
    keep = torch.rand(200, 4, generator=g) > 0.3
    tokens = caption_tokens(labels, keep)
    assert tokens.shape == (200, MAX_WORDS)
    for i in range(200):
        said = {name: (int(labels[i, a]) if keep[i, a] else None) for a, name in enumerate(ATTRIBUTES)}
        ids = tokenize(canonical_caption(**said))
        assert tokens[i].tolist() == ids + [PAD] * (MAX_WORDS - len(ids))
    assert torch.equal(encode_captions(["a small red circle at the top left"]),
                       caption_tokens(torch.tensor([[0, 0, 0, 0]])))


@pytest.fixture(scope="module")
def shape_classifier(shared_cache):
    """The real cached classifier, trained once per session in the cache every test's home
    links to (so the recipes under test find it there too)."""
    from engine.metrics.shape_classifier import get_shape_classifier

    return get_shape_classifier("cpu", cache_dir=shared_cache)


def test_the_classifier_reads_held_out_shapes(shape_classifier):
    from engine.metrics.shape_classifier import score_prompts

    assert all(v >= 0.98 for v in shape_classifier.heldout_accuracy.values()), shape_classifier.heldout_accuracy
    images, labels = make_shapes(500, 4242)  # neither its training nor its held-out seed
    acc = score_prompts(shape_classifier, images, labels)
    assert set(acc) == {"shape", "colour", "position", "size", "all"}
    assert min(acc.values()) >= 0.98, acc
    big, big_labels = make_shapes(200, 4243, 64)  # 64-pixel images are averaged down to 32
    assert score_prompts(shape_classifier, big, big_labels)["all"] >= 0.98
    # Wrong labels score low; -1 (the prompt did not say) matches anything.
    shifted = {k: (v + 1) % len(dict(shape=SHAPES, colour=COLOURS, size=SIZES, position=POSITIONS)[k])
               for k, v in labels.items()}
    assert score_prompts(shape_classifier, images, shifted)["all"] < 0.05
    loose = {**labels, "colour": torch.full((500,), -1), "size": torch.full((500,), -1)}
    assert score_prompts(shape_classifier, images, loose)["colour"] == 1.0
