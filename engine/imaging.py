"""Turning image tensors into grids, point clouds into pictures, and both into PNG files
(atomically written)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.rundir import atomic_write_bytes


def make_grid(images: torch.Tensor, nrow: int, pad: int = 2, pad_value: float = 0.15) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> uint8 (rows*H', cols*W') or (.., 3) image array."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    ncol = nrow
    nrows = (n + ncol - 1) // ncol
    grid = torch.full((c, nrows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y : y + h, x : x + w] = images[i]
    arr = (grid * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if c == 1 else arr


def draw_points(image: np.ndarray, points, colour, extent: float, border: int = 0) -> np.ndarray:
    """Draw 2-D points (N, 2) lying in [-extent, extent]^2 onto a square uint8 picture
    (S, S, 3), in place, as 2x2-pixel dots (they survive the downscaling to terminal cells),
    +y up. ``border`` pixels on every side are left alone (a frame). Points outside are
    skipped. Returns ``image``."""
    px = image.shape[0]
    span = px - 1 - 2 * border  # pixels between the first and last dot position
    xy = points.detach().float().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points, float)
    raw = ((xy + extent) / (2 * extent) * span).round().astype(int)
    cols, rows = border + raw[:, 0], px - 1 - border - raw[:, 1]
    keep = (cols >= border) & (cols < px - 1 - border) & (rows >= border) & (rows < px - 1 - border)
    for dr in (0, 1):
        for dc in (0, 1):
            image[rows[keep] + dr, cols[keep] + dc] = colour
    return image


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def save_png(array: np.ndarray, path: str | Path) -> None:
    atomic_write_bytes(Path(path), png_bytes(array))
