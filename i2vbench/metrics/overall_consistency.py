"""Overall video-text consistency, as VBench defines it: ViCLIP similarity between the clip and its prompt."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import weights
from .backbones import CHUNK, WeightFile, clip_frames, read_state_dict
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec
from .viclip import ViCLIP, ViCLIPConfig, load_viclip

VICLIP_FILE = WeightFile("viclip_l14", ("ViClip-InternVid-10M-FLT.pth",))
VICLIP_CONFIG = ViCLIPConfig()


def middle_indices(num_samples: int, length: int) -> list[int]:
    """VBench's ``get_frame_indices(..., sample="middle")``: split ``range(length)`` into ``min(num_samples,
    length)`` runs at ``linspace(0, length, n + 1).astype(int)`` and take the middle (rounded down) of each;
    a video shorter than ``num_samples`` frames is padded with its last index."""
    n = min(num_samples, length)
    edges = np.linspace(0, length, n + 1).astype(int)
    picked = [int(a + b - 1) // 2 for a, b in zip(edges[:-1], edges[1:])]
    return picked + picked[-1:] * (num_samples - n)


def tokenize(prompts: Sequence[str], context_length: int) -> torch.Tensor:
    """OpenAI CLIP BPE (open_clip ships the same ``bpe_simple_vocab_16e6`` as ViCLIP's tokenizer): start token,
    lower-cased cleaned text, end token; truncated to ``context_length`` with the last token set to end-of-text."""
    import open_clip

    return open_clip.tokenize(list(prompts), context_length=context_length)


class OverallConsistency(Metric):
    """VBench ``overall_consistency`` (``vbench/overall_consistency.py``), I2V-Bench's "overall video-text
    consistency".

    Network: ViCLIP ViT-L/14 trained on InternVid-10M-FLT (:mod:`.viclip`). Frames: 8, VBench's "middle"
    sampling (:func:`middle_indices`; padded with the last frame when the video is shorter), each
    ``clip_transform(224)`` (Resize(224) short side bicubic without antialias, CenterCrop(224), /255, CLIP
    mean/std), encoded together as one clip. Text: the prompt, OpenAI BPE with ViCLIP's 32-token context
    (truncated). Video score = cos(video feature, text feature), the raw cosine (typically 0.2-0.3), not
    clamped; dataset score = mean over videos.
    """

    name = "overall_consistency"
    group = "text_alignment"
    bf16_ok = True
    scores = (ScoreSpec("overall_consistency"),)
    backbones = ("viclip_l14",)
    description = "ViCLIP ViT-L/14 video-prompt cosine over 8 frames (VBench)"
    num_frames = 8

    def unavailable_reason(self) -> str | None:
        return weights.missing_reason(VICLIP_FILE.path)

    def load(self) -> ViCLIP:
        checkpoint = read_state_dict(VICLIP_FILE.path())
        return load_viclip(checkpoint, VICLIP_CONFIG).requires_grad_(False).to(self.device)

    def clip(self, item: EvalItem) -> torch.Tensor:
        """The 8 preprocessed frames ``[8, 3, 224, 224]`` of a video (resized as uint8, as VBench's ViCLIP reader
        ``read_frames_decord_by_fps`` gives them)."""
        frames = item.video.frames[middle_indices(self.num_frames, item.video.num_frames)]
        return clip_frames(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        model = self.network()
        dev = torch.device(self.device)
        videos = torch.stack([self.clip(item) for item in items])
        tokens = tokenize([item.case.prompt for item in items], model.config.context_length)
        per_call = max(1, CHUNK.get(dev.type, CHUNK["cpu"]) // self.num_frames)
        with torch.inference_mode():
            video_feats = torch.cat([model.encode_vision(videos[s : s + per_call].to(dev)).float().cpu()
                                     for s in range(0, len(items), per_call)])
            text_feats = model.encode_text(tokens.to(dev)).float().cpu()
        sims = (F.normalize(video_feats, dim=-1) * F.normalize(text_feats, dim=-1)).sum(-1)
        return [MetricResult({self.name: float(s)}) for s in sims]
