"""Motion smoothness, as VBench defines it: how well a frame interpolator (AMT-S) predicts the odd frames
from the even ones."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .. import weights
from ..errors import WeightsError
from ..weights import WEIGHTS
from .amt import AMTS
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec, score_scorable
from .raft import MIN_PADDED_SIDE, over_consecutive_pairs, pad_to_multiple

AMT_WEIGHTS = WEIGHTS["amt_s"]
AMT_CHECKPOINT = "amt-s.pth"

#: ``(first, second)`` frames ``[N, 3, H, W]`` in [0, 1] -> the frames halfway between them, same shape.
Interpolator = Callable[[Tensor, Tensor], Tensor]


def amt_checkpoint_path() -> Path:
    """The cached ``amt-s.pth``; a WeightsError naming the fetch command when it is not there."""
    path = weights.locate(AMT_WEIGHTS.name) / AMT_CHECKPOINT
    if not path.is_file():
        raise WeightsError(f"{AMT_CHECKPOINT} is missing from the cached snapshot of {AMT_WEIGHTS.repo_id} "
                           f"({path}); fetch it with '{weights.fetch_command(AMT_WEIGHTS.name)}'")
    return path


def load_amt(device: str | torch.device = "cpu") -> AMTS:
    """AMT-S with the cached released weights (the checkpoint's ``state_dict``, strict, ``weights_only``)."""
    checkpoint = torch.load(amt_checkpoint_path(), map_location="cpu", weights_only=True)
    if "state_dict" not in checkpoint:
        raise WeightsError(f"{AMT_CHECKPOINT} has no 'state_dict' entry (keys: {sorted(checkpoint)[:5]}); "
                           f"fetch it again with '{weights.fetch_command(AMT_WEIGHTS.name)}'")
    model = AMTS()
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model.eval().to(device)


def midpoint_interpolator(model: AMTS) -> Interpolator:
    """AMT-S asked for the frame at t = 0.5."""
    return lambda first, second: model(first, second, first.new_full((len(first), 1, 1, 1), 0.5))


def to_uint8(frames: Tensor) -> Tensor:
    """[0, 1] -> uint8 by truncation, as VBench converts AMT's output (``(x * 255).clip(0, 255)`` cast)."""
    return (frames * 255.0).clamp(0, 255).to(torch.uint8)


def smoothness_score(real: np.ndarray, interpolated: np.ndarray) -> float:
    """``(255 - mean over frames of the mean absolute pixel difference) / 255`` for uint8 ``[P, H, W, 3]``."""
    diff = np.abs(real.astype(np.int16) - interpolated.astype(np.int16)).reshape(len(real), -1).mean(axis=1)
    return float((255.0 - diff.mean()) / 255.0)


def interpolate_midpoints(videos: Sequence[np.ndarray], interpolator: Interpolator,
                          device: str | torch.device = "cpu") -> list[np.ndarray]:
    """For each uint8 video ``[T, H, W, 3]``, the frames predicted at the odd indices 1, 3, ... from the
    even-indexed frames around them: uint8 ``[(T - 1) // 2, H, W, 3]``.

    As in VBench, the even frames are scaled to [0, 1], replicate-padded to multiples of 16, interpolated at
    t = 0.5, cropped back and truncated to uint8. The pairs of all videos of one size are batched.
    """

    def midpoint(first: Tensor, second: Tensor) -> Tensor:
        height, width = first.shape[-2:]
        (first, (left, _, top, _)), (second, _) = (pad_to_multiple(x / 255.0, 16) for x in (first, second))
        middle = interpolator(first, second)[:, :, top : top + height, left : left + width]
        return to_uint8(middle).permute(0, 2, 3, 1)

    return [m.numpy() for m in over_consecutive_pairs([video[0::2] for video in videos], midpoint, device)]


class MotionSmoothness(Metric):
    """How predictable the motion is from the frames around it (VBench's motion smoothness).

    Keep the even-indexed frames, interpolate the frame halfway between each consecutive pair with AMT-S
    (released ``amt-s.pth``; frames replicate-padded to multiples of 16, t = 0.5, output truncated to
    uint8), and compare each with the real odd frame: video score = (255 - mean over the interpolated
    frames of their mean absolute RGB difference) / 255; dataset score = mean over videos. A trailing odd
    frame with no even frame after it is not compared. Higher is smoother.
    """

    name = "motion_smoothness"
    group = "motion"
    scores = (ScoreSpec("motion_smoothness"),)
    backbones = ("amt_s",)
    description = "odd frames predicted by AMT-S frame interpolation from the even ones (VBench)"

    def unavailable_reason(self) -> str | None:
        return weights.missing_reason(amt_checkpoint_path)

    def load(self) -> AMTS:
        return load_amt(self.device)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        return score_scorable(items, self._unscorable, self._score_videos)

    def _score_videos(self, items: list[EvalItem]) -> list[MetricResult]:
        videos = [it.video.frames for it in items]
        midpoints = interpolate_midpoints(videos, midpoint_interpolator(self.network()), self.device)
        return [MetricResult({"motion_smoothness": smoothness_score(video[1::2][: len(predicted)], predicted)})
                for video, predicted in zip(videos, midpoints)]

    @staticmethod
    def _unscorable(item: EvalItem) -> str | None:
        if item.video.num_frames < 3:
            return f"motion_smoothness needs at least 3 frames; the video has {item.video.num_frames}"
        if min(-(-side // 16) * 16 for side in item.video.size) < MIN_PADDED_SIDE:
            return f"motion_smoothness needs frames of at least {MIN_PADDED_SIDE}x{MIN_PADDED_SIDE} for AMT-S"
        return None
