"""Scene consistency (I2V-Bench; VBench's "scene"): do captions of the frames mention the case's scene?

VBench captions frames with Tag2Text (hard to install); here a captioner from transformers (BLIP) writes the
captions instead. The frame sampling, the success rule per frame and the frame-weighted aggregation are VBench's.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .base import ScoreSpec
from .object_consistency import FrameLabelMetric, frame_chunks

#: The caption prefix of BLIP's captioning fine-tune and of Tag2Text; stripped from every caption.
CAPTION_PROMPT = "a picture of "
#: Beam search as Tag2Text's ``generate`` in VBench (lengths count the prompt tokens).
GENERATION = {"num_beams": 3, "max_length": 30, "min_length": 10, "repetition_penalty": 1.0}


def caption_frames(model: Any, processor: Any, frames: Sequence[np.ndarray], device: str) -> list[str]:
    """One caption per frame (lower case, without :data:`CAPTION_PROMPT`)."""
    captions: list[str] = []
    for start, stop in frame_chunks(frames, device):
        n = stop - start
        inputs = processor(images=list(frames[start:stop]), text=[CAPTION_PROMPT] * n, return_tensors="pt").to(device)
        with torch.inference_mode():
            tokens = model.generate(**inputs, **GENERATION)
        for text in processor.batch_decode(tokens, skip_special_tokens=True):
            captions.append(text.strip().lower().removeprefix(CAPTION_PROMPT.strip()).strip())
    return captions


def caption_mentions(caption: str, scene: str) -> bool:
    """VBench's rule: every space-separated word of the scene label occurs in the caption, as a substring
    (``"beach"`` matches ``"beaches"``); compared in lower case."""
    caption = caption.lower()
    return all(word in caption for word in scene.lower().split())


class SceneConsistency(FrameLabelMetric):
    """I2V-Bench scene consistency = VBench ``scene`` (``vbench/scene.py``), with BLIP for Tag2Text.

    Frames: 16, "middle" sampling; BLIP's processor resizes each to 384 x 384 (VBench: decoded at 384 x 384
    for Tag2Text). Per frame: BLIP (``Salesforce/blip-image-captioning-base``) captions it after the prompt
    ``"a picture of "`` with beam search (3 beams, 10-30 tokens, as Tag2Text); the frame succeeds when every
    word of the case's ``scene`` label appears in the caption (:func:`caption_mentions`). Video score =
    successful frames / 16; dataset score frame-weighted. Needs the case's ``scene`` label.
    """

    name = "scene_consistency"
    scores = (ScoreSpec("scene_consistency", frame_weighted=True),)
    backbones = ("blip_caption_base",)
    description = "frames whose BLIP caption names the case's scene (VBench scene, Tag2Text replaced)"
    label = "scene"
    weight = "blip_caption_base"
    model_class = "BlipForConditionalGeneration"
    processor_class = "BlipProcessor"

    def frame_successes(self, frames: Sequence[np.ndarray], labels: Sequence[str]) -> list[bool]:
        model, processor = self.network()
        return [caption_mentions(c, s) for c, s in zip(caption_frames(model, processor, frames, self.device), labels)]
