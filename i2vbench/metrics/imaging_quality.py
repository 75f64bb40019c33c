"""Imaging quality, as VBench defines it: MUSIQ (trained on SPAQ) on every frame, through the optional ``pyiqa``."""

from __future__ import annotations

import importlib.util
from typing import Sequence

import numpy as np
import torch

from .. import weights
from .backbones import CHUNK, read_state_dict
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec

MUSIQ_WEIGHT = "musiq_spaq"
#: Frames whose longer side exceeds this are scaled down to it (VBench's default ``"longer"`` mode).
MAX_SIDE = 512


def limit_longer_side(frames: torch.Tensor) -> torch.Tensor:
    """VBench ``imaging_quality.transform(mode="longer")``: ``[N, 3, H, W]`` frames (0-255) -> float in [0, 1];
    when ``max(H, W) > 512`` resized to ``(int(s * H), int(s * W))`` with ``s = 512 / max(H, W)`` (bilinear, on
    the float tensor, without antialias as VBench's torchvision < 0.16), else unchanged."""
    from torchvision.transforms.functional import resize

    x = frames.float()
    h, w = x.shape[-2:]
    if max(h, w) > MAX_SIDE:
        s = MAX_SIDE / max(h, w)
        x = resize(x, [int(s * h), int(s * w)], antialias=False)
    return x / 255.0


def load_musiq(device: str) -> torch.nn.Module:
    """pyiqa's MUSIQ with one output (the SPAQ head), filled from the cached checkpoint by key (weights only)."""
    from pyiqa.archs.musiq_arch import MUSIQ

    state = read_state_dict(weights.locate(MUSIQ_WEIGHT))
    state = {k.removeprefix("module."): v for k, v in state.get("params", state).items()}
    model = MUSIQ(pretrained=False)
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(device)


class ImagingQuality(Metric):
    """VBench ``imaging_quality`` (``vbench/imaging_quality.py``): technical quality of every frame.

    Network: MUSIQ trained on SPAQ (``musiq_spaq_ckpt-358bb6af.pth``), pyiqa's implementation (multi-scale
    patches at longer sides 224 and 384 plus the frame itself, inputs scaled to [-1, 1] inside). Frames: all,
    scaled by :func:`limit_longer_side`. Video score = mean over frames of MUSIQ / 100 (MUSIQ-SPAQ predicts
    0-100); dataset score = mean over videos. Optional: needs ``pip install pyiqa`` and the weights.
    """

    name = "imaging_quality"
    group = "visual_quality"
    scores = (ScoreSpec("imaging_quality"),)
    backbones = ("musiq_spaq",)
    description = "MUSIQ-SPAQ frame quality / 100 (VBench; needs pyiqa)"

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("pyiqa") is None:
            return ("needs the optional 'pyiqa' package for MUSIQ (pip install pyiqa) and its weights "
                    f"('{weights.fetch_command(MUSIQ_WEIGHT)}')")
        return weights.missing_reason(lambda: weights.locate(MUSIQ_WEIGHT))

    def load(self) -> torch.nn.Module:
        return load_musiq(self.device)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        return [MetricResult({self.name: float(self.frame_scores(item).mean()) / 100.0}) for item in items]

    def frame_scores(self, item: EvalItem) -> torch.Tensor:
        """MUSIQ score (0-100) of every frame of a video."""
        dev = torch.device(self.device)
        frames = limit_longer_side(torch.from_numpy(np.ascontiguousarray(item.video.frames)).permute(0, 3, 1, 2))
        chunk = CHUNK.get(dev.type, CHUNK["cpu"])
        with torch.inference_mode():  # fp32, as VBench: weight-standardised convolutions are precision-sensitive
            return torch.cat([self.network()(frames[s : s + chunk].to(dev)).float().reshape(-1).cpu()
                              for s in range(0, len(frames), chunk)])
