"""A fused GPU kernel for ConsistI2V's temporal self-attention (Triton; CUDA, half precision).

At every spatial position, 16 queries (the frames) attend to 24 keys (the frames plus the 3x3
neighbourhood of frame 0). Given to SDPA as 8 * b * H * W separate sequences, each of them fills about
5 % of a flash-attention tile, and the sequences first have to be gathered into their own tensors. The
kernel reads queries, keys and values straight from the projections' ``(b*F, H*W, C)`` layout, gathers
the window keys of frame 0 itself (replicate borders) and writes the output in the same layout: no
transposes, no window tensor, one launch.

Rotary positions are applied in the kernel too (in float32), so the projections go in as the linear
layers return them. The PyTorch path in :mod:`.attention` computes the same function and is what runs on CPUs, in float32
and without Triton.
"""

from __future__ import annotations

import math

import torch

try:  # Triton ships with the CUDA builds of torch; CPU-only installs run the PyTorch path
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installed torch
    triton = None

WINDOW = 8  # 3x3 neighbourhood of frame 0 without its centre


def fused_available(q: torch.Tensor, n_frames: int) -> bool:
    """Whether :func:`temporal_window_attention` can run on ``q``: Triton, a CUDA (or, in Triton's
    interpreter, CPU) tensor in fp16/bf16, and at most 64 frames."""
    if triton is None or q.dtype not in (torch.float16, torch.bfloat16) or n_frames > 64:
        return False
    return q.is_cuda or _interpreting()


def _interpreting() -> bool:
    import os

    return os.environ.get("TRITON_INTERPRET") == "1"


if triton is not None:

    @triton.jit
    def _rotated(x, partner, position, freq, odd):
        """Rotary positions on interleaved pairs: ``x*cos + rotate_half(x)*sin`` in float32; ``freq`` is 0
        past the rotated channels (the identity there)."""
        angle = position.to(tl.float32)[:, None] * freq[None, :]
        half = tl.where(odd[None, :], partner.to(tl.float32), -partner.to(tl.float32))
        return x.to(tl.float32) * tl.cos(angle) + half * tl.sin(angle)

    @triton.jit
    def _window_attention_kernel(
        q_ptr, k_ptr, v_ptr, freqs_ptr, o_ptr, hw, height, width, channels, head_dim, rotary_channels, scale,
        N_FRAMES: tl.constexpr, FRAMES_PAD: tl.constexpr, KEYS_PAD: tl.constexpr, D_PAD: tl.constexpr,
        BLOCK_P: tl.constexpr,
    ):
        head = tl.program_id(0)
        video = tl.program_id(2)
        frames = tl.arange(0, FRAMES_PAD)
        keys = tl.arange(0, KEYS_PAD)
        dims = tl.arange(0, D_PAD)
        dim_ok = dims < head_dim
        frame_ok = frames < N_FRAMES
        key_ok = keys < N_FRAMES + 8
        is_frame_key = keys < N_FRAMES
        # window key w (0..7) is the 3x3 offset w, or w+1 past the dropped centre (row-major)
        offset = keys - N_FRAMES
        offset = tl.where(offset >= 4, offset + 1, offset)
        offset = tl.where(is_frame_key | ~key_ok, 4, offset)
        dy = offset // 3 - 1
        dx = offset % 3 - 1
        key_frame = tl.where(is_frame_key, keys, 0)  # window keys are frame 0's, at rotary position 0
        channel = head * head_dim + dims
        partner = channel ^ 1  # the other channel of each rotated pair
        rotated = dim_ok & (channel < rotary_channels)
        freq = tl.load(freqs_ptr + channel // 2, mask=rotated, other=0.0)
        odd = (channel % 2) == 1
        q_mask = frame_ok[:, None] & dim_ok[None, :]
        k_mask = key_ok[:, None] & dim_ok[None, :]
        for i in range(BLOCK_P):
            p = tl.program_id(1) * BLOCK_P + i  # BLOCK_P divides hw: no position is out of range
            y = p // width
            x = p % width
            ny = tl.minimum(tl.maximum(y + dy, 0), height - 1)
            nx = tl.minimum(tl.maximum(x + dx, 0), width - 1)
            key_pos = tl.where(is_frame_key, p, ny * width + nx)
            q_at = ((video * N_FRAMES + frames).to(tl.int64) * hw + p)[:, None] * channels
            k_at = ((video * N_FRAMES + key_frame).to(tl.int64) * hw + key_pos)[:, None] * channels
            q = _rotated(tl.load(q_ptr + q_at + channel[None, :], mask=q_mask, other=0.0),
                         tl.load(q_ptr + q_at + partner[None, :], mask=q_mask, other=0.0), frames, freq, odd)
            k = _rotated(tl.load(k_ptr + k_at + channel[None, :], mask=k_mask, other=0.0),
                         tl.load(k_ptr + k_at + partner[None, :], mask=k_mask, other=0.0), key_frame, freq, odd)
            v = tl.load(v_ptr + k_at + channel[None, :], mask=k_mask, other=0.0)
            scores = tl.dot(q.to(v.dtype), tl.trans(k.to(v.dtype))) * scale
            scores = tl.where(key_ok[None, :], scores, float("-inf"))
            weights = tl.exp(scores - tl.max(scores, axis=1)[:, None])
            total = tl.sum(weights, axis=1)
            out = tl.dot(weights.to(v.dtype), v) / total[:, None]
            tl.store(o_ptr + q_at + channel[None, :], out.to(o_ptr.dtype.element_ty), mask=q_mask)


def _launch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, freqs: torch.Tensor, n_frames: int, height: int,
            width: int, heads: int) -> torch.Tensor:
    bf, hw, channels = q.shape
    head_dim = channels // heads
    out = torch.empty_like(q)
    block_p = next(p for p in (4, 2, 1) if hw % p == 0)
    grid = (heads, hw // block_p, bf // n_frames)
    _window_attention_kernel[grid](
        q, k, v, freqs, out, hw, height, width, channels, head_dim, 2 * freqs.numel(), 1.0 / math.sqrt(head_dim),
        N_FRAMES=n_frames, FRAMES_PAD=max(16, triton.next_power_of_2(n_frames)),
        KEYS_PAD=max(16, triton.next_power_of_2(n_frames + WINDOW)), D_PAD=max(16, triton.next_power_of_2(head_dim)),
        BLOCK_P=block_p, num_warps=2,
    )
    return out


if triton is not None:

    @torch.library.custom_op("i2vbench::temporal_window_attention", mutates_args=())
    def _temporal_window_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, freqs: torch.Tensor,
                                      n_frames: int, height: int, width: int, heads: int) -> torch.Tensor:
        freqs = freqs.float().contiguous()
        return _launch(q.contiguous(), k.contiguous(), v.contiguous(), freqs, n_frames, height, width, heads)

    @_temporal_window_attention_op.register_fake
    def _(q, k, v, freqs, n_frames, height, width, heads):
        return torch.empty_like(q, memory_format=torch.contiguous_format)


def temporal_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, freqs: torch.Tensor,
                              n_frames: int, height: int, width: int, heads: int) -> torch.Tensor:
    """Temporal self-attention with the frame-0 window on ``(b*F, H*W, C)`` projections.

    Queries and keys are rotated here by their frame index (window keys: 0), on the first
    ``2 * len(freqs)`` channels in interleaved pairs, as :class:`.attention.RotaryEmbedding` does. Keys
    and values of each position are its ``F`` frames followed by frame 0 at the 8 neighbouring
    positions (row-major 3x3 without the centre, borders replicated). Returns ``(b*F, H*W, C)``.
    """
    return _temporal_window_attention_op(q, k, v, freqs, n_frames, height, width, heads)
