"""The four attention layers of ConsistI2V, all on ``(b*F, H*W, C)`` tokens of 16-frame videos.

Spatial: first-frame self-attention (keys/values = own tokens + frame-0 tokens) and text
cross-attention. Temporal: self-attention over the frames at each position, with the 3x3
neighbourhood of frame 0 appended to keys/values, and text cross-attention; both use rotary positions
in the reference's exact (quirky) form. Module and parameter names follow the released checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .kernels import fused_available, temporal_window_attention

WINDOW_SIZE = 8  # the 3x3 neighbourhood of frame 0, centre dropped
_ROTARY_THETA = 10000.0
_RELATIVE_BIAS_BUCKETS = 32


@dataclass(frozen=True)
class VideoGeometry:
    """How ``(b*F, H*W, C)`` tokens fold back into videos (rows are video-major: ``b*F + f``)."""

    n_frames: int
    height: int
    width: int


class Attention(nn.Module):
    """Multi-head attention with the diffusers parameter layout (``to_q/to_k/to_v/to_out.0``)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{dim} channels cannot be split into {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """SDPA over ``(n, L, C)`` projections split into heads; returns ``to_out`` of the result."""
        return self.to_out[0](self.sdpa(q, k, v))

    #: the SDPA backends the attention layers may use (``torch.nn.attention.SDPBackend`` members); None: PyTorch's
    #: choice. Scoped to these layers, since the VAE's and the text encoder's attentions may need other backends.
    sdpa_backends: tuple[SDPBackend, ...] | None = None

    def sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Heads split, attended and merged again: ``(n, Lq, C)``."""
        n, lq, c = q.shape
        d = c // self.heads
        q, k, v = (t.view(n, t.shape[1], self.heads, d).transpose(1, 2) for t in (q, k, v))
        if self.sdpa_backends is None:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            with sdpa_kernel(list(self.sdpa_backends)):
                out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(n, lq, c)


class FirstFrameSelfAttention(Attention):
    """Spatial self-attention whose keys/values are ``[own tokens ; frame-0 tokens of the video]``."""

    def forward(self, x: torch.Tensor, geometry: VideoGeometry) -> torch.Tensor:
        k, v = (self._with_first(t, geometry) for t in (self.to_k(x), self.to_v(x)))
        return self.attend(self.to_q(x), k, v)

    @staticmethod
    def _with_first(t: torch.Tensor, geometry: VideoGeometry) -> torch.Tensor:
        """``[t ; t of frame 0 of the same video]`` along tokens (projecting frame 0 once, not F times)."""
        bf, hw, c = t.shape
        n = geometry.n_frames
        videos = t.view(bf // n, n, hw, c)
        # one copy: the concatenation reads frame 0 through the broadcast view, never materialising it per frame
        return torch.cat([videos, videos[:, :1].expand(-1, n, -1, -1)], dim=2).view(bf, 2 * hw, c)


class TextCrossAttention(Attention):
    """Spatial cross-attention to the text of each video.

    ``context`` is one row per VIDEO ``(b, L, D)``; the frames of a video share it, so queries of all
    frames are attended in one sequence instead of projecting the same keys ``F`` times.
    """

    def forward(self, x: torch.Tensor, geometry: VideoGeometry, context: torch.Tensor) -> torch.Tensor:
        bf, hw, c = x.shape
        b = bf // geometry.n_frames
        out = self.attend(self.to_q(x).view(b, -1, c), self.to_k(context), self.to_v(context))
        return out.view(bf, hw, c)


class RotaryEmbedding(nn.Module):
    """lucidrains-style rotary embedding over the first ``dim`` channels, interleaved pairs.

    ``freqs`` (``dim // 2`` values) is saved in the released checkpoint, so it is a buffer here. It
    stays float32 when the model is cast to fp16/bf16: rounded frequencies would shift the angles of
    late frames by a few percent.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        exponents = torch.arange(0, dim, 2)[: dim // 2].float() / dim
        self.register_buffer("freqs", 1.0 / _ROTARY_THETA**exponents)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "RotaryEmbedding":
        full = self.freqs
        super()._apply(fn, recurse)
        lowered = self.freqs.dtype in (torch.float16, torch.bfloat16) and full.dtype == torch.float32
        if lowered and not full.is_meta:
            self.freqs = full.to(self.freqs.device)
        return self

    def rotate(self, t: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Rotate ``t`` (..., C) by ``positions``, broadcast against ``t.shape[:-1]``.

        Channels past ``2 * len(freqs)`` pass through unrotated.
        """
        angles = self._angles(positions).repeat_interleave(2, dim=-1)
        cos, sin = angles.cos().to(t.dtype), angles.sin().to(t.dtype)
        rot = angles.shape[-1]
        head, tail = t[..., :rot], t[..., rot:]
        pairs = head.unflatten(-1, (-1, 2))
        rotated_half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return torch.cat([head * cos + rotated_half * sin, tail], dim=-1)

    def pair_tables(self, n_frames: int, channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and ``sin`` (n_frames, channels/2) of the angle of each channel pair at each frame, float32;
        pairs past the rotated channels get angle 0 (the identity). What :func:`.kernels.temporal_window_attention`
        rotates with."""
        angles = self._angles(torch.arange(n_frames, device=device))
        angles = F.pad(angles, (0, channels // 2 - angles.shape[1]))
        return angles.cos(), angles.sin()

    def _angles(self, positions: torch.Tensor) -> torch.Tensor:
        """float32 angle of every rotated pair at ``positions``: ``(*positions.shape, len(freqs))``."""
        return positions.float()[..., None] * self.freqs.float()


class RelativePositionBias(nn.Module):
    """Saved in the released checkpoint but never used by its forward; kept only so weights load."""

    def __init__(self, heads: int) -> None:
        super().__init__()
        self.relative_attention_bias = nn.Embedding(_RELATIVE_BIAS_BUCKETS, heads)


class TemporalAttention(Attention):
    """Shared parts of the temporal attentions: rotary positions on the first C/2 channels.

    Rotation happens on the full ``C`` channels before the head split, so heads ``0..h/2-1`` are
    rotated and the others are not, exactly as in the reference.
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__(dim, heads, context_dim)
        self.rotary_emb = RotaryEmbedding(dim // 2)
        self.rotary_bias = RelativePositionBias(heads)


def first_frame_window(x: torch.Tensor, geometry: VideoGeometry) -> torch.Tensor:
    """The 3x3 neighbourhood of frame 0 around every position, centre dropped: ``(b, H*W, 8, C)``, row-major.

    Borders use replicate padding. The centre is left out because frame 0 at the same position is
    already one of the temporal tokens. Built from slices of frame 0 with its edge rows and columns repeated,
    not from a gather with computed indices: compiled, such index arithmetic was miscompiled by inductor's
    vectorised CPU code at 2x2 (torch 2.15), and holding the indices as a compile-time constant fails once a
    graph has two sizes of them (torch 2.14).
    """
    bf, hw, c = x.shape
    n, h, w = geometry.n_frames, geometry.height, geometry.width
    first = x.view(bf // n, n, h, w, c)[:, 0]
    rows = torch.cat([first[:, :1], first, first[:, -1:]], dim=1)
    edged = torch.cat([rows[:, :, :1], rows, rows[:, :, -1:]], dim=2)  # (b, H+2, W+2, C)
    shifted = [edged[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    return torch.stack(shifted, dim=3).view(bf // n, hw, WINDOW_SIZE, c)


class TemporalSelfAttention(TemporalAttention):
    """Attention across the 16 frames at each position, keys/values extended by the frame-0 window.

    Queries sit at positions 0..F-1, frame keys at 0..F-1 and the 8 window keys at 0 (they belong to
    frame 0). Rotation by position 0 is the identity, so the window's keys and values are those of
    frame 0's tokens: projected once with the frames, then gathered, rather than projected again.
    On CUDA in half precision the attention runs in one fused kernel (:mod:`.kernels`), which also applies
    the rotary positions when ``rotate_in_kernel`` is set.
    """

    #: rotary positions applied inside the fused kernel rather than in a pass of their own before it
    rotate_in_kernel = False

    def forward(self, x: torch.Tensor, geometry: VideoGeometry) -> torch.Tensor:
        bf, _, c = x.shape
        n, h, w = geometry.n_frames, geometry.height, geometry.width
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        fused = fused_available(q, n)
        if fused and self.rotate_in_kernel and c // self.heads % 2 == 0:
            out = temporal_window_attention(q, k, v, n, h, w, self.heads, self.rotary_emb.pair_tables(n, c, x.device))
        else:
            frame_of_row = torch.arange(n, device=x.device).repeat(bf // n)[:, None]
            q, k = (self.rotary_emb.rotate(t, frame_of_row) for t in (q, k))
            out = (temporal_window_attention(q, k, v, n, h, w, self.heads) if fused
                   else self._attend_per_position(q, k, v, geometry))
        return self.to_out[0](out)

    def _attend_per_position(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             geometry: VideoGeometry) -> torch.Tensor:
        """The same attention through SDPA, one sequence per position: ``(b*H*W, F [+ 8], C)``."""
        bf, hw, c = q.shape
        n = geometry.n_frames
        b = bf // n

        def frames(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, hw, c).transpose(1, 2)

        def with_window(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([frames(t), first_frame_window(t, geometry)], dim=2).reshape(b * hw, n + WINDOW_SIZE, c)

        out = self.sdpa(frames(q).reshape(b * hw, n, c), with_window(k), with_window(v))
        return out.view(b, hw, n, c).transpose(1, 2).reshape(bf, hw, c)


class TemporalCrossAttention(TemporalAttention):
    """Temporal cross-attention to the text of each video.

    Reference quirk kept for exact outputs: queries are rotated by their frame index, keys are not.
    A rotation is orthogonal, so ``R(f)q . k = q . R(-f)k``: the few text keys of each frame are rotated
    back instead of rotating every query, and each frame attends to its own rotated keys.
    """

    def forward(self, x: torch.Tensor, geometry: VideoGeometry, context: torch.Tensor) -> torch.Tensor:
        bf, hw, c = x.shape
        n = geometry.n_frames
        b, length = bf // n, context.shape[1]
        frames = torch.arange(n, device=x.device)[:, None]
        k = self.rotary_emb.rotate(self.to_k(context)[:, None].expand(b, n, length, c), -frames)
        v = self.to_v(context)[:, None].expand(b, n, length, c)
        return self.attend(self.to_q(x), k.reshape(bf, length, c), v.reshape(bf, length, c))
