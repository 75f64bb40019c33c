"""VBench-I2V's first-frame dimensions: how well the video keeps the input image's subject and background."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .backbones import dreamsim_missing, frame_features, image_features, missing_weights
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec


@dataclass(frozen=True)
class I2VWeights:
    """Weights of the three terms of a VBench-I2V video score."""

    max_to_image: float
    mean_consecutive: float
    min_consecutive: float


SUBJECT = I2VWeights(0.5, 0.5, 0.0)      # vbench2_beta_i2v/i2v_subject.py
BACKGROUND = I2VWeights(0.4, 0.3, 0.3)   # vbench2_beta_i2v/i2v_background.py


def i2v_score(image: torch.Tensor, frames: torch.Tensor, w: I2VWeights) -> float:
    """``w.max * max_i c_i + w.mean * mean_{i>=1} p_i + w.min * min_{i>=1} p_i`` with
    ``c_i = max(0, cos(image, f_i))`` over all frames (frame 0 included) and
    ``p_i = max(0, cos(f_{i-1}, f_i))`` over consecutive pairs."""
    f = torch.nn.functional.normalize(frames.double(), dim=-1)
    img = torch.nn.functional.normalize(image.double(), dim=-1)
    to_image = (f @ img).clamp(min=0)
    consecutive = (f[1:] * f[:-1]).sum(-1).clamp(min=0)
    return float(w.max_to_image * to_image.max() + w.mean_consecutive * consecutive.mean()
                 + w.min_consecutive * consecutive.min())


def i2v_results(name: str, images: Sequence[torch.Tensor], frames: Sequence[torch.Tensor],
                w: I2VWeights) -> list[MetricResult]:
    return [MetricResult(error=f"{name} needs at least 2 frames") if len(f) < 2
            else MetricResult({name: i2v_score(img, f, w)}) for img, f in zip(images, frames)]


class I2VSubject(Metric):
    """VBench-I2V ``i2v_subject`` (``vbench2_beta_i2v/i2v_subject.py``).

    Network: DINO ViT-B/16 CLS features, L2-normalised, shared with ``subject_consistency``. Frames: Resize(224)
    short side (bilinear, no antialias), ImageNet mean/std; the reference image (the case's input image
    centre-cropped to the video's aspect ratio at its own resolution; VBench-I2V crops its suite around an
    annotated box instead): PIL Resize(224) short side (bilinear), ImageNet mean/std.
    Video score = 0.5 * max over all frames of max(0, cos(image, f_i)) + 0.5 * mean over i >= 1 of
    max(0, cos(f_(i-1), f_i)) (+ 0 * the minimum of the latter). Dataset score = mean over videos.
    """

    name = "i2v_subject"
    group = "first_frame"
    bf16_ok = True
    scores = (ScoreSpec("i2v_subject"),)
    backbones = ("dino_vitb16",)
    description = "input-image subject kept: DINO ViT-B/16 (VBench-I2V)"

    def unavailable_reason(self) -> str | None:
        return missing_weights(*self.backbones)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        images = image_features("dino_vitb16", items, cache, self.device)
        return i2v_results(self.name, images, frame_features("dino_vitb16", items, cache, self.device), SUBJECT)


class I2VBackground(Metric):
    """VBench-I2V ``i2v_background`` (``vbench2_beta_i2v/i2v_background.py``) with DreamSim, as published.

    Network: DreamSim ensemble (``dreamsim`` package, ``embed``), L2-normalised. Frames and reference image
    (centre-cropped to the video's aspect ratio, as for ``i2v_subject``): Resize((224, 224)) bicubic, [0, 1]
    (DreamSim normalises inside).
    Video score = 0.4 * max over all frames of max(0, cos(image, f_i)) + 0.3 * mean over i >= 1 of
    max(0, cos(f_(i-1), f_i)) + 0.3 * the minimum of the latter. Dataset score = mean over videos.
    Needs the optional ``dreamsim`` package; without it this metric is skipped and ``i2v_background_clip``
    gives the same formula on CLIP ViT-B/32 under its own name.
    """

    name = "i2v_background"
    group = "first_frame"
    bf16_ok = True
    scores = (ScoreSpec("i2v_background"),)
    backbones = ("dreamsim_ensemble",)
    description = "input-image background kept: DreamSim (VBench-I2V)"

    def unavailable_reason(self) -> str | None:
        return dreamsim_missing()

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        images = image_features("dreamsim_ensemble", items, cache, self.device)
        frames = frame_features("dreamsim_ensemble", items, cache, self.device)
        return i2v_results(self.name, images, frames, BACKGROUND)


class I2VBackgroundClip(Metric):
    """``i2v_background``'s formula on CLIP ViT-B/32 features instead of DreamSim: NOT VBench-I2V's number.

    A stand-in for machines without the ``dreamsim`` package, reported under its own name so that the two are
    never mixed. Network: OpenAI CLIP ViT-B/32 ``encode_image``, L2-normalised, shared with
    ``background_consistency``. Frames: Resize(224) short side (bicubic, no antialias), CenterCrop(224), CLIP
    mean/std; reference image (centre-cropped to the video's aspect ratio): the same through PIL.
    Video score = 0.4 * max_i max(0, cos(image, f_i)) + 0.3 * mean_(i>=1) max(0, cos(f_(i-1), f_i))
    + 0.3 * min_(i>=1) of the same. Dataset score = mean over videos.
    """

    name = "i2v_background_clip"
    group = "first_frame"
    bf16_ok = True
    scores = (ScoreSpec("i2v_background_clip"),)
    backbones = ("clip_vit_b32",)
    description = "input-image background kept: i2v_background's formula on CLIP ViT-B/32 (not DreamSim)"

    def unavailable_reason(self) -> str | None:
        return missing_weights(*self.backbones)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        images = image_features("clip_vit_b32", items, cache, self.device)
        frames = frame_features("clip_vit_b32", items, cache, self.device)
        return i2v_results(self.name, images, frames, BACKGROUND)
