"""A fused GPU kernel for ConsistI2V's temporal self-attention (Triton; CUDA, half precision).

At every spatial position, 16 queries (the frames) attend to 24 keys (the frames plus the 3x3
neighbourhood of frame 0). Given to SDPA as 8 * b * H * W separate sequences, each of them fills about
5 % of a flash-attention tile, and the sequences first have to be gathered into their own tensors. The
kernel reads queries, keys and values straight from the projections' ``(b*F, H*W, C)`` layout, gathers
the window keys of frame 0 itself (replicate borders) and writes the output in the same layout: no
transposes, no window tensor, one launch.

Rotary positions can be applied in the kernel too (``cos``/``sin`` tables per frame and channel pair, read
once per program): the projections then go in as the linear layers return them, which saves a pass that
reads and writes the queries and keys. Each rotated pair is read as its even and odd channel, and the
scores are the sum of the two halves' products (a dot product does not depend on the channel order).

The PyTorch path in :mod:`.attention` computes the same function and is what runs on CPUs, in float32
and without Triton.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Optional

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
        q_ptr, k_ptr, v_ptr, cos_ptr, sin_ptr, o_ptr, hw, height, width, channels, head_dim, scale,
        N_FRAMES: tl.constexpr, FRAMES_PAD: tl.constexpr, KEYS_PAD: tl.constexpr, D_PAD: tl.constexpr,
        PAIRS_PAD: tl.constexpr, ROTATE: tl.constexpr, BLOCK_P: tl.constexpr,
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
        q_mask = frame_ok[:, None] & dim_ok[None, :]
        k_mask = key_ok[:, None] & dim_ok[None, :]
        if ROTATE:  # this head's channel pairs, at the query frames and at the key frames
            pairs = tl.arange(0, PAIRS_PAD)
            pair = head * (head_dim // 2) + pairs
            even = 2 * pair
            qp_mask = frame_ok[:, None] & (pairs < head_dim // 2)[None, :]
            kp_mask = key_ok[:, None] & (pairs < head_dim // 2)[None, :]
            q_table = frames[:, None] * (channels // 2) + pair[None, :]
            k_table = key_frame[:, None] * (channels // 2) + pair[None, :]
        for i in range(BLOCK_P):
            p = tl.program_id(1) * BLOCK_P + i  # BLOCK_P divides hw: no position is out of range
            y = p // width
            x = p % width
            ny = tl.minimum(tl.maximum(y + dy, 0), height - 1)
            nx = tl.minimum(tl.maximum(x + dx, 0), width - 1)
            key_pos = tl.where(is_frame_key, p, ny * width + nx)
            q_at = ((video * N_FRAMES + frames).to(tl.int64) * hw + p)[:, None] * channels
            k_at = ((video * N_FRAMES + key_frame).to(tl.int64) * hw + key_pos)[:, None] * channels
            v = tl.load(v_ptr + k_at + channel[None, :], mask=k_mask, other=0.0)
            if ROTATE:  # tables re-read per position (cached): held, they would need more registers than q, k, v
                cos_q = tl.load(cos_ptr + q_table, mask=qp_mask, other=1.0)
                sin_q = tl.load(sin_ptr + q_table, mask=qp_mask, other=0.0)
                cos_k = tl.load(cos_ptr + k_table, mask=kp_mask, other=1.0)
                sin_k = tl.load(sin_ptr + k_table, mask=kp_mask, other=0.0)
                q_even = tl.load(q_ptr + q_at + even[None, :], mask=qp_mask, other=0.0).to(tl.float32)
                q_odd = tl.load(q_ptr + q_at + even[None, :] + 1, mask=qp_mask, other=0.0).to(tl.float32)
                k_even = tl.load(k_ptr + k_at + even[None, :], mask=kp_mask, other=0.0).to(tl.float32)
                k_odd = tl.load(k_ptr + k_at + even[None, :] + 1, mask=kp_mask, other=0.0).to(tl.float32)
                scores = tl.dot((q_even * cos_q - q_odd * sin_q).to(v.dtype),
                                tl.trans((k_even * cos_k - k_odd * sin_k).to(v.dtype)))
                scores += tl.dot((q_odd * cos_q + q_even * sin_q).to(v.dtype),
                                 tl.trans((k_odd * cos_k + k_even * sin_k).to(v.dtype)))
            else:
                q = tl.load(q_ptr + q_at + channel[None, :], mask=q_mask, other=0.0)
                k = tl.load(k_ptr + k_at + channel[None, :], mask=k_mask, other=0.0)
                scores = tl.dot(q, tl.trans(k))
            scores = tl.where(key_ok[None, :], scores * scale, float("-inf"))
            weights = tl.exp(scores - tl.max(scores, axis=1)[:, None])
            total = tl.sum(weights, axis=1)
            out = tl.dot(weights.to(v.dtype), v) / total[:, None]
            tl.store(o_ptr + q_at + channel[None, :], out.to(o_ptr.dtype.element_ty), mask=q_mask)


#: warps per program (the benchmarks try others)
NUM_WARPS = 2


def _launch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None,
            n_frames: int, height: int, width: int, heads: int) -> torch.Tensor:
    bf, hw, channels = q.shape
    head_dim = channels // heads
    out = torch.empty_like(q)
    block_p = next(p for p in (4, 2, 1) if hw % p == 0)
    grid = (heads, hw // block_p, bf // n_frames)
    rotate = cos is not None
    # Triton launches on the current CUDA device, not the tensors' one: on cuda:1 (torchrun, --set device=cuda:1)
    # the kernel would otherwise run on cuda:0's stream with cuda:1's pointers
    with torch.cuda.device(q.device) if q.is_cuda else contextlib.nullcontext():
        _window_attention_kernel[grid](
            q, k, v, cos if rotate else q, sin if rotate else q, out, hw, height, width, channels, head_dim,
            1.0 / math.sqrt(head_dim),
            N_FRAMES=n_frames, FRAMES_PAD=max(16, triton.next_power_of_2(n_frames)),
            KEYS_PAD=max(16, triton.next_power_of_2(n_frames + WINDOW)),
            D_PAD=max(16, triton.next_power_of_2(head_dim)),
            PAIRS_PAD=max(16, triton.next_power_of_2(head_dim // 2)), ROTATE=rotate, BLOCK_P=block_p,
            num_warps=NUM_WARPS,
        )
    return out


if triton is not None:

    @torch.library.custom_op("i2vbench::temporal_window_attention", mutates_args=())
    def _temporal_window_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cos: Optional[torch.Tensor],
                                      sin: Optional[torch.Tensor], n_frames: int, height: int, width: int,
                                      heads: int) -> torch.Tensor:
        if cos is not None:
            cos, sin = cos.float().contiguous(), sin.float().contiguous()
        return _launch(q.contiguous(), k.contiguous(), v.contiguous(), cos, sin, n_frames, height, width, heads)

    @_temporal_window_attention_op.register_fake
    def _(q, k, v, cos, sin, n_frames, height, width, heads):
        return torch.empty_like(q, memory_format=torch.contiguous_format)


def temporal_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_frames: int, height: int,
                              width: int, heads: int, rotary: tuple[torch.Tensor, torch.Tensor] | None = None
                              ) -> torch.Tensor:
    """Temporal self-attention with the frame-0 window on ``(b*F, H*W, C)`` projections.

    Keys and values of each position are its ``F`` frames followed by frame 0 at the 8 neighbouring
    positions (row-major 3x3 without the centre, borders replicated). Returns ``(b*F, H*W, C)``.

    ``rotary=None``: ``q`` and ``k`` come already rotated. Otherwise ``(cos, sin)``, each ``(F, C/2)``: the
    angle of channel pair ``j`` (channels ``2j, 2j+1``) at frame ``f``; the kernel rotates queries by
    their frame and keys by theirs (window keys: frame 0). Needs an even head size.
    """
    cos, sin = rotary if rotary is not None else (None, None)
    if cos is not None:
        channels = q.shape[-1]
        if channels // heads % 2:
            raise ValueError(f"rotary pairs would straddle heads of {channels // heads} channels: rotate q, k first")
        table = (n_frames, channels // 2)
        if cos.shape != table or sin.shape != table or cos.device != q.device or sin.device != q.device:
            raise ValueError(f"rotary tables must be {table} on {q.device}; got cos {tuple(cos.shape)} on "
                             f"{cos.device}, sin {tuple(sin.shape)} on {sin.device}")
    return _temporal_window_attention_op(q, k, v, cos, sin, n_frames, height, width, heads)
