"""Dynamic degree, as VBench defines it: does the video move? (RAFT optical flow between sampled frames.)"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .. import weights
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec, score_scorable
from .raft import MIN_PADDED_SIDE, RAFT_WEIGHTS, flow_magnitude, load_raft, over_consecutive_pairs

#: A pair's motion is the mean of its largest 5% flow magnitudes.
TOP_FRACTION = 0.05


def frame_interval(fps: float) -> int:
    """VBench looks at about 8 frames a second: every ``max(1, round(fps / 8))``-th frame (Python's
    ``round``, halves to even: 20 fps -> 2, 28 fps -> 4)."""
    return max(1, round(fps / 8))


def sampled_indices(num_frames: int, fps: float) -> list[int]:
    """Indices of the frames dynamic degree compares, consecutive ones pairwise: 0, k, 2k, ..."""
    return list(range(0, num_frames, frame_interval(fps)))


def motion_threshold(height: int, width: int) -> float:
    """A pair moves when its top-5% flow exceeds 6 px at a 256-px short side, scaled with the short side."""
    return 6.0 * min(height, width) / 256.0


def required_moving_pairs(num_sampled_frames: int) -> int:
    """How many pairs must move: ``round(4 * N / 16)`` with N the number of sampled frames (4 of 16)."""
    return round(4 * num_sampled_frames / 16)


def top_fraction_mean(magnitude: Tensor) -> Tensor:
    """``[N, H, W]`` flow magnitudes -> ``[N]``: mean of the ``int(H * W * 0.05)`` largest of each."""
    flat = magnitude.reshape(magnitude.shape[0], -1)
    return flat.topk(int(flat.shape[1] * TOP_FRACTION), dim=1).values.mean(1)


def is_dynamic(pair_scores: Sequence[float], threshold: float, required: int) -> bool:
    """VBench's rule: dynamic when at least ``required`` pairs score strictly above ``threshold``. With
    ``required`` 0 (two kept frames) a video counts as dynamic whatever its flow, as in VBench's
    ``check_move``; without pairs nothing moves."""
    return len(pair_scores) > 0 and sum(score > threshold for score in pair_scores) >= required


class DynamicDegree(Metric):
    """Whether a video moves, from RAFT optical flow (VBench's dynamic degree).

    Frames are sampled at about 8 fps (:func:`frame_interval`); for each consecutive sampled pair,
    torchvision ``raft_large`` (raft-things weights, 20 iterations, frames replicate-padded to multiples
    of 8, no resizing) gives the flow, and the pair's score is the mean of its top 5% flow magnitudes
    over the padded frame. The video is dynamic (1) when at least ``round(4 N / 16)`` pairs score above
    ``6 * min(H, W) / 256`` px, N the number of sampled frames, else 0; the dataset score is the
    fraction of dynamic videos. ``dynamic_magnitude`` is the video's mean pair score in pixels, a
    graded companion to the single bit.
    """

    name = "dynamic_degree"
    group = "motion"
    scores = (ScoreSpec("dynamic_degree"), ScoreSpec("dynamic_magnitude", unit="px"))
    backbones = ("raft",)
    description = "fraction of videos that move (RAFT optical flow, VBench)"

    def unavailable_reason(self) -> str | None:
        return weights.missing_reason(lambda: weights.locate(RAFT_WEIGHTS.name))

    def load(self) -> torch.nn.Module:
        return load_raft(self.device)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        return score_scorable(items, self._unscorable, self._score_videos)

    def _score_videos(self, items: list[EvalItem]) -> list[MetricResult]:
        model = self.network()
        clips = [it.video.frames[sampled_indices(it.video.num_frames, it.video.fps)] for it in items]
        pair_scores = over_consecutive_pairs(
            clips, lambda first, second: top_fraction_mean(flow_magnitude(model, first, second)), self.device)
        results = []
        for item, clip, scores in zip(items, clips, pair_scores):
            threshold, required = motion_threshold(*item.video.size), required_moving_pairs(len(clip))
            moving = is_dynamic(scores.tolist(), threshold, required)
            results.append(MetricResult({"dynamic_degree": float(moving), "dynamic_magnitude": scores.mean().item()}))
        return results

    @staticmethod
    def _unscorable(item: EvalItem) -> str | None:
        if len(sampled_indices(item.video.num_frames, item.video.fps)) < 2:
            return (f"dynamic_degree needs at least 2 frames after keeping 1 frame in "
                    f"{frame_interval(item.video.fps)} (~8 fps); the video has {item.video.num_frames}")
        if min(-(-side // 8) * 8 for side in item.video.size) < MIN_PADDED_SIDE:
            return f"dynamic_degree needs frames of at least {MIN_PADDED_SIDE}x{MIN_PADDED_SIDE} for RAFT"
        return None
