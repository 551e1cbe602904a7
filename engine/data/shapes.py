"""Coloured shapes with captions: a small text-to-image data set that needs no download.

Each image is one shape on a dark background, described by four attributes and by a
caption that names them in a fixed template:

    shape     circle, square, triangle
    colour    red, green, blue, yellow, white
    size      small, large
    position  top left, top right, bottom left, bottom right, centre

    "a small red circle at the top left", "a large white triangle in the centre"

Every attribute is balanced and independent of the others (3 x 5 x 2 x 5 = 150 captions).
Nuisance variation the caption does not mention: the exact shade of the colour, the
brightness of the background, and a little jitter of the position and the size.

Captions may leave attributes out ("a red circle", "a small shape at the top left"): the
model then has to choose them itself. :func:`parse_caption` reads a caption back into
attribute labels (None where it says nothing), :func:`canonical_caption` writes labels as
the template's words, and :func:`tokenize` turns the words into ids of :data:`VOCAB`.

Rendering works with signed distances, as engine.data.faces does: a shape is a function
that gives each pixel its distance to the edge (negative inside), and clamp(0.5 - distance
in pixels, 0, 1) is an anti-aliased mask at any resolution. Positions and sizes are
fractions of the image width, so 32x32 and 64x64 images are the same drawings.

Deterministic: the same (n, seed) gives identical bytes. Drawing 20,000 images at 32x32
takes about a second, so nothing is cached on disk.
"""

from __future__ import annotations

import functools
import math
import re

import torch

from engine.device import one_thread

# Bump when the drawing changes: the cached shape classifier carries it in its file name.
SHAPES_VERSION = 1

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow", "white")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "centre")
ATTRIBUTES = ("shape", "colour", "size", "position")
ATTRIBUTE_VALUES = {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "position": POSITIONS}
ATTRIBUTE_CLASSES = {name: len(values) for name, values in ATTRIBUTE_VALUES.items()}
BATCH = 1024  # images per rendering batch

# RGB in 0..1 per colour; each image jitters its shade a little.
_RGB = torch.tensor([[0.90, 0.16, 0.14], [0.18, 0.78, 0.26], [0.22, 0.40, 0.96],
                     [0.96, 0.86, 0.18], [0.94, 0.94, 0.94]])  # (5, 3)
# Centre (x, y) of each position, as fractions of the width (y downwards).
_CENTRES = torch.tensor([[0.28, 0.28], [0.72, 0.28], [0.28, 0.72], [0.72, 0.72], [0.50, 0.50]])  # (5, 2)
# Radius of a small and a large shape, as a fraction of the width. A square and a triangle
# get the area of the circle with this radius, so size means the same for every shape.
_RADII = torch.tensor([0.12, 0.21])
_SQUARE_HALF = math.sqrt(math.pi) / 2  # half side / r: a square with the circle's area
_TRIANGLE_IN = math.sqrt(math.pi / (3 * math.sqrt(3)))  # inradius / r: a triangle with the circle's area

# ----------------------------------------------------------------------------------------
# Captions: the vocabulary, the template, the tokenizer and the parser
# ----------------------------------------------------------------------------------------

PAD = 0  # id 0 pads short captions; the text encoder ignores it
VOCAB = ("<pad>", "a", *SIZES, *COLOURS, *SHAPES, "shape", "at", "in", "the",
         "top", "bottom", "left", "right", "centre")
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
ALIASES = {"center": "centre"}  # accepted spellings, read as the template's word
MAX_WORDS = 8  # "a large green triangle at the bottom right"
KNOWN_WORDS = tuple(VOCAB[1:]) + tuple(ALIASES)
TEMPLATE = ("a [small|large] [colour] circle|square|triangle|shape "
            "[at the top left|top right|bottom left|bottom right | in the centre]")


def position_phrase(position: int) -> str:
    """The words for a position: "at the top left", ..., "in the centre"."""
    name = POSITIONS[position]
    return "in the centre" if name == "centre" else f"at the {name}"


def canonical_caption(shape: int | None = None, colour: int | None = None, size: int | None = None,
                      position: int | None = None) -> str:
    """Labels (class indices, None: not said) -> the template's caption, e.g.
    (0, 0, 0, 0) -> "a small red circle at the top left", (0, None, None, None) -> "a circle",
    all None -> "a shape"."""
    words = ["a"]
    if size is not None:
        words.append(SIZES[size])
    if colour is not None:
        words.append(COLOURS[colour])
    words.append(SHAPES[shape] if shape is not None else "shape")
    if position is not None:
        words.append(position_phrase(position))
    return " ".join(words)


def caption_of(labels: dict[str, torch.Tensor], i: int) -> str:
    """The full caption of image i of a label dict."""
    return canonical_caption(*(int(labels[name][i]) for name in ATTRIBUTES))


def words_of(text: str) -> list[str]:
    """Lower case, punctuation dropped, aliases replaced: "A red circle, in the CENTER." ->
    ["a", "red", "circle", "in", "the", "centre"]."""
    words = re.sub(r"[.,;:!?]", " ", str(text).lower()).split()
    return [ALIASES.get(w, w) for w in words]


def tokenize(text: str) -> list[int]:
    """A caption -> word ids of VOCAB (no padding). An empty caption or an unknown word is a
    ValueError that lists what the model knows."""
    words = words_of(text)
    if not words:
        raise ValueError(f"the caption is empty; describe a shape, for example: {canonical_caption(0, 0, 1, 0)}")
    unknown = list(dict.fromkeys(w for w in words if w not in WORD_ID))
    if unknown:
        raise ValueError(f"unknown word{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                         f"known: {', '.join(KNOWN_WORDS)}")
    return [WORD_ID[w] for w in words]


def parse_caption(text: str) -> dict[str, int | None]:
    """Read a caption back into labels {attribute: class index, or None where it says nothing}.

    Accepted: the template's words with any of the optional parts left out, and the two
    adjectives in either order: "a small red circle at the top left", "red circle",
    "a red small circle", "a large shape in the centre", "a square at the bottom right".
    Anything else is a ValueError that says what to write instead."""
    tokenize(text)  # unknown words first: the clearest message
    words = words_of(text)
    if words and words[0] == "a":
        words = words[1:]
    out: dict[str, int | None] = {name: None for name in ATTRIBUTES}
    nouns = [i for i, w in enumerate(words) if w in SHAPES or w == "shape"]
    if len(nouns) != 1:
        what = "names no shape" if not nouns else "names more than one shape"
        raise ValueError(f"the caption {what}; write one of circle, square, triangle (or 'shape' for any), "
                         f"as in: {TEMPLATE}")
    k = nouns[0]
    if words[k] != "shape":
        out["shape"] = SHAPES.index(words[k])
    for w in words[:k]:  # adjectives before the noun, in any order
        attr = "size" if w in SIZES else "colour" if w in COLOURS else None
        if attr is None:
            raise ValueError(f"{w!r} cannot come before the shape; only a size and a colour can, as in: "
                             f"a small red circle")
        if out[attr] is not None:
            raise ValueError(f"the caption gives two {attr}s; give one")
        out[attr] = ATTRIBUTE_VALUES[attr].index(w)
    rest = " ".join(words[k + 1:])
    if rest:
        phrases = {position_phrase(p): p for p in range(len(POSITIONS))}
        if rest not in phrases:
            raise ValueError(f"cannot read the position {rest!r}; write one of: {', '.join(phrases)}")
        out["position"] = phrases[rest]
    return out


def normalise_caption(text: str) -> str:
    """The caption in the template's order and words: "Red small circle in the center." ->
    "a small red circle in the centre"."""
    return canonical_caption(**parse_caption(text))


@functools.lru_cache(maxsize=None)
def _word_tables(device: str) -> tuple[torch.Tensor, ...]:
    """Word ids by class index, made once per device (no small copies to a GPU every step):
    sizes, colours, shapes, the first and the second word of each position."""
    def ids(words) -> torch.Tensor:
        return torch.tensor([WORD_ID[w] for w in words], device=device)

    first = [p.split()[0] for p in POSITIONS[:4]] + ["centre"]  # top, top, bottom, bottom, centre
    second = [p.split()[1] for p in POSITIONS[:4]] + ["<pad>"]  # left, right, left, right, -
    return ids(SIZES), ids(COLOURS), ids(SHAPES), ids(first), ids(second)


def caption_tokens(labels: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Captions as padded word ids for a whole batch at once, no Python loop per caption.

    labels: (B, 4) long, columns in ATTRIBUTES order (shape, colour, size, position).
    keep: (B, 4) bool, False where the caption leaves that attribute out (None: keep all).
    Returns (B, MAX_WORDS) long: the ids of canonical_caption(...), then PAD.

    Every caption is first written into 8 fixed slots (a, size, colour, noun, at/in, the,
    position word 1, position word 2), with PAD in the slots it does not use; a stable sort
    then moves the PADs to the end, keeping the words in order."""
    B, dev = labels.shape[0], labels.device
    shape, colour, size, position = labels.long().unbind(1)
    if keep is None:
        keep = torch.ones(B, 4, dtype=torch.bool, device=dev)
    k_shape, k_colour, k_size, k_pos = keep.unbind(1)

    size_ids, colour_ids, shape_ids, first, second = _word_tables(str(dev))
    pad = torch.full((B,), PAD, device=dev)
    centre = position == POSITIONS.index("centre")
    slots = torch.stack([
        torch.full((B,), WORD_ID["a"], device=dev),
        torch.where(k_size, size_ids[size], pad),
        torch.where(k_colour, colour_ids[colour], pad),
        torch.where(k_shape, shape_ids[shape], torch.full_like(pad, WORD_ID["shape"])),
        torch.where(k_pos, torch.where(centre, WORD_ID["in"], WORD_ID["at"]), pad),
        torch.where(k_pos, torch.full_like(pad, WORD_ID["the"]), pad),
        torch.where(k_pos, first[position], pad),
        torch.where(k_pos, second[position], pad),
    ], dim=1)  # (B, 8)
    order = torch.argsort((slots == PAD).int(), dim=1, stable=True)
    return slots.gather(1, order)


def encode_captions(texts: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """Captions -> (N, MAX_WORDS) long word ids, each normalised to the template's form first
    (what the model was trained to read). Raises ValueError for a caption it cannot read."""
    rows = [tokenize(normalise_caption(t)) for t in texts]
    return torch.tensor([r + [PAD] * (MAX_WORDS - len(r)) for r in rows], dtype=torch.long, device=device)


def labels_tensor(labels: dict[str, torch.Tensor]) -> torch.Tensor:
    """A label dict -> (N, 4) long in ATTRIBUTES order."""
    return torch.stack([labels[name].long() for name in ATTRIBUTES], dim=1)


# ----------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------

def random_labels(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Balanced, independent labels: int64 (n,) per attribute (each class n/k times, give or
    take one, shuffled on its own)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    g = torch.Generator().manual_seed((int(seed) * 6364136223846793005 + 1442695040888963407) % 2**63)
    return {name: (torch.arange(n) % k)[torch.randperm(n, generator=g)] for name, k in ATTRIBUTE_CLASSES.items()}


def _check_labels(labels: dict[str, torch.Tensor]) -> int:
    missing = set(ATTRIBUTES) - set(labels)
    if missing:
        raise ValueError(f"missing shape attributes: {sorted(missing)}")
    n = labels["shape"].shape[0]
    for name in ATTRIBUTES:
        lab = labels[name]
        if lab.shape != (n,) or (n and (int(lab.min()) < 0 or int(lab.max()) >= ATTRIBUTE_CLASSES[name])):
            raise ValueError(f"label {name!r} must be {n} values in 0..{ATTRIBUTE_CLASSES[name] - 1}")
    return n


def _render_batch(labels: dict[str, torch.Tensor], g: torch.Generator, size: int) -> torch.Tensor:
    """One shape per label row -> float images (B, 3, size, size) in [0, 1].

    The random numbers are drawn in a fixed order whatever the labels and the size, so the
    same seed gives the same drawings at 32 and at 64 pixels."""
    B = labels["shape"].shape[0]

    def U(lo: float, hi: float) -> torch.Tensor:  # (B,) uniform
        return lo + (hi - lo) * torch.rand(B, generator=g)

    colour = (_RGB[labels["colour"]] + 0.04 * torch.randn(B, 3, generator=g)).clamp(0, 1)  # (B, 3)
    background = U(0.02, 0.12)[:, None] + 0.02 * torch.rand(B, 3, generator=g)  # (B, 3): dark, a hint of tint
    centre = _CENTRES[labels["position"]] + 0.035 * (2 * torch.rand(B, 2, generator=g) - 1)  # (B, 2)
    r = (_RADII[labels["size"]] * U(0.9, 1.1)).view(B, 1, 1)  # (B, 1, 1)

    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres in (0, 1)
    dx = grid.view(1, 1, size) - centre[:, 0].view(B, 1, 1)  # (B, 1, W)
    dy = grid.view(1, size, 1) - centre[:, 1].view(B, 1, 1)  # (B, H, 1), downwards
    circle = torch.sqrt(dx * dx + dy * dy) - r  # (B, H, W)
    square = torch.maximum(dx.abs(), dy.abs()) - r * _SQUARE_HALF
    # An upright equilateral triangle around its centroid: inside all three edges. Each edge
    # is a half-plane n . p <= inradius, with outward normals down, up-left and up-right.
    ri = r * _TRIANGLE_IN
    triangle = torch.maximum(dy, torch.maximum(-0.5 * dy - 0.866 * dx, -0.5 * dy + 0.866 * dx)) - ri
    which = labels["shape"].view(B, 1, 1)
    sdf = torch.where(which == 0, circle, torch.where(which == 1, square, triangle))  # (B, H, W)
    cover = (0.5 - sdf * size).clamp(0, 1)[:, None]  # (B, 1, H, W): anti-aliased coverage
    return background[:, :, None, None] * (1 - cover) + colour[:, :, None, None] * cover


def draw_shapes(labels: dict[str, torch.Tensor], seed: int, size: int = 32) -> torch.Tensor:
    """Draw one shape per label row (int64 (n,) per attribute) -> uint8 (n, 3, size, size)."""
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    n = _check_labels(labels)
    g = torch.Generator().manual_seed(int(seed))
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    with torch.no_grad(), one_thread():
        for i in range(0, n, BATCH):
            chunk = {k: labels[k][i:i + BATCH].long() for k in ATTRIBUTES}
            images[i:i + BATCH] = (_render_batch(chunk, g, size) * 255).round().to(torch.uint8)
    return images


def make_shapes(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """n captioned shapes: images uint8 (n, 3, size, size) and labels {attribute: int64 (n,)}
    (the captions are caption_of(labels, i)). The same (n, seed) gives identical bytes."""
    labels = random_labels(n, seed)
    return draw_shapes(labels, seed, size), labels
