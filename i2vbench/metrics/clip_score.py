"""CLIP score: how well the frames match the prompt, by CLIP ViT-L/14 image-text similarity."""

from __future__ import annotations

from typing import Sequence

from .backbones import clip_text_features, frame_features, missing_weights
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec


class ClipScore(Metric):
    """Frame-averaged CLIP image-text cosine similarity (the "CLIPSIM" of video papers).

    Network: OpenAI CLIP ViT-L/14, ``encode_image`` of every frame (VBench ``clip_transform(224)``: Resize(224)
    short side bicubic without antialias, CenterCrop(224), CLIP mean/std) and ``encode_text`` of the prompt
    (OpenAI BPE, 77 tokens, truncated), both L2-normalised. Video score = mean over frames of cos(frame, prompt),
    the raw cosine as a fraction: not multiplied by 100, not clamped at 0 (torchmetrics' CLIPScore reports
    ``max(100 * cos, 0)``). Typical values are 0.2-0.35. Dataset score = mean over videos.
    """

    name = "clip_score"
    group = "text_alignment"
    bf16_ok = True
    scores = (ScoreSpec("clip_score"),)
    backbones = ("clip_vit_l14",)
    description = "frame-averaged CLIP ViT-L/14 image-text cosine"

    def unavailable_reason(self) -> str | None:
        return missing_weights(*self.backbones)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        frames = frame_features("clip_vit_l14", items, cache, self.device)
        texts = clip_text_features("clip_vit_l14", items, cache, self.device)
        # float64 on the CPU: the cosines are outside autocast whatever the device
        return [MetricResult({self.name: float((f.double() @ t.double()).mean())}) for f, t in zip(frames, texts)]
