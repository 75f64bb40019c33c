"""Subject consistency, as VBench defines it: DINO ViT-B/16 features stay the same across the video."""

from __future__ import annotations

from typing import Sequence

import torch

from .backbones import dino_frame_features, missing_weights
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec


def consistency_terms(features: torch.Tensor) -> torch.Tensor:
    """VBench's per-frame terms for L2-normalised features ``f`` [T, D]: for i >= 1,
    ``s_i = (max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i))) / 2``; returns the T-1 values."""
    f = torch.nn.functional.normalize(features.double(), dim=-1)
    previous = (f[1:] * f[:-1]).sum(-1).clamp(min=0)
    first = (f[1:] * f[:1]).sum(-1).clamp(min=0)
    return (previous + first) / 2


def consistency_results(name: str, features: Sequence[torch.Tensor]) -> list[MetricResult]:
    """One result per video: the mean of its terms as the video score, the terms as frame values (the dataset
    score is frame-weighted: all terms of all videos pooled, as VBench's ``sim / cnt``)."""
    out = []
    for f in features:
        if len(f) < 2:
            out.append(MetricResult(error=f"{name} needs at least 2 frames"))
            continue
        terms = consistency_terms(f).tolist()
        out.append(MetricResult({name: sum(terms) / len(terms)}, {name: terms}))
    return out


class SubjectConsistency(Metric):
    """VBench subject consistency (``vbench/subject_consistency.py``).

    Network: DINO ViT-B/16 (facebookresearch/dino ``dino_vitb16``), CLS token after the final norm,
    L2-normalised. Preprocessing: every frame, Resize(224) of the short side (bilinear, no antialias, no crop),
    /255, ImageNet mean/std. For frames i >= 1: ``s_i = (max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i))) / 2``.
    Video score = mean of its s_i; dataset score = sum of all s_i of all videos / their count (frame-weighted).
    """

    name = "subject_consistency"
    group = "visual_quality"
    bf16_ok = True
    scores = (ScoreSpec("subject_consistency", frame_weighted=True),)
    backbones = ("dino_vitb16",)
    description = "DINO ViT-B/16 feature stability across frames (VBench)"

    def unavailable_reason(self) -> str | None:
        return missing_weights(*self.backbones)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        return consistency_results(self.name, dino_frame_features(items, cache, self.device))
