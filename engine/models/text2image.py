"""Prompt to image: a text encoder and a denoising U-Net, trained together.

The caption "a small red circle at the top left" becomes word ids, the text encoder turns
them into one vector, and the U-Net predicts the noise in x_t told both t and that vector.
The vector reaches the U-Net twice: added to its timestep embedding (every residual block
hears what to draw) and as coarse layout maps beside the image (where to draw it):

    tokens (B, L) -> TextEncoder -> text vector (B, D) -> UNet(x_t + layout, t, cond=vector) -> eps

(The U-Net's raw output is v, a mix of noise and image that a small, briefly trained model
predicts more safely; eps follows from it exactly: see TextToImage.v_target.)

Classifier-free guidance. During training the caption is dropped for a share p_uncond of
the images: their vector is replaced by a learned "empty caption" vector, so the same
network also learns the unconditional model, the noise to predict when told nothing. At
sampling time both predictions are made, in one batch, and pushed apart:

    eps = eps_uncond + w * (eps_cond - eps_uncond)

w = 0 is the unconditional model, w = 1 the plain conditional one, and w > 1 walks further
in the direction the caption points: images match their captions more closely, at some
cost of variety.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.diffusion import NoiseSchedule
from engine.models.unet import UNet, UNetArgs

LAYOUT = 4  # maps the caption vector draws, as extra input planes of the U-Net
GRID = 8  # cells across each layout map


class EncoderBlock(nn.Module):
    """One Transformer encoder layer (pre-norm): every word looks at every other word, then a
    small MLP works on each word alone. Padding is masked out of the attention."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """h: (B, L, D) word vectors; keep: (B, L) bool, False at padding."""
        B, L, D = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        # (B, heads, L, D/heads) each; a query may attend only to real words (keep), never padding
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        h = h + self.proj(a.transpose(1, 2).reshape(B, L, D))  # softmax(q k^T / sqrt(d)) v
        return h + self.mlp(self.norm2(h))


class TextEncoder(nn.Module):
    """Word ids (B, L), 0 = padding -> one caption vector (B, dim).

    Word embeddings say which word, position embeddings where it stands ("top left" must
    differ from "left top"); the encoder layers let words read each other; the mean over
    the real words (padding left out) is the caption's vector."""

    def __init__(self, vocab: int, dim: int, max_len: int, layers: int = 2, heads: int = 4):
        super().__init__()
        heads = heads if dim % heads == 0 else 1
        self.words = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keep = tokens != 0  # (B, L)
        h = self.words(tokens) + self.positions[: tokens.shape[1]]  # (B, L, D)
        for block in self.blocks:
            h = block(h, keep)
        h = self.norm(h)
        w = keep.to(h.dtype)[..., None]  # (B, L, 1)
        return (h * w).sum(1) / w.sum(1).clamp_min(1)  # (B, D): the mean over real words


@dataclass
class TextToImageArgs:
    vocab: int  # word ids 0 .. vocab-1 (0 is padding)
    max_len: int  # longest caption in words
    size: int = 32  # image size (the U-Net works at any size; kept for the checkpoint)
    channels: int = 3
    base: int = 32  # U-Net channels at full resolution
    mults: tuple[int, ...] = (1, 2, 2)
    text_dim: int = 64  # size of the caption vector
    text_layers: int = 2
    time_dim: int = 128
    schedule: str = "cosine"  # the noise schedule it is trained with (see v_to_eps)
    timesteps: int = 1000


class TextToImage(nn.Module):
    """The noise predictor told a caption: (x_t (B, C, H, W), t (B,), tokens (B, L)) -> eps.

    The U-Net's output is not eps itself but v, a mix of noise and image (see v_target);
    eps follows from v and x_t exactly (v_to_eps), so the sampler sees a noise predictor."""

    def __init__(self, args: TextToImageArgs):
        super().__init__()
        self.args = args
        self.text = TextEncoder(args.vocab, args.text_dim, args.max_len, args.text_layers)
        # The unconditional branch's input: one learned vector standing for "no caption".
        self.empty = nn.Parameter(torch.zeros(args.text_dim))
        # A coarse layout drawn from the caption vector: LAYOUT maps of GRID x GRID cells.
        self.layout = nn.Linear(args.text_dim, LAYOUT * GRID * GRID)
        # The U-Net reads the image plus two coordinate planes and the layout maps (see
        # where), and gives as many planes out, of which the first `channels` are used.
        extra = 2 + LAYOUT
        self.unet = UNet(UNetArgs(channels=args.channels + extra, base=args.base, mults=args.mults,
                                  time_dim=args.time_dim, cond_dim=args.text_dim))
        alpha_bar = NoiseSchedule(args.schedule, args.timesteps).alpha_bar  # (T+1,)
        self.register_buffer("alpha_bar", alpha_bar, persistent=False)  # follows .to(device)

    def condition(self, tokens: torch.Tensor, drop_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Caption vectors (B, text_dim); rows where drop_mask (B,) is True get the empty one."""
        vec = self.text(tokens)  # (B, D)
        if drop_mask is not None:
            vec = torch.where(drop_mask[:, None], self.empty.to(vec.dtype).expand_as(vec), vec)
        return vec

    def _levels(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t), shaped (B, 1, 1, 1)."""
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return ab.sqrt(), (1 - ab).sqrt()

    def v_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the U-Net learns to output, v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0.

        Why not eps itself: near t = T, x_t is almost all noise, so eps ~ x_t, and the image
        the sampler needs is recovered as x_0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar),
        which multiplies any error in eps by up to 1 / sqrt(alpha_bar) (about 10,000 at
        t = T). A small model trained for minutes makes such errors, and the first sampling
        steps then paint coloured noise. v is mostly eps at low noise and mostly -x_0 at high
        noise, so no step of the chain amplifies the network's error."""
        a, s = self._levels(t)
        return a * noise - s * x0

    def v_to_eps(self, v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps from v: with x_t = a x_0 + s eps and a^2 + s^2 = 1, eps = s x_t + a v."""
        a, s = self._levels(t)
        return s * x_t + a * v.to(x_t.dtype)

    def where(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) with more input planes: each pixel's row and column (-1 to 1), and
        LAYOUT maps that the caption vector draws on a coarse grid, smoothly enlarged.

        The caption vector is also added to the timestep embedding, but that reaches every
        pixel alike, and a convolution does the same thing wherever it is: told only "top
        left", the network must find the top left from the zero padding at the borders, and
        learns it slowly (position stayed at chance in our first runs, while colour and size
        were right). The layout maps put "here" into the picture itself."""
        B, _, H, W = x.shape
        rows = torch.linspace(-1, 1, H, device=x.device, dtype=x.dtype).view(1, 1, H, 1).expand(B, 1, H, W)
        cols = torch.linspace(-1, 1, W, device=x.device, dtype=x.dtype).view(1, 1, 1, W).expand(B, 1, H, W)
        maps = self.layout(cond).view(B, LAYOUT, GRID, GRID)  # (B, LAYOUT, GRID, GRID)
        maps = F.interpolate(maps, size=(H, W), mode="bilinear", align_corners=False).to(x.dtype)
        return torch.cat([x, rows, cols, maps], dim=1)  # (B, C + 2 + LAYOUT, H, W)

    def _unet(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.unet(self.where(x, cond), t, cond)[:, : self.args.channels]  # (B, C, H, W)

    def predict_v(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                  drop_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The U-Net's output v (B, C, H, W), told the caption (the empty one where drop_mask)."""
        return self._unet(x, t, self.condition(tokens, drop_mask))

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                drop_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise (B, C, H, W). drop_mask (B,) bool: forget those captions (caption
        dropout for classifier-free guidance in training; all True: the unconditional model)."""
        return self.v_to_eps(self.predict_v(x, t, tokens, drop_mask), x, t)

    def guided_eps(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                   guidance: float | torch.Tensor) -> torch.Tensor:
        """Classifier-free guidance in one batched pass of 2B images:

            eps = eps_uncond + w * (eps_cond - eps_uncond)

        guidance w: a number, or one per image (B,) (the guidance sweep draws every row in one
        batch). torch.lerp computes exactly this formula.

        A plain number 0 or 1 needs only one of the two predictions (the other is multiplied
        by zero), so only that one is computed: half the work, and exactly the unconditional
        or the conditional model (a batch of 2B can round differently from a batch of B)."""
        B = x.shape[0]
        if not torch.is_tensor(guidance) and guidance in (0, 1):
            return self(x, t, tokens, drop_mask=torch.full((B,), guidance == 0, device=x.device))
        vec = self.text(tokens)  # (B, D)
        cond = torch.cat([self.empty.to(vec.dtype).expand_as(vec), vec])  # (2B, D): empty first
        x2, t2 = torch.cat([x, x]), torch.cat([t, t])
        eps = self.v_to_eps(self._unet(x2, t2, cond), x2, t2)  # (2B, C, H, W)
        eps_uncond, eps_cond = eps[:B], eps[B:]
        w = torch.as_tensor(guidance, dtype=eps.dtype, device=eps.device)
        if w.dim() == 1:
            w = w.view(B, 1, 1, 1)
        return torch.lerp(eps_uncond, eps_cond, w)
