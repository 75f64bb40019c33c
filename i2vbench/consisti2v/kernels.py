"""A fused GPU kernel for ConsistI2V's temporal self-attention (Triton; CUDA, half precision).

At every spatial position, 16 queries (the frames) attend to 24 keys (the frames plus the 3x3
neighbourhood of frame 0). Given to SDPA as 8 * b * H * W separate sequences, each of them fills about
5 % of a flash-attention tile, and the sequences first have to be gathered into their own tensors. The
kernel reads queries, keys and values straight from the projections' ``(b*F, H*W, C)`` layout, gathers
the window keys of frame 0 itself (replicate borders) and writes the output in the same layout: no
transposes, no window tensor, one launch.

The PyTorch path in :mod:`.attention` computes the same function and is what runs on CPUs, in float32
and without Triton.
"""

from __future__ import annotations

import math
import os

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
    return os.environ.get("TRITON_INTERPRET") == "1"


if triton is not None:

    @triton.jit
    def _window_attention_kernel(
        q_ptr, k_ptr, v_ptr, o_ptr, hw, height, width, channels, head_dim, scale,
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
        key_frame = tl.where(is_frame_key, keys, 0)
        channel = head * head_dim + dims
        q_mask = frame_ok[:, None] & dim_ok[None, :]
        k_mask = key_ok[:, None] & dim_ok[None, :]
        for i in range(BLOCK_P):
            p = tl.program_id(1) * BLOCK_P + i  # BLOCK_P divides hw: no position is out of range
            y = p // width
            x = p % width
            ny = tl.minimum(tl.maximum(y + dy, 0), height - 1)
            nx = tl.minimum(tl.maximum(x + dx, 0), width - 1)
            key_pos = tl.where(is_frame_key, p, ny * width + nx)
            q_rows = (video * N_FRAMES + frames).to(tl.int64) * hw + p
            k_rows = (video * N_FRAMES + key_frame).to(tl.int64) * hw + key_pos
            q = tl.load(q_ptr + q_rows[:, None] * channels + channel[None, :], mask=q_mask, other=0.0)
            k = tl.load(k_ptr + k_rows[:, None] * channels + channel[None, :], mask=k_mask, other=0.0)
            v = tl.load(v_ptr + k_rows[:, None] * channels + channel[None, :], mask=k_mask, other=0.0)
            scores = tl.dot(q, tl.trans(k)) * scale
            scores = tl.where(key_ok[None, :], scores, float("-inf"))
            weights = tl.exp(scores - tl.max(scores, axis=1)[:, None])
            total = tl.sum(weights, axis=1)
            out = tl.dot(weights.to(v.dtype), v) / total[:, None]
            tl.store(o_ptr + q_rows[:, None] * channels + channel[None, :], out.to(o_ptr.dtype.element_ty), mask=q_mask)


def _launch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_frames: int, height: int, width: int,
            heads: int) -> torch.Tensor:
    bf, hw, channels = q.shape
    head_dim = channels // heads
    out = torch.empty_like(q)
    block_p = next(p for p in (4, 2, 1) if hw % p == 0)
    grid = (heads, hw // block_p, bf // n_frames)
    _window_attention_kernel[grid](
        q, k, v, out, hw, height, width, channels, head_dim, 1.0 / math.sqrt(head_dim),
        N_FRAMES=n_frames, FRAMES_PAD=max(16, triton.next_power_of_2(n_frames)),
        KEYS_PAD=max(16, triton.next_power_of_2(n_frames + WINDOW)), D_PAD=max(16, triton.next_power_of_2(head_dim)),
        BLOCK_P=block_p, num_warps=2,
    )
    return out


if triton is not None:

    @torch.library.custom_op("i2vbench::temporal_window_attention", mutates_args=())
    def _temporal_window_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_frames: int,
                                      height: int, width: int, heads: int) -> torch.Tensor:
        return _launch(q.contiguous(), k.contiguous(), v.contiguous(), n_frames, height, width, heads)

    @_temporal_window_attention_op.register_fake
    def _(q, k, v, n_frames, height, width, heads):
        return torch.empty_like(q, memory_format=torch.contiguous_format)


def temporal_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_frames: int, height: int,
                              width: int, heads: int) -> torch.Tensor:
    """Temporal self-attention with the frame-0 window on ``(b*F, H*W, C)`` rotated projections.

    Keys and values of each position are its ``F`` frames followed by frame 0 at the 8 neighbouring
    positions (row-major 3x3 without the centre, borders replicated). Returns ``(b*F, H*W, C)``.
    """
    return _temporal_window_attention_op(q, k, v, n_frames, height, width, heads)
