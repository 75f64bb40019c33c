"""RAFT optical flow for dynamic degree (torchvision's ``raft_large`` with the original ``raft-things``
weights), and what both motion metrics share: the replicate padding RAFT and AMT apply before their
networks, and how many frame pairs go through a network at once.

torchvision's ``Raft_Large_Weights.C_T_V1`` are the weights of princeton-vl/RAFT ``raft-things.pth``
(FlyingChairs + FlyingThings3D) ported by torchvision, which is what VBench loads for dynamic degree.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import weights
from ..weights import WEIGHTS

RAFT_WEIGHTS = WEIGHTS["raft_things"]

#: Refinement iterations, as VBench runs RAFT (``iters=20``).
RAFT_ITERATIONS = 20


def pad_to_multiple(x: Tensor, divisor: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Replicate-pad ``[N, C, H, W]`` so that H and W are multiples of ``divisor``, half on each side
    (the odd pixel at the bottom / right): RAFT's and AMT's ``InputPadder``. Returns the padded tensor
    and the pads ``(left, right, top, bottom)``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % divisor, -w % divisor
    pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    return (F.pad(x, pads, mode="replicate") if any(pads) else x), pads


def load_raft(device: str | torch.device = "cpu") -> torch.nn.Module:
    """torchvision ``raft_large`` with the cached ``raft_things`` weights (strict, ``weights_only``)."""
    from torchvision.models.optical_flow import raft_large

    path = weights.locate(RAFT_WEIGHTS.name)
    model = raft_large(weights=None, progress=False)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval().to(device)


@contextlib.contextmanager
def _tf32_matmuls(device: torch.device) -> Iterator[None]:
    """Allow TF32 for the correlation matmuls on CUDA for the duration (convolutions already may)."""
    previous = torch.get_float32_matmul_precision()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@torch.inference_mode()
def flow_magnitude(model: torch.nn.Module, first: Tensor, second: Tensor,
                   iterations: int = RAFT_ITERATIONS) -> Tensor:
    """Per-pixel magnitude of RAFT's flow ``first -> second``: ``[N, H', W']`` on the frames padded to
    multiples of 8. Frames are float RGB in [0, 255], ``[N, 3, H, W]``, scaled to [-1, 1] as RAFT expects.
    Runs in fp32 (RAFT's iterative refinement is not safe in bf16)."""
    first, _ = pad_to_multiple(first, 8)
    second, _ = pad_to_multiple(second, 8)
    with _tf32_matmuls(first.device):
        flow = model(2 * (first / 255.0) - 1.0, 2 * (second / 255.0) - 1.0, num_flow_updates=iterations)[-1]
    return torch.linalg.vector_norm(flow, dim=1)


#: Frames (pairs) per network call are bounded by this many pixels: 32 pairs of 256x256 frames.
MAX_CHUNK_PIXELS = 32 * 256 * 256

#: RAFT's and AMT's 4-level correlation pyramids at 1/8 resolution need padded frames of at least this
#: size (torchvision refuses smaller ones; AMT's coarsest level would be one pixel wide and give NaNs).
MIN_PADDED_SIDE = 128


def pairs_per_chunk(height: int, width: int, max_pixels: int = MAX_CHUNK_PIXELS) -> int:
    """How many frame pairs of this size go through a network together (at least one)."""
    return max(1, max_pixels // (height * width))


@torch.inference_mode()
def over_consecutive_pairs(clips: Sequence[np.ndarray], fn: Callable[[Tensor, Tensor], Tensor],
                           device: str | torch.device = "cpu") -> list[Tensor]:
    """``fn(frame j, frame j + 1)`` for every consecutive pair of every uint8 clip ``[T, H, W, 3]``, batched:
    the pairs of all clips of one size go through ``fn`` together, :func:`pairs_per_chunk` at a time, as
    float ``[N, 3, H, W]`` in [0, 255] on ``device``. Returns per clip ``fn``'s outputs (``T - 1`` rows) on
    the CPU."""
    out: list[Tensor | None] = [None] * len(clips)
    by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, clip in enumerate(clips):
        by_size[clip.shape[1:3]].append(i)
    for (height, width), members in by_size.items():
        frames = torch.from_numpy(np.concatenate([clips[i] for i in members]))
        lengths = [len(clips[i]) for i in members]
        starts = np.cumsum([0] + lengths[:-1])
        firsts = torch.from_numpy(np.concatenate([np.arange(s, s + n - 1) for s, n in zip(starts, lengths)]))
        chunk = pairs_per_chunk(height, width)
        outputs = []
        for k in range(0, len(firsts), chunk):
            first, second = (frames[firsts[k : k + chunk] + o].to(device).permute(0, 3, 1, 2).float() for o in (0, 1))
            outputs.append(fn(first, second).cpu())
        for i, result in zip(members, torch.cat(outputs).split([n - 1 for n in lengths])):
            out[i] = result
    return out  # type: ignore[return-value]
