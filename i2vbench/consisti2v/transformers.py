"""Spatial and temporal transformers (diffusers ``Transformer2DModel`` layout, linear projections)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import (
    FirstFrameSelfAttention,
    TemporalCrossAttention,
    TemporalSelfAttention,
    TextCrossAttention,
    VideoGeometry,
)
from .branches import repeat_rows

_TRANSFORMER_NORM_EPS = 1e-6


class GEGLU(nn.Module):
    """Linear to twice the width, then ``value * gelu(gate)``."""

    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU MLP, ``dim -> 4*dim -> dim``; ``net.1`` is the (inactive) dropout slot of the key layout."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TransformerBlock(nn.Module):
    """Pre-norm block: self-attention, text cross-attention, feed-forward, each residual."""

    def __init__(self, dim: int, attn1: nn.Module, attn2: nn.Module) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = attn1
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = attn2
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, geometry: VideoGeometry, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x), geometry) + x
        x = repeat_rows(x, context.shape[0] * geometry.n_frames)  # branches that shared the input part here
        x = self.attn2(self.norm2(x), geometry, context) + x
        return self.ff(self.norm3(x)) + x


class Transformer(nn.Module):
    """GroupNorm -> tokens -> proj_in -> block -> proj_out -> image, plus the input (residual)."""

    def __init__(self, dim: int, groups: int, block: TransformerBlock) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim, eps=_TRANSFORMER_NORM_EPS)
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([block])
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, geometry: VideoGeometry, context: torch.Tensor) -> torch.Tensor:
        out = self.block_output(x, geometry, context)
        return out + repeat_rows(x, out.shape[0])

    def block_output(self, x: torch.Tensor, geometry: VideoGeometry, context: torch.Tensor) -> torch.Tensor:
        """The transformer's contribution, before the residual is added."""
        bf, c, h, w = x.shape
        tokens = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(bf, h * w, c))
        for block in self.transformer_blocks:
            tokens = block(tokens, geometry, context)
        return self.proj_out(tokens).reshape(-1, h, w, c).permute(0, 3, 1, 2)  # rows: more if branches split


class SpatialTransformer(Transformer):
    """Per-frame transformer whose self-attention also sees frame 0 (first-frame conditioning)."""

    def __init__(self, dim: int, heads: int, context_dim: int, groups: int) -> None:
        block = TransformerBlock(
            dim, FirstFrameSelfAttention(dim, heads), TextCrossAttention(dim, heads, context_dim)
        )
        super().__init__(dim, groups, block)


class TemporalTransformer(Transformer):
    """Transformer across frames, gated: ``alpha*x + (1-alpha)*transformer(x)``, alpha in [0, 1]."""

    def __init__(self, dim: int, heads: int, context_dim: int, groups: int) -> None:
        block = TransformerBlock(
            dim, TemporalSelfAttention(dim, heads), TemporalCrossAttention(dim, heads, context_dim)
        )
        super().__init__(dim, groups, block)
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, geometry: VideoGeometry, context: torch.Tensor) -> torch.Tensor:
        # alpha*x + (1-alpha)*(x + out) = x + (1-alpha)*out: two passes over the activations instead of four
        out = self.block_output(x, geometry, context)
        return torch.addcmul(repeat_rows(x, out.shape[0]), 1.0 - self.alpha.clamp(0.0, 1.0), out)
