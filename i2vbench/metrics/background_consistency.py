"""Background consistency, as VBench defines it: CLIP ViT-B/32 image features stay the same across the video."""

from __future__ import annotations

from typing import Sequence

from .backbones import frame_features, missing_weights
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec
from .subject_consistency import consistency_results


class BackgroundConsistency(Metric):
    """VBench background consistency (``vbench/background_consistency.py``).

    Network: OpenAI CLIP ViT-B/32 ``encode_image``, L2-normalised. Preprocessing: every frame, Resize(224) of
    the short side (bicubic, no antialias), CenterCrop(224), /255, CLIP mean/std. Same terms as subject
    consistency: for i >= 1, ``s_i = (max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i))) / 2``; video score =
    mean of its s_i; dataset score = all s_i pooled (frame-weighted, VBench's ``sim / cnt``).
    """

    name = "background_consistency"
    group = "visual_quality"
    bf16_ok = True
    scores = (ScoreSpec("background_consistency", frame_weighted=True),)
    backbones = ("clip_vit_b32",)
    description = "CLIP ViT-B/32 feature stability across frames (VBench)"

    def unavailable_reason(self) -> str | None:
        return missing_weights(*self.backbones)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        return consistency_results(self.name, frame_features("clip_vit_b32", items, cache, self.device))
