"""Temporal flickering, as VBench defines it (pixels only, no network)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec


def flicker_score(frames: np.ndarray) -> float:
    """``(255 - mean_i MAE(f_i, f_{i+1})) / 255`` where MAE averages |difference| over pixels and channels.

    VBench reads frames with OpenCV (BGR uint8); channel order does not change the mean absolute difference.
    Summed exactly in integers one pair at a time: every pair has as many pixels, so the mean of the pairs' means is
    the total over the pixels of all pairs, and memory stays one frame's (a float copy of a 720p video of 121
    frames would take 1.3 GB, and three of them were made).
    """
    total = sum(int(np.abs(a.astype(np.int16) - b).sum(dtype=np.int64)) for a, b in zip(frames[:-1], frames[1:]))
    mae = total / (frames[0].size * (len(frames) - 1))
    return float((255.0 - mae) / 255.0)


class TemporalFlickering(Metric):
    """Mean absolute difference between consecutive frames, mapped to [0, 1] (1 = no change at all).

    Video score = (255 - mean over consecutive pairs of the pair's mean absolute pixel difference) / 255;
    dataset score = mean over videos. Higher means less flicker (and, for a static video, no motion).
    """

    name = "temporal_flickering"
    group = "visual_quality"
    scores = (ScoreSpec("temporal_flickering"),)
    description = "consecutive-frame pixel stability (VBench)"

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        out = []
        for item in items:
            if item.video.num_frames < 2:
                out.append(MetricResult(error="temporal_flickering needs at least 2 frames"))
            else:
                out.append(MetricResult({"temporal_flickering": flicker_score(item.video.frames)}))
        return out
