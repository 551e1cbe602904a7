"""Procedural cartoon faces: a small, labelled RGB data set that needs no download.

Each face is a portrait on a soft background: shoulders, a neck, ears, a head, hair (five
styles), eyes, eyebrows, a nose and a mouth, optionally glasses and a hat. Four attributes
are labels a model can be conditioned on (a conditional GAN) or translated between (a
CycleGAN: blond hair <-> black hair):

    glasses  0/1       round or rectangular dark frames; clear lenses or sunglasses
    hair     0..3      HAIR_COLOURS: blond, black, brown, red (each in a few shades)
    smiling  0/1       a smile or open grin, against a flat line or slight frown
    hat      0/1       a beanie with a pompom, or a hat with a flat crown and a brim

Everything else is nuisance variation the labels do not describe: skin tone, hair style,
face shape, position, size and tilt, eye spacing and style, colours of background, shirt,
hat and frames.

Rendering works with signed distances: every shape is a function giving, for each pixel,
its distance to the shape's edge (negative inside), computed for a whole batch at once.
Coverage = clamp(0.5 - distance in pixels, 0, 1) is an anti-aliased mask with a one-pixel
soft edge at any resolution, so 32x32 and 64x64 faces are the same drawings at two sizes.
Shapes are painted back to front, each one blended over the image by its coverage.

Shapes live in face coordinates (u to the right, v downwards, the head centred at 0, one
unit = the image width when the face scale is 1), so jittering the position, scale and tilt
of a face is a single change of coordinates.

Deterministic: one generator (from the seed) draws the labels and another the look, and
nothing depends on the image size, so the same (seed, n) gives the same faces at 32 and at
64 pixels, and :func:`faces_with` gives the same people with some attributes overridden.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from engine import rundir
from engine.device import one_thread

# Bump when the drawing changes: cached data sets and classifiers carry it in their names.
FACES_VERSION = 1

HAIR_COLOURS = ("blond", "black", "brown", "red")
FACE_ATTRIBUTES = ("glasses", "hair", "smiling", "hat")
ATTRIBUTE_CLASSES = {"glasses": 2, "hair": len(HAIR_COLOURS), "smiling": 2, "hat": 2}
ATTRIBUTE_VALUES = {"glasses": ("no glasses", "glasses"), "hair": HAIR_COLOURS,
                    "smiling": ("not smiling", "smiling"), "hat": ("no hat", "hat")}
BATCH = 256  # faces per rendering batch: small enough for (B, H, W) maps to stay in the CPU caches

# Shades per hair colour (RGB in 0..1): a face picks one and jitters it a little.
_HAIR_SHADES = torch.tensor([
    [[0.93, 0.80, 0.40], [0.86, 0.70, 0.32], [0.96, 0.88, 0.58]],  # blond: gold, honey, flaxen
    [[0.09, 0.08, 0.09], [0.14, 0.12, 0.13], [0.05, 0.05, 0.07]],  # black
    [[0.40, 0.25, 0.13], [0.32, 0.19, 0.10], [0.46, 0.30, 0.17]],  # brown: dull, never orange
    [[0.82, 0.30, 0.10], [0.72, 0.20, 0.08], [0.90, 0.42, 0.13]],  # red: copper, auburn, ginger
])  # (4 colours, 3 shades, 3)
# Hats avoid every hair colour (no yellow, red, brown or black) so a hat never reads as hair.
_HAT_COLOURS = torch.tensor([[0.22, 0.36, 0.80], [0.20, 0.58, 0.32], [0.50, 0.28, 0.68], [0.15, 0.58, 0.62],
                             [0.55, 0.57, 0.62], [0.90, 0.50, 0.70], [0.92, 0.93, 0.95]])  # (7, 3)
_FRAME_COLOURS = torch.tensor([[0.06, 0.06, 0.07], [0.22, 0.12, 0.06], [0.08, 0.10, 0.28],
                               [0.30, 0.05, 0.08]])  # (4, 3): black, tortoiseshell, navy, burgundy
_SKIN_LIGHT, _SKIN_DARK = torch.tensor([1.0, 0.87, 0.76]), torch.tensor([0.50, 0.32, 0.20])

# Hair styles, one row each: cap margin around the head, curl amplitude, hairline height at
# the middle, hairline curvature (how far the sides come down), parting tilt, bottom of the
# hair behind the head (-9: none) and how far that back hair sticks out sideways.
_STYLES = torch.tensor([
    # margin  curl   h0     curve  part  back    width
    [0.035,  0.0,  -0.17,  2.2,  0.0,  -9.0,  0.0],   # crop
    [0.070,  0.022, -0.15, 1.3,  0.0,   0.06, 0.07],  # curly, bushy down to the ears
    [0.050,  0.0,  -0.14,  0.3,  0.0,   0.20, 0.06],  # bob with a straight fringe
    [0.045,  0.0,  -0.15,  1.2,  0.5,   0.55, 0.05],  # long, parted, over the shoulders
    [0.040,  0.0,  -0.13,  1.0,  0.9,  -9.0,  0.0],   # side-swept fringe
])  # (5, 7)


# ----------------------------------------------------------------------------------------
# Signed distances (negative inside). Arguments broadcast: maps are (B, H, W), shape
# parameters (B, 1, 1) or plain floats.
# ----------------------------------------------------------------------------------------

def _ellipse(u, v, cx, cy, rx, ry):
    """Approximate distance to an ellipse: (k^2 - 1) / (2 |grad k|) with k = |p / r| the
    ellipse's level, exact to first order at the edge, which is all anti-aliasing needs.

    Inside it is very negative at the centre (no division by zero: +1e-6), so one square
    root per ellipse instead of the two of the usual formulas."""
    px, py = (u - cx) / rx, (v - cy) / ry
    grad = torch.sqrt((px / rx) ** 2 + (py / ry) ** 2) + 1e-6  # |grad k| at k = 1
    return (px * px + py * py - 1) / (2 * grad)


def _box(u, v, cx, cy, hx, hy, r):
    """Rectangle of half-size (hx, hy) with corners rounded by r (r = hx = hy: a circle)."""
    qx = (u - cx).abs() - hx + r
    qy = (v - cy).abs() - hy + r
    outside = torch.sqrt(qx.clamp_min(0) ** 2 + qy.clamp_min(0) ** 2)
    return outside + torch.maximum(qx, qy).clamp_max(0) - r


def _segment(u, v, ax, ay, bx, by, r):
    """A capsule: the segment from a to b, thickened to radius r."""
    pax, pay, bax, bay = u - ax, v - ay, bx - ax, by - ay
    h = ((pax * bax + pay * bay) / (bax * bax + bay * bay)).clamp(0, 1)
    return torch.sqrt((pax - bax * h) ** 2 + (pay - bay * h) ** 2) - r


def _bow(u, v, cx, cy, half, depth):
    """Distance along v to the curve v = cy + depth (1 - (t / half)^2), t = u - cx, clipped to
    |t| <= half, divided by the slope so it is a distance; also returns the clipped t.

    depth > 0 bends the middle downwards (a smile: the corners are at cy, the middle lower)."""
    t = u - cx
    tc = t.clamp(-half, half)
    f = cy + depth * (1 - (tc / half) ** 2)
    slope = -2 * depth * tc / (half * half)
    return (v - f) / torch.sqrt(1 + slope * slope), t - tc


def _cover(sdf, px):
    """Anti-aliased coverage in [0, 1]: the edge is a one-pixel ramp. px: pixels per unit."""
    return (0.5 - sdf * px).clamp(0, 1)


def _paint(img, cov, colour):
    """Blend colour (B, 3) over img (B, 3, H, W) in place, weighted by cov (B, H, W).

    One fused lerp_ (img += cov * (colour - img)): several times faster than spelling it
    out, and painting is a third of the rendering."""
    img.lerp_(colour[:, :, None, None].expand_as(img), cov.unsqueeze(1))


def _hsv(h, s, v):
    """HSV -> RGB for (B,) tensors in [0, 1] -> (B, 3)."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + 6 * h[:, None]) % 6  # (B, 3)
    return v[:, None] - v[:, None] * s[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))


# ----------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------

def _render_batch(labels: dict[str, torch.Tensor], g: torch.Generator, size: int) -> torch.Tensor:
    """Draw one face per label row -> float images (B, 3, size, size) in [0, 1].

    Every random number is drawn for every face whatever its labels, in a fixed order, so
    the look of face i does not depend on its labels or on the image size."""
    B = labels["hair"].shape[0]

    def U(lo: float, hi: float) -> torch.Tensor:  # (B, 1, 1) uniform, broadcasts over maps
        return (lo + (hi - lo) * torch.rand(B, generator=g)).view(B, 1, 1)

    def pick(table: torch.Tensor) -> torch.Tensor:  # a random row per face: (B, ...)
        return table[torch.randint(0, table.shape[0], (B,), generator=g)]

    def jitter(colour: torch.Tensor, amount: float) -> torch.Tensor:  # (B, 3) -> (B, 3)
        return (colour + amount * torch.randn(B, 3, generator=g)).clamp(0, 1)

    # --- where the face is: centre, scale, tilt -> face coordinates (u, v), each (B, H, W)
    cx, cy, scale = U(0.46, 0.54), U(0.44, 0.50), U(0.88, 1.06)
    tilt = torch.deg2rad(U(-7.0, 7.0))
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres in (0, 1)
    dx, dy = grid.view(1, 1, size) - cx, grid.view(1, size, 1) - cy  # (B, 1, W), (B, H, 1)
    cos, sin = torch.cos(tilt), torch.sin(tilt)
    u, v = (cos * dx + sin * dy) / scale, (cos * dy - sin * dx) / scale  # (B, H, W) each
    px = size * scale  # pixels per face unit, (B, 1, 1)
    line = 0.022  # outline width in face units: ~0.7 px at 32x32, ~1.4 px at 64x64

    def cover(sdf: torch.Tensor) -> torch.Tensor:
        return _cover(sdf, px)

    def outlined(img: torch.Tensor, sdf: torch.Tensor, colour: torch.Tensor, show: float | torch.Tensor = 1.0) -> None:
        """A filled shape with a darker outline of its own colour: the cartoon look. show:
        (B, 1, 1) 0/1 for shapes only some faces have."""
        _paint(img, cover(sdf - line) * show, colour * 0.45)
        _paint(img, cover(sdf) * show, colour)

    # --- all the random choices, in a fixed order
    hw, hh = U(0.235, 0.27), U(0.28, 0.315)  # head half-width and half-height
    skin = jitter(torch.lerp(_SKIN_LIGHT, _SKIN_DARK, torch.rand(B, 1, generator=g)), 0.02)  # (B, 3)
    hue = U(0.0, 1.0).view(B)
    bg_top = _hsv(hue, U(0.15, 0.45).view(B), U(0.78, 0.95).view(B))  # (B, 3) each
    bg_bottom = _hsv((hue + U(-0.08, 0.08).view(B)) % 1, U(0.25, 0.55).view(B), U(0.62, 0.82).view(B))
    shirt = _hsv(U(0.0, 1.0).view(B), U(0.3, 0.9).view(B), U(0.35, 0.9).view(B))
    shade = torch.randint(0, 3, (B,), generator=g)
    hair = jitter(_HAIR_SHADES[labels["hair"], shade], 0.025)  # (B, 3)
    style = pick(_STYLES)  # (B, 7)
    margin, curl, h0, curve, part, back, wide = (c.view(B, 1, 1) for c in style.unbind(1))
    part = part * torch.where(torch.rand(B, 1, 1, generator=g) < 0.5, -1.0, 1.0) * U(0.6, 1.0)
    curl_phase = U(0.0, 2 * math.pi)
    ex, ey, eye_size = U(0.095, 0.125), U(-0.025, 0.02), U(0.85, 1.15)  # eye spacing, height, size
    gaze_x, gaze_y = U(-0.012, 0.012), U(-0.006, 0.006)
    sclera = torch.rand(B, generator=g) < 0.6  # white eyes with pupils, else dot eyes
    brow_tilt, brow_up = U(-0.02, 0.02), U(0.0, 0.015)
    mouth_y = U(0.14, 0.18)
    smile_half, smile_depth = U(0.07, 0.10), U(0.055, 0.08)
    grin = torch.rand(B, generator=g) < 0.4  # open grin (teeth) rather than a smile line
    flat_half, flat_depth = U(0.05, 0.08), U(-0.03, 0.0)  # flat line or a slight frown
    lens_w = U(0.075, 0.09)
    lens_h = lens_w * U(0.72, 1.0)
    lens_round = U(0.45, 1.0)  # 1: round or oval lenses, lower: rectangular with round corners
    frame_r = U(0.014, 0.019)
    frame = jitter(pick(_FRAME_COLOURS), 0.02)
    sunglasses = (torch.rand(B, generator=g) < 0.2).float()  # else clear lenses with a sheen
    hat_colour = jitter(pick(_HAT_COLOURS), 0.03)
    beanie = torch.rand(B, generator=g) < 0.5  # else a hat with a flat crown and a brim
    brim_y, crown_h = U(-0.235, -0.2), U(0.15, 0.2)

    # --- background: a vertical gradient between two related colours
    t = grid.view(1, 1, size, 1)
    img = (bg_top[:, :, None, None] * (1 - t) + bg_bottom[:, :, None, None] * t).expand(B, 3, size, size).clone()

    # --- shoulders and neck
    outlined(img, _ellipse(u, v, 0.0, hh + 0.33, 0.40, 0.22), shirt)
    outlined(img, _box(u, v, 0.0, hh - 0.02, 0.075, 0.12, 0.02), skin * 0.88)  # in the head's shadow

    # --- hair behind the head (bob, long, curly): a rounded column from the crown down to
    # `back`; curls make its edge wavy
    angle = torch.atan2(v, u)  # (B, H, W) for curls
    curls = curl * torch.sin(14 * angle + curl_phase)
    top = -hh * 0.5
    behind = _box(u, v, 0.0, (top + back) / 2, hw + wide, (back - top).clamp_min(0.01) / 2, 0.07) - curls
    outlined(img, behind, hair, show=(back > -1).float())

    # --- ears, head
    for side in (-1.0, 1.0):
        outlined(img, _ellipse(u, v, side * hw, 0.02, 0.05, 0.07), skin)
    outlined(img, _ellipse(u, v, 0.0, 0.0, hw, hh), skin)

    # --- hair cap: the head's outline grown by `margin`, above a curved hairline (lower at
    # the sides, tilted by a parting)
    cap = _ellipse(u, v, 0.0, -margin * 0.5, hw + margin, hh + margin) - curls
    hairline = h0 + curve * u * u + part * u
    slope = 2 * curve * u + part
    cap = torch.maximum(cap, (v - hairline) / torch.sqrt(1 + slope * slope))  # intersection
    outlined(img, cap, hair)

    # --- nose and mouth
    _paint(img, cover(_ellipse(u, v, 0.0, 0.075, 0.022, 0.016)), skin * 0.72)
    lip = torch.lerp(skin * 0.25, torch.tensor([0.30, 0.05, 0.08]).expand(B, 3), 0.5)  # dark on any skin
    smiling = labels["smiling"].bool()
    along, beyond = _bow(u, v, 0.0, mouth_y, smile_half, smile_depth)
    smile_line = torch.sqrt(along * along + beyond * beyond) - 0.019
    # The grin: between the straight top lip (v = mouth_y) and the bow below it.
    grin_sdf = torch.maximum(torch.maximum(mouth_y - v, along), beyond.abs())
    along_f, beyond_f = _bow(u, v, 0.0, mouth_y + 0.02, flat_half, flat_depth)
    flat_line = torch.sqrt(along_f * along_f + beyond_f * beyond_f) - 0.018
    # Choosing per face with lerp on 0/1 masks: torch.where on maps is several times slower.
    as_grin = (smiling & grin).float().view(B, 1, 1)
    mouth = torch.lerp(flat_line, torch.lerp(smile_line, grin_sdf, as_grin), smiling.float().view(B, 1, 1))
    _paint(img, cover(mouth - line * as_grin), lip)  # the grin gets an outline, lines are lines
    teeth = torch.maximum(grin_sdf + line * 0.5, v - mouth_y - 0.022)  # a white band under the lip
    _paint(img, cover(teeth) * as_grin, torch.full((B, 3), 0.97))
    _paint(img, cover(grin_sdf + 0.035) * as_grin, torch.tensor([0.85, 0.35, 0.40]).expand(B, 3))  # tongue

    # --- eyes: white eyes with pupils looking somewhere, or plain dots
    whites = sclera.float().view(B, 1, 1)
    pupil_r = (0.032 - 0.006 * whites) * eye_size  # dots are a little bigger than pupils
    for side in (-1.0, 1.0):
        white = _ellipse(u, v, side * ex, ey, 0.05 * eye_size, 0.04 * eye_size)
        _paint(img, cover(white - line * 0.7) * whites, skin * 0.3)
        _paint(img, cover(white) * whites, torch.full((B, 3), 0.98))
        pupil = _ellipse(u, v, side * ex + gaze_x, ey + gaze_y, pupil_r, pupil_r * 1.15)
        _paint(img, cover(pupil), torch.full((B, 3), 0.07))

    # --- glasses: two lenses (dark, or clear with a light sheen that shows them up even on
    # dark skin), rims, a bridge and arms
    has = labels["glasses"].float().view(B, 1, 1)
    tint_alpha = (0.25 + 0.63 * sunglasses).view(B, 1, 1)
    tint = torch.lerp(torch.tensor([0.8, 0.9, 1.0]).expand(B, 3), frame * 0.8, sunglasses[:, None])
    bridge_v, bridge_u = _bow(u, v, 0.0, ey - 0.01, ex - lens_w + frame_r, -0.012)  # a slight arch
    rims = torch.sqrt(bridge_u * bridge_u + bridge_v * bridge_v) - frame_r
    for side in (-1.0, 1.0):
        lens = _box(u, v, side * ex, ey, lens_w, lens_h, lens_round * lens_h)
        _paint(img, cover(lens) * (has * tint_alpha), tint)
        arm = _segment(u, v, side * (ex + lens_w), ey - 0.01, side * (hw + 0.01), ey - 0.025, frame_r * 0.8)
        rims = torch.minimum(rims, torch.minimum(lens.abs() - frame_r, arm))
    _paint(img, cover(rims) * has, frame)

    # --- eyebrows (a darker shade of the hair), above the frames
    for side in (-1.0, 1.0):
        y = ey - 0.1 - brow_up
        brow = _segment(u, v, side * (ex - 0.045), y + side * brow_tilt,
                        side * (ex + 0.045), y - side * brow_tilt, 0.014)
        _paint(img, cover(brow), hair * 0.65)

    # --- hat: a beanie (dome, band, pompom) or a flat-crowned hat with a wide brim
    wearing = labels["hat"].float().view(B, 1, 1)
    is_beanie = beanie.float().view(B, 1, 1)
    dome = torch.maximum(_ellipse(u, v, 0.0, brim_y, hw + 0.07, crown_h), v - brim_y)
    crown = _box(u, v, 0.0, brim_y - crown_h * 0.45, hw * 0.82, crown_h * 0.5, 0.04)
    brim = _box(u, v, 0.0, brim_y, hw + 0.15 - 0.075 * is_beanie, 0.028 + 0.012 * is_beanie, 0.025)
    pompom = _ellipse(u, v, 0.0, brim_y - crown_h, 0.05, 0.05) + 9 * (1 - is_beanie)  # far away: none
    body = torch.minimum(torch.lerp(crown, dome, is_beanie), pompom)
    _paint(img, cover(torch.minimum(body, brim) - line) * wearing, hat_colour * 0.45)
    _paint(img, cover(body) * wearing, hat_colour)
    _paint(img, cover(brim + line) * wearing, hat_colour * 0.8)  # the brim a shade darker
    return img


def _check_labels(labels: dict[str, torch.Tensor]) -> int:
    """Validate a full label dict; returns n."""
    if set(FACE_ATTRIBUTES) - set(labels):
        raise ValueError(f"missing face attributes: {sorted(set(FACE_ATTRIBUTES) - set(labels))}")
    n = labels["hair"].shape[0]
    for name, lab in ((k, labels[k]) for k in FACE_ATTRIBUTES):
        if lab.shape != (n,) or (n and (int(lab.min()) < 0 or int(lab.max()) >= ATTRIBUTE_CLASSES[name])):
            raise ValueError(f"label {name!r} must be {n} values in 0..{ATTRIBUTE_CLASSES[name] - 1}")
    return n


def random_attributes(n: int, seed: int, fixed: dict[str, int] | None = None) -> dict[str, torch.Tensor]:
    """Balanced, independent labels: int64 (n,) per attribute.

    Each attribute cycles through its classes (i % k) and is shuffled on its own, so every
    class appears n/k times (give or take one) and attributes are independent of each
    other. ``fixed`` sets some attributes to one value for every face."""
    fixed = dict(fixed or {})
    if set(fixed) - set(FACE_ATTRIBUTES):
        raise ValueError(f"unknown face attributes {sorted(set(fixed) - set(FACE_ATTRIBUTES))}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    # Labels get their own stream (the seed scrambled), apart from the one that draws the
    # look, so the same people can be drawn with other labels (faces_with, draw_faces).
    g = torch.Generator().manual_seed((int(seed) * 6364136223846793005 + 1442695040888963407) % 2**63)
    labels = {name: (torch.arange(n) % k)[torch.randperm(n, generator=g)]  # drawn even if fixed
              for name, k in ATTRIBUTE_CLASSES.items()}
    for name, value in fixed.items():
        if not 0 <= int(value) < ATTRIBUTE_CLASSES[name]:
            raise ValueError(f"{name} must be in 0..{ATTRIBUTE_CLASSES[name] - 1}, got {value}")
        labels[name] = torch.full((n,), int(value), dtype=torch.int64)
    return labels




def draw_faces(labels: dict[str, torch.Tensor], seed: int, size: int = 32) -> torch.Tensor:
    """Draw faces with exactly the given labels (int64 (n,) per attribute) -> uint8
    (n, 3, size, size). The seed chooses everything the labels leave open; a sampler that
    wants real faces for chosen labels calls this."""
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    n = _check_labels(labels)
    g = torch.Generator().manual_seed(int(seed))
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    with torch.no_grad(), one_thread():
        for i in range(0, n, BATCH):
            chunk = {k: labels[k][i:i + BATCH].long() for k in FACE_ATTRIBUTES}
            images[i:i + BATCH] = (_render_batch(chunk, g, size).clamp(0, 1) * 255).round().to(torch.uint8)
    return images


def make_faces(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Generate n faces: images uint8 (n, 3, size, size) and labels {attribute: int64 (n,)}.

    Every attribute is balanced and independent of the others. The same (n, seed) gives
    identical bytes, and the same people at every size."""
    labels = random_attributes(n, seed)
    return draw_faces(labels, seed, size), labels


def faces_with(attrs: dict[str, int], n: int, seed: int,
               size: int = 32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Like :func:`make_faces`, with some attributes fixed for every face, e.g. the two
    domains of a CycleGAN: ``faces_with({"hair": HAIR_COLOURS.index("blond")}, n, seed)``.

    With the same seed, the faces are those of make_faces(n, seed) with only the fixed
    attributes changed (use different seeds for unpaired domains)."""
    labels = random_attributes(n, seed, fixed=attrs)
    return draw_faces(labels, seed, size), labels


def _cache_path(cache_dir: Path, n: int, seed: int, size: int) -> Path:
    return Path(cache_dir) / f"faces-v{FACES_VERSION}-n{n}-seed{seed}-s{size}.pt"


def load_faces(n: int, seed: int, size: int = 32,
               cache_dir: Path | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Like :func:`make_faces`, but kept in a cache file so later runs start instantly.

    The file name carries n, seed, size and FACES_VERSION. It is written atomically; an
    unreadable or inconsistent file is regenerated, not an error."""
    path = _cache_path(cache_dir if cache_dir is not None else rundir.cache_dir(), n, seed, size)
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            images, labels = blob["images"], blob["labels"]
            if (images.dtype == torch.uint8 and images.shape == (n, 3, size, size)
                    and set(labels) == set(FACE_ATTRIBUTES)
                    and all(t.dtype == torch.int64 and t.shape == (n,) for t in labels.values())):
                return images, {k: labels[k] for k in FACE_ATTRIBUTES}
        except Exception:  # noqa: BLE001 - any damage means "regenerate"
            pass
    images, labels = make_faces(n, seed, size)
    buf = io.BytesIO()
    torch.save({"images": images, "labels": labels, "version": FACES_VERSION}, buf)
    rundir.atomic_write_bytes(path, buf.getvalue())
    return images, labels
