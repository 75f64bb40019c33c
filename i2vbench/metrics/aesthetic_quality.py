"""Aesthetic quality, as VBench defines it: the LAION aesthetic predictor on CLIP ViT-L/14 frame features."""

from __future__ import annotations

from typing import Sequence

import torch

from .backbones import frame_features, get_model, missing_weights
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec


def aesthetic_scores(head: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Per-frame LAION aesthetic scores (about 1-10) divided by 10, from L2-normalised CLIP ViT-L/14 features.
    The linear head is applied in float64 on the CPU: autocast never touches it, on any device."""
    with torch.inference_mode():
        weight = head.weight.detach().double().cpu()
        bias = head.bias.detach().double().cpu()
        return ((features.double() @ weight.T + bias).squeeze(-1) / 10.0).float()


class AestheticQuality(Metric):
    """VBench aesthetic quality (``vbench/aesthetic_quality.py``).

    Networks: OpenAI CLIP ViT-L/14 ``encode_image`` of every frame (Resize(224) short side bicubic without
    antialias, CenterCrop(224), CLIP mean/std), L2-normalised, then the LAION aesthetic predictor
    (``sa_0_4_vit_l_14_linear.pth``, Linear 768 -> 1). Frame score = prediction / 10 (not clamped).
    Video score = mean over its frames; dataset score = mean over videos (VBench: ``aesthetic_avg / num``).
    """

    name = "aesthetic_quality"
    group = "visual_quality"
    bf16_ok = True
    scores = (ScoreSpec("aesthetic_quality"),)
    backbones = ("clip_vit_l14", "laion_aesthetic_l14")
    description = "LAION aesthetic predictor on CLIP ViT-L/14 frames (VBench)"

    def unavailable_reason(self) -> str | None:
        return missing_weights(*self.backbones)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        head = get_model("laion_aesthetic_l14", self.device)
        return [MetricResult({self.name: float(aesthetic_scores(head, f).mean())})
                for f in frame_features("clip_vit_l14", items, cache, self.device)]
