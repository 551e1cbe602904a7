"""Turning image tensors into grids and PNG files (atomically written)."""

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


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def save_png(array: np.ndarray, path: str | Path) -> None:
    atomic_write_bytes(Path(path), png_bytes(array))
