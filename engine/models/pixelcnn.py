"""A PixelCNN written to be read: an image model that draws one pixel at a time.

The chain rule writes the probability of an image as a product over its pixels in raster
order (left to right, top to bottom):

    p(x) = prod_i p(x_i | x_1 ... x_{i-1})

Every pixel is one of ``levels`` grey levels, so each factor is a softmax over a few
classes. One stack of convolutions predicts all the factors at once: each layer's kernel is
masked so that an output never sees its own pixel or any later one. The first layer uses
mask A (the centre pixel hidden), the later ones mask B (the centre allowed: by then it
holds features of earlier pixels only). Residual blocks deepen the stack, and so widen what
each pixel can see, while keeping it trainable.

Colour images have several channels per pixel, ordered within the pixel (R, then G, then
B): the masks then let a channel see the earlier channels of its own pixel, as well as
every channel of the earlier pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class PixelCNNArgs:
    levels: int = 4  # grey levels per channel: the classes of each pixel's softmax
    channels: int = 1  # colour channels of the image (1 grey, 3 RGB)
    width: int = 64  # feature maps in the stack
    blocks: int = 5  # residual blocks after the first layer
    first_kernel: int = 7  # the mask-A layer's kernel: how far the first layer looks
    kernel: int = 3  # the blocks' masked kernels
    dilate: bool = False  # space the blocks' kernel taps 1, 2, 4, 8, 1, 2, ... pixels apart
    positions: bool = False  # add learned row and column features after the first layer (Positions)
    size: int = 28  # the image's side: how many rows and columns Positions learns


def raster_mask(kernel: int, c_in: int, c_out: int, kind: str, colours: int = 1) -> torch.Tensor:
    """A (c_out, c_in, k, k) mask of 0s and 1s for a convolution centred on a pixel.

    Rows above the centre and pixels left of it in the centre row come earlier in raster
    order: kept. Pixels right of the centre and rows below come later: zeroed. The centre
    tap connects channel groups: with ``colours`` groups (R, G, B), output group g may read
    input group h at its own pixel if h < g (kind "A") or h <= g (kind "B")."""
    if kind not in ("A", "B"):
        raise ValueError(f"mask kind must be 'A' or 'B', got {kind!r}")
    mask = torch.ones(c_out, c_in, kernel, kernel)
    mid = kernel // 2
    mask[:, :, mid, mid + 1:] = 0  # later pixels in the centre row
    mask[:, :, mid + 1:, :] = 0  # rows below
    # Which colour group each channel belongs to: contiguous blocks, the image's channel
    # order (one group, for grey images).
    g_out = torch.arange(c_out) * colours // c_out  # (c_out,)
    g_in = torch.arange(c_in) * colours // c_in  # (c_in,)
    allowed = g_out[:, None] > g_in[None, :] if kind == "A" else g_out[:, None] >= g_in[None, :]
    mask[:, :, mid, mid] = allowed.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a raster mask at every call, so the
    weights that would peek at later pixels never act (and get zero gradient)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, kind: str, colours: int = 1, dilation: int = 1):
        super().__init__(c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.kind = kind
        self.register_buffer("mask", raster_mask(kernel, c_in, c_out, kind, colours))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, H, W) -> (B, c_out, H, W)
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding, dilation=self.dilation)

    def reach(self) -> int:
        """How far this layer looks up, left and right: k//2 taps, dilation pixels apart."""
        return self.dilation[0] * (self.kernel_size[0] // 2)

    def forward_window(self, x: torch.Tensor, box: Box) -> tuple[torch.Tensor, Box]:
        """The same convolution on a window of the image (see :meth:`PixelCNN.logits_at`).

        The mask zeroes the rows below the centre, so only the top k//2 + 1 rows of the
        kernel are kept and nothing below the window is needed. On a side where the window
        touches the image's edge we pad with zeros, as forward() does; on a side inside the
        image we do not pad, and the output window is k//2 smaller there: its outputs near
        that side would need pixels outside the window."""
        half, reach = self.kernel_size[0] // 2, self.reach()
        pad_top = reach if box.top == 0 else 0
        pad_left = reach if box.left == 0 else 0
        pad_right = reach if box.right == box.width - 1 else 0
        w = (self.weight * self.mask)[:, :, : half + 1, :]  # (c_out, c_in, k//2 + 1, k)
        y = F.conv2d(F.pad(x, (pad_left, pad_right, pad_top, 0)), w, self.bias, dilation=self.dilation)
        return y, Box(box.top + reach - pad_top, box.left + reach - pad_left, box.right - reach + pad_right, box.width)


@dataclass(frozen=True)
class Box:
    """Where a window of feature maps sits in the image: its first row, first and last
    column (its last row is always the pixel being drawn), and the image's width."""

    top: int
    left: int
    right: int
    width: int

    def crop(self, x: torch.Tensor, inner: Box) -> torch.Tensor:
        """The part of x (laid out on this box) that lies on ``inner``, a box inside it."""
        return x[:, :, inner.top - self.top:, inner.left - self.left: x.shape[-1] - (self.right - inner.right)]


class ResidualBlock(nn.Module):
    """x + f(x), where f narrows the channels (1x1), looks around with a masked kxk
    convolution (mask B), and widens back (1x1). The skip path carries x through
    unchanged, so a deep stack still passes gradients to its first layers."""

    def __init__(self, width: int, kernel: int, colours: int, dilation: int = 1):
        super().__init__()
        self.narrow = MaskedConv2d(width, width // 2, 1, "B", colours)
        self.look = MaskedConv2d(width // 2, width // 2, kernel, "B", colours, dilation)
        self.widen = MaskedConv2d(width // 2, width, 1, "B", colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        h = F.relu(self.narrow(x))  # (B, C/2, H, W)
        h = F.relu(self.look(h))  # (B, C/2, H, W)
        return x + F.relu(self.widen(h))  # (B, C, H, W)

    def forward_window(self, x: torch.Tensor, box: Box) -> tuple[torch.Tensor, Box]:
        h = F.relu(self.narrow(x))
        h, inner = self.look.forward_window(h, box)
        h = F.relu(h)
        return box.crop(x, inner) + F.relu(self.widen(h)), inner


class Positions(nn.Module):
    """Where in the image a pixel is: a learned vector for every row and one for every
    column, added to the first layer's features.

    A convolution does the same thing at every position. Far below the top edge, with only
    black above it, a pixel cannot tell row 12 from row 20, and a digit's first stroke
    could then begin anywhere, so many are cut off at the bottom. The vectors depend on
    the position alone, never on a pixel's value, so no output learns anything about its
    own pixel or later ones from them."""

    def __init__(self, width: int, size: int):
        super().__init__()
        self.rows = nn.Parameter(torch.zeros(width, size, 1))  # (width, H, 1)
        self.cols = nn.Parameter(torch.zeros(width, 1, size))  # (width, 1, W)

    def forward(self, h: torch.Tensor, top: int = 0, left: int = 0) -> torch.Tensor:
        """h (B, width, h, w) lies on rows top.., columns left..: h + rows[r] + cols[c]."""
        rows, cols = h.shape[-2:]
        return h + self.rows[:, top: top + rows] + self.cols[:, :, left: left + cols]


class PixelCNN(nn.Module):
    def __init__(self, a: PixelCNNArgs):
        super().__init__()
        if a.width % 2 or a.width < 2 * a.channels:
            raise ValueError(f"width must be even and at least 2 x channels, got {a.width}")
        self.args = a
        c = a.channels
        self.first = MaskedConv2d(c, a.width, a.first_kernel, "A", c)  # never sees its own pixel
        self.positions = Positions(a.width, a.size) if a.positions else None
        self.blocks = nn.ModuleList(ResidualBlock(a.width, a.kernel, c, 2 ** (i % 4) if a.dilate else 1)
                                    for i in range(a.blocks))
        # Two per-pixel layers mix the features, then one gives each channel its logits.
        self.head = nn.ModuleList(MaskedConv2d(a.width, a.width, 1, "B", c) for _ in range(2))
        self.out = MaskedConv2d(a.width, c * a.levels, 1, "B", c)

    def scale(self, levels: torch.Tensor) -> torch.Tensor:
        """Level indices (B, C, H, W) -> inputs in [-1, 1]. The zeros that pad the image's
        edges are then unlike black (-1): a convolution is the same everywhere, and seeing
        the edge is how a pixel near it can tell where in the image it is."""
        return levels.float() * (2 / (self.args.levels - 1)) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: level indices (B, C, H, W). Returns logits (B, levels, C, H, W): for every
        channel of every pixel, a distribution that depends only on earlier ones."""
        return self.body(self.scale(x))

    def body(self, h: torch.Tensor, stages: list | None = None) -> torch.Tensor:
        """The stack on scaled inputs (B, C, H, W) in [-1, 1]. ``stages``, if given, collects
        the feature maps after the first layer and after every block (the receptive-field
        view takes gradients of them)."""
        h = self.first(h)  # (B, width, H, W)
        h = F.relu(self.positions(h) if self.positions is not None else h)
        if stages is not None:
            stages.append(h)
        for block in self.blocks:
            h = block(h)
            if stages is not None:
                stages.append(h)
        for layer in self.head:
            h = F.relu(layer(h))
        logits = self.out(h)  # (B, C * levels, H, W): channel c's logits in block c
        B, _, H, W = logits.shape
        return logits.view(B, self.args.channels, self.args.levels, H, W).transpose(1, 2)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per channel of every pixel, in nats:
        -1/D sum_i log p(x_i | x_<i). Divided by ln 2 it is bits per dimension."""
        return F.cross_entropy(self(x), x.long())

    # -- drawing --
    def reach(self) -> int:
        """How many rows up (and columns to each side) a pixel's receptive field extends:
        each masked kxk layer adds k//2."""
        return self.first.reach() + sum(block.look.reach() for block in self.blocks)

    def logits_at(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        """The logits of pixel (row, col) only: (B, levels, C), equal to forward(x)[..., row, col].

        forward() recomputes the whole image for every pixel drawn. But a pixel depends
        only on the window of rows [row - reach, row] and columns [col - reach, col + reach]
        (its receptive field), so we cut that window out and run the stack on it. Each
        masked layer shrinks the window by its own reach (the outputs near a cut edge lack
        inputs); the last one leaves exactly this pixel: about 60x less work at 28x28."""
        r = self.reach()
        H, W = x.shape[-2:]
        box = Box(max(0, row - r), max(0, col - r), min(W - 1, col + r), W)
        h = self.scale(x[:, :, box.top: row + 1, box.left: box.right + 1])  # (B, C, <= r + 1, <= 2r + 1)
        h, box = self.first.forward_window(h, box)
        h = F.relu(self.positions(h, box.top, box.left) if self.positions is not None else h)
        for block in self.blocks:
            h, box = block.forward_window(h, box)
        for layer in self.head:
            h = F.relu(layer(h))
        logits = self.out(h)[:, :, -1, col - box.left]  # (B, C * levels): the window's last row
        return logits.view(len(x), self.args.channels, self.args.levels).transpose(1, 2)

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator, temperature: float = 1.0):
        """Draw n images one channel of one pixel at a time, in raster order:
        x_i ~ softmax(logits_i / temperature), given everything drawn before it. Yields
        (i, x, probs) once raster position i is drawn: the images so far, level indices
        (n, C, H, W), and the distributions (n, C, levels) its channels were drawn from."""
        C, (H, W) = self.args.channels, size
        x = torch.zeros(n, C, H, W, dtype=torch.long, device=self.out.weight.device)
        probs = torch.zeros(n, C, self.args.levels)
        for i in range(H * W):
            row, col = divmod(i, W)
            for c in range(C):  # R, then G (which sees this pixel's R), then B
                probs[:, c] = self.pixel_probs(x, row, col, c, temperature)
                x[:, c, row, col] = torch.multinomial(probs[:, c], 1, generator=generator).squeeze(1).to(x.device)
            yield i, x, probs

    @torch.no_grad()
    def pixel_probs(self, x: torch.Tensor, row: int, col: int, channel: int, temperature: float) -> torch.Tensor:
        """softmax(logits / temperature) of one channel of one pixel: (n, levels), on the CPU
        (where the sampling generator lives). Below 1 the likeliest level gains."""
        logits = self.logits_at(x, row, col)[:, :, channel]  # (n, levels)
        return (logits.float() / temperature).softmax(-1).cpu()

    def sample(self, n: int, size: tuple[int, int], generator: torch.Generator,
               temperature: float = 1.0) -> torch.Tensor:
        """n finished images (n, C, H, W) of level indices (see :meth:`draw`)."""
        x = None
        for _, x, _ in self.draw(n, size, generator, temperature):
            pass
        return x
