"""Procedural handwritten-style digits: an MNIST-like data set that needs no download.

Every digit class is drawn as pen strokes: chains of cubic Bezier curves through control
points in a unit box (x to the right, y downwards, the glyph roughly 0..1 in both). Most
classes have a few style variants, like real handwriting (a 4 open or closed, a 7 with or
without a crossbar, an 8 as two loops or one figure-of-eight stroke, ...).

To make one image we:
  1. pick a variant, jitter its control points (and the pen pressure stored with each),
  2. bend it (move the waist up or down), stretch it, slant it and rotate it,
  3. sample points along the curves, scale the digit so its box is about 16-18 px (the
     stroke width brings it to MNIST's ~20x20 box) and put its centre of ink at the middle
     of the 28x28 image plus a small offset, as MNIST does,
  4. ink it: each sample point is a small Gaussian blob weighted by the length of stroke it
     stands for, so a stroke becomes a smooth ridge; a soft threshold on that ridge gives
     anti-aliased white strokes on black whose width depends on the pen and the pressure.

Step 4 is fast because a 2-D Gaussian factorises: exp(-(dx^2+dy^2)/2s^2) =
exp(-dy^2/2s^2) * exp(-dx^2/2s^2). The ink of all points on all 784 pixels is then one
batched matrix product (28 x P) @ (P x 28) per image instead of 784 * P distances.

Everything is deterministic for a given seed (one torch.Generator drives all choices).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from engine import rundir

# Bump when the glyphs or the rendering change: cached data sets and classifiers carry it
# in their file names, so a stale cache is never mistaken for the current generator.
DIGITS_VERSION = 1

IMAGE_SIZE = 28
SAMPLES_PER_CURVE = 16  # points per Bezier curve; spacing stays below ~1.2 px at 28x28
BATCH = 1024  # digits rendered at once: big enough to amortise overhead, small for memory


# ----------------------------------------------------------------------------------------
# Glyphs: a tiny pen-plotter language, run once at import time.
# ----------------------------------------------------------------------------------------

class _Glyph:
    """Records strokes as a table of points (x, y, pressure) and curves indexing into it.

    Consecutive curves of one stroke share their end point (the same table row), so when the
    points are jittered later the stroke stays connected instead of breaking at the joins.
    """

    def __init__(self) -> None:
        self.points: list[tuple[float, float, float]] = []
        self.curves: list[tuple[int, int, int, int]] = []
        self.pen: int | None = None  # index of the point the pen rests on, None when lifted

    def _add(self, x: float, y: float) -> int:
        self.points.append((x, y, 1.0))
        return len(self.points) - 1

    def move(self, x: float, y: float) -> "_Glyph":
        """Lift the pen and put it down at (x, y): the start of a new stroke."""
        self.pen = self._add(x, y)
        return self

    def cubic(self, c1: tuple[float, float], c2: tuple[float, float], end: tuple[float, float]) -> "_Glyph":
        assert self.pen is not None, "move() before drawing"
        i1, i2, i3 = self._add(*c1), self._add(*c2), self._add(*end)
        self.curves.append((self.pen, i1, i2, i3))
        self.pen = i3
        return self

    def line(self, x: float, y: float) -> "_Glyph":
        # A straight line is a cubic whose handles sit at the thirds.
        x0, y0, _ = self.points[self.pen]  # type: ignore[index]
        dx, dy = x - x0, y - y0
        return self.cubic((x0 + dx / 3, y0 + dy / 3), (x0 + 2 * dx / 3, y0 + 2 * dy / 3), (x, y))

    def arc(self, cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, close: bool = False) -> "_Glyph":
        """Elliptical arc from angle a0 to a1 in degrees (0 = right, 90 = down; a1 < a0 turns
        anticlockwise on screen). Continues the current stroke if the pen is down, so the arc
        is attached to it; ``close`` ends on the stroke's first point (a closed loop)."""
        if self.pen is None:
            self.move(cx + rx * math.cos(math.radians(a0)), cy + ry * math.sin(math.radians(a0)))
        first = self.pen
        n = max(1, math.ceil(abs(a1 - a0) / 90 - 1e-9))  # Bezier arcs are accurate up to 90 deg
        step = math.radians(a1 - a0) / n
        k = 4 / 3 * math.tan(step / 4)  # handle length that makes a cubic hug a circular arc
        for j in range(n):
            a, b = math.radians(a0) + j * step, math.radians(a0) + (j + 1) * step
            c1 = (cx + rx * (math.cos(a) - k * math.sin(a)), cy + ry * (math.sin(a) + k * math.cos(a)))
            c2 = (cx + rx * (math.cos(b) + k * math.sin(b)), cy + ry * (math.sin(b) - k * math.cos(b)))
            end = (cx + rx * math.cos(b), cy + ry * math.sin(b))
            if close and j == n - 1:
                self.curves.append((self.pen, self._add(*c1), self._add(*c2), first))  # type: ignore[arg-type]
                self.pen = first
            else:
                self.cubic(c1, c2, end)
        return self


def _glyphs() -> dict[int, list[tuple[float, _Glyph]]]:
    """Every class with its style variants and how often each is drawn."""
    G = _Glyph

    # Parts shared by several variants of a class.
    def top_of_2(g: _Glyph) -> _Glyph:
        return g.move(0.17, 0.27).cubic((0.2, -0.03), (0.84, -0.06), (0.8, 0.3))

    def bowl_of_5(g: _Glyph) -> _Glyph:
        return g.cubic((0.45, 0.3), (0.88, 0.36), (0.84, 0.67)).cubic((0.8, 0.98), (0.38, 1.04), (0.14, 0.87))

    def loop_of_6(g: _Glyph) -> _Glyph:  # from the stem's foot round anticlockwise
        return g.arc(0.5, 0.73, 0.3, 0.26, 180, -165)

    def loop_of_9(g: _Glyph, cx: float = 0.45, cy: float = 0.27, r: float = 0.28) -> _Glyph:
        return g.arc(cx, cy, r, r - 0.02, 0, -360)  # from its right side, where the stem starts

    return {
        0: [(2, G().arc(0.5, 0.5, 0.3, 0.48, -90, 270, close=True)),
            (1, G().arc(0.5, 0.5, 0.26, 0.49, -100, 285)),  # overshoots past its start
            (1, G().arc(0.5, 0.5, 0.36, 0.45, -60, 300, close=True))],
        1: [(3, G().move(0.5, 0.0).line(0.5, 1.0)),
            (2, G().move(0.38, 0.17).line(0.56, 0.0).line(0.56, 1.0)),  # with a flag
            (1, G().move(0.36, 0.17).line(0.56, 0.0).line(0.56, 1.0).move(0.38, 1.0).line(0.76, 1.0))],  # + base
        2: [(2, top_of_2(G()).cubic((0.77, 0.55), (0.35, 0.8), (0.14, 1.0)).line(0.86, 0.98)),
            (1, top_of_2(G()).cubic((0.77, 0.55), (0.35, 0.8), (0.16, 0.98))  # wavy base
                .cubic((0.4, 0.88), (0.6, 1.06), (0.88, 0.95))),
            (1, top_of_2(G()).cubic((0.77, 0.55), (0.4, 0.75), (0.25, 0.93))  # curly loop at the base
                .cubic((0.1, 1.08), (0.02, 0.8), (0.3, 0.88)).cubic((0.5, 0.93), (0.7, 1.0), (0.88, 0.96)))],
        3: [(3, G().arc(0.48, 0.25, 0.28, 0.23, -155, 90).arc(0.48, 0.72, 0.33, 0.26, -90, 150)),  # two bowls
            (1, G().move(0.18, 0.02).line(0.8, 0.02).line(0.42, 0.42)  # flat top
                .arc(0.48, 0.71, 0.33, 0.29, -100, 150))],
        4: [(2, G().move(0.66, 0.0).line(0.1, 0.68).line(0.9, 0.68).move(0.66, 0.0).line(0.66, 1.0)),  # closed
            (2, G().move(0.22, 0.0).line(0.16, 0.6).line(0.88, 0.6).move(0.68, 0.18).line(0.68, 1.0)),  # open
            (1, G().move(0.3, 0.0).line(0.12, 0.62).line(0.88, 0.6).move(0.7, 0.0).line(0.66, 1.0))],
        5: [(2, bowl_of_5(G().move(0.8, 0.02).line(0.3, 0.02).line(0.25, 0.45))),
            (2, bowl_of_5(G().move(0.3, 0.02).line(0.25, 0.45)).move(0.3, 0.02).line(0.82, 0.0))],  # flag drawn last
        6: [(2, loop_of_6(G().move(0.74, 0.02).cubic((0.45, 0.1), (0.2, 0.42), (0.2, 0.73)))),
            (1, loop_of_6(G().move(0.66, 0.0).line(0.2, 0.73))),
            (1, G().move(0.7, 0.0).cubic((0.4, 0.15), (0.22, 0.5), (0.24, 0.8))  # small low loop
                .arc(0.46, 0.8, 0.22, 0.19, 180, -160))],
        7: [(3, G().move(0.14, 0.02).line(0.86, 0.02).line(0.4, 1.0)),
            (1, G().move(0.14, 0.02).line(0.86, 0.02).line(0.4, 1.0).move(0.34, 0.52).line(0.78, 0.5)),  # crossbar
            (1, G().move(0.14, 0.05).line(0.86, 0.02).cubic((0.6, 0.35), (0.45, 0.65), (0.45, 1.0))),
            (1, G().move(0.12, 0.22).line(0.15, 0.02).line(0.86, 0.02).line(0.42, 1.0))],  # serif
        8: [(2, G().arc(0.5, 0.26, 0.23, 0.24, -90, 270, close=True)  # two stacked loops
                .move(0.5, 0.5).arc(0.5, 0.74, 0.28, 0.25, -90, 270, close=True)),
            (2, G().move(0.72, 0.12).cubic((0.6, -0.05), (0.2, -0.02), (0.27, 0.22))  # one figure-of-eight stroke
                .cubic((0.34, 0.42), (0.8, 0.5), (0.79, 0.75)).cubic((0.77, 1.03), (0.21, 1.03), (0.21, 0.75))
                .cubic((0.21, 0.5), (0.77, 0.42), (0.72, 0.12)))],
        9: [(2, loop_of_9(G()).line(0.71, 1.0)),
            (1, loop_of_9(G()).cubic((0.73, 0.6), (0.66, 0.95), (0.38, 1.0))),  # tail curls left
            (1, loop_of_9(G(), cx=0.48).line(0.6, 1.0)),
            (1, loop_of_9(G(), cx=0.5, cy=0.2, r=0.22).line(0.72, 1.0))],  # small loop, long stem
    }


def _templates() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pack all variants into padded tensors so a batch can gather its glyphs at once.

    Returns points (V, Pmax, 3) [x, y, pressure], curves (V, Cmax, 4) point indices,
    curve_mask (V, Cmax) (False = padding) and choice (10, V), the probability of each
    variant within its class (zero for variants of other classes).
    """
    variants = [(d, w, g) for d, vs in _glyphs().items() for w, g in vs]
    V = len(variants)
    p_max = max(len(g.points) for _, _, g in variants)
    c_max = max(len(g.curves) for _, _, g in variants)
    points = torch.zeros(V, p_max, 3)
    curves = torch.zeros(V, c_max, 4, dtype=torch.long)  # padding curves point at row 0 ...
    mask = torch.zeros(V, c_max, dtype=torch.bool)  # ... and are switched off here
    choice = torch.zeros(10, V)
    for v, (d, w, g) in enumerate(variants):
        points[v, : len(g.points)] = torch.tensor(g.points)
        curves[v, : len(g.curves)] = torch.tensor(g.curves)
        mask[v, : len(g.curves)] = True
        choice[d, v] = w
    return points, curves, mask, choice / choice.sum(1, keepdim=True)


_POINTS, _CURVES, _MASK, _CHOICE = _templates()

# Bernstein weights of a cubic at K+1 evenly spaced parameters: (K+1, 4).
_T = torch.linspace(0, 1, SAMPLES_PER_CURVE + 1)[:, None]
_BERNSTEIN = torch.cat([(1 - _T) ** 3, 3 * (1 - _T) ** 2 * _T, 3 * (1 - _T) * _T**2, _T**3], dim=1)


# ----------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------

def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _render_batch(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Draw one digit per label (B,) int64 -> float images (B, 28, 28) in [0, 1]."""
    B = labels.shape[0]
    variant = torch.multinomial(_CHOICE[labels], 1, generator=g)[:, 0]  # (B,)

    # 1. Jitter control points: a shaky hand moves every point a little; pressure varies too.
    pts = _POINTS[variant].clone()  # (B, P, 3)
    pts[..., :2] += 0.035 * torch.randn(B, pts.shape[1], 2, generator=g)
    pts[..., 2] *= torch.exp(0.15 * torch.randn(B, pts.shape[1], generator=g))

    # 2. Whole-glyph distortions, about the centre of the box.
    x, y = pts[..., 0] - 0.5, pts[..., 1] - 0.5  # (B, P) each, in [-0.5, 0.5]
    bulge = _uniform(g, B, -0.35, 0.35)[:, None]
    y = y + bulge * (0.25 - y * y)  # moves the waist of 3, 5, 8 up or down; keeps the ends
    x = x * torch.exp(0.12 * torch.randn(B, 1, generator=g))  # narrow or wide hands
    slant = (0.17 + 0.13 * torch.randn(B, 1, generator=g)).clamp(-0.15, 0.5)
    x = x - slant * y  # shear: the top leans right (y points down) as most hands do
    angle = torch.deg2rad(4.0 * torch.randn(B, 1, generator=g))
    cos, sin = torch.cos(angle), torch.sin(angle)
    x, y = cos * x - sin * y, sin * x + cos * y
    pts = torch.stack([x, y, pts[..., 2]], dim=-1)  # (B, P, 3)

    # 3. Sample the curves. Bezier evaluation is linear in the control points, so warping the
    # control points above is the same as warping the curve itself.
    curves = _CURVES[variant]  # (B, C, 4)
    C = curves.shape[1]
    ctrl = torch.gather(pts, 1, curves.reshape(B, C * 4, 1).expand(-1, -1, 3)).reshape(B, C, 4, 3)
    edge = torch.einsum("kj,bcjd->bckd", _BERNSTEIN, ctrl)  # (B, C, K+1, 3)
    mid = 0.5 * (edge[:, :, 1:] + edge[:, :, :-1])  # (B, C, K, 3): one ink blob per piece
    seg_len = (edge[:, :, 1:, :2] - edge[:, :, :-1, :2]).norm(dim=-1)  # (B, C, K)
    seg_len = seg_len * _MASK[variant][:, :, None]  # padding curves carry no ink
    mid, seg_len = mid.reshape(B, -1, 3), seg_len.reshape(B, -1)  # (B, N, 3), (B, N)
    xy, pressure = mid[..., :2], mid[..., 2]

    # Fit the digit's box to 15.5-18 px (MNIST fits digits with their stroke in 20x20) and
    # centre its ink at the image centre, plus a small offset like MNIST's centring error.
    live = seg_len > 0  # (B, N)
    lo = torch.where(live[..., None], xy, torch.inf).amin(1)  # (B, 2)
    hi = torch.where(live[..., None], xy, -torch.inf).amax(1)  # (B, 2)
    scale = _uniform(g, B, 15.5, 18.0) / (hi - lo).amax(1).clamp_min(1e-3)  # (B,) px per unit
    centre = (xy * seg_len[..., None]).sum(1) / seg_len.sum(1, keepdim=True)  # (B, 2)
    offset = _uniform(g, 2 * B, -1.0, 1.0).reshape(B, 2)
    xy = (xy - centre[:, None]) * scale[:, None, None] + IMAGE_SIZE / 2 + offset[:, None]
    seg_len = seg_len * scale[:, None]

    # 4. Ink. A line of Gaussian blobs of width s, each weighted length / (sqrt(2 pi) s),
    # gives a ridge of height 1 and profile exp(-d^2 / 2 s^2) at distance d from the line.
    s = _uniform(g, B, 0.85, 1.3)[:, None, None]  # pen width, px
    weight = seg_len * pressure / (math.sqrt(2 * math.pi) * s[:, :, 0])  # (B, N)
    centres = torch.arange(IMAGE_SIZE, dtype=torch.float32) + 0.5  # pixel centres (28,)
    gx = torch.exp(-((xy[..., 0:1] - centres) ** 2) / (2 * s * s))  # (B, N, 28)
    gy = torch.exp(-((xy[..., 1:2] - centres) ** 2) / (2 * s * s))  # (B, N, 28)
    ridge = torch.bmm((gy * weight[..., None]).transpose(1, 2), gx)  # (B, 28 y, 28 x)

    # Soft threshold: full white well inside the stroke, a 1-2 px anti-aliased edge, black
    # outside. A lower threshold means a bolder pen.
    threshold = _uniform(g, B, 0.08, 0.26)[:, None, None]
    img = ((ridge - threshold) / 0.6).clamp(0, 1)
    img = img * img * (3 - 2 * img)  # smoothstep: softer shoulders, like scanned ink
    return img * _uniform(g, B, 0.88, 1.0)[:, None, None]  # a little ink-density variation


def make_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate n digits: images uint8 (n, 28, 28) white on black, labels int64 (n,).

    Classes are balanced (label i % 10, shuffled). The same (n, seed) gives identical bytes.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    g = torch.Generator().manual_seed(int(seed))
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]  # (n,)
    images = torch.empty(n, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    with torch.no_grad():
        for i in range(0, n, BATCH):
            chunk = _render_batch(labels[i : i + BATCH], g)
            images[i : i + BATCH] = (chunk * 255).round().to(torch.uint8)
    return images, labels


def _cache_path(cache_dir: Path, n: int, seed: int) -> Path:
    return Path(cache_dir) / f"digits-v{DIGITS_VERSION}-n{n}-seed{seed}.pt"


def load_digits(n: int, seed: int, cache_dir: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`make_digits`, but kept in a cache file so later runs start instantly.

    The file name carries n, seed and DIGITS_VERSION. It is written atomically; an unreadable
    or inconsistent file (a crash, a disk error, an old format) is regenerated, not an error.
    """
    path = _cache_path(cache_dir if cache_dir is not None else rundir.cache_dir(), n, seed)
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            images, labels = blob["images"], blob["labels"]
            if (images.dtype == torch.uint8 and labels.dtype == torch.int64
                    and images.shape == (n, IMAGE_SIZE, IMAGE_SIZE) and labels.shape == (n,)):
                return images, labels
        except Exception:  # noqa: BLE001 - any damage means "regenerate"
            pass
    images, labels = make_digits(n, seed)
    buf = io.BytesIO()
    torch.save({"images": images, "labels": labels, "version": DIGITS_VERSION}, buf)
    rundir.atomic_write_bytes(path, buf.getvalue())
    return images, labels
