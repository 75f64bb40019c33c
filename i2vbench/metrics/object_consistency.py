"""Object consistency (I2V-Bench; VBench's "object class"): is the case's object visible in the frames?

VBench detects objects with GRiT (a dense-captioning detector that is hard to install); here an open-vocabulary
detector from transformers (OWLv2) is asked for the case's object instead. The frame sampling, the success rule
per frame and the frame-weighted aggregation are VBench's. :class:`FrameLabelMetric` is shared with
``scene_consistency``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from .. import weights
from .backbones import WeightFile
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec
from .overall_consistency import middle_indices

#: OWLv2 class score (sigmoid of the best box's logit for the query) above which the object counts as present:
#: the default of transformers' zero-shot object-detection pipeline and of OWLv2's post-processing examples.
DETECTION_THRESHOLD = 0.1
#: How the object label is put to the detector (the query form of the OWL-ViT/OWLv2 examples).
QUERY_TEMPLATE = "a photo of a {}"
#: Frames per forward pass of the detector / captioner.
FRAME_CHUNK = {"cuda": 32, "cpu": 4}
_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: Besides the weights, what a transformers processor reads: a snapshot without them could not score.
_HF_PROCESSOR_FILES = (("preprocessor_config.json", "processor_config.json"), ("tokenizer_config.json",))


def load_transformers_model(weight: str, model_class: str, processor_class: str, device: str) -> tuple[Any, Any]:
    """A transformers model and its processor from the cached snapshot of a WEIGHTS row (never downloads)."""
    import transformers

    path = weights.locate(weight)
    model = getattr(transformers, model_class).from_pretrained(path, local_files_only=True)
    processor = getattr(transformers, processor_class).from_pretrained(path, local_files_only=True)
    return model.eval().requires_grad_(False).to(device), processor


def frame_chunks(frames: Sequence[np.ndarray], device: str) -> list[tuple[int, int]]:
    """``(start, stop)`` of the frame chunks that go through the network together."""
    chunk = FRAME_CHUNK.get(torch.device(device).type, FRAME_CHUNK["cpu"])
    return [(s, min(s + chunk, len(frames))) for s in range(0, len(frames), chunk)]


class FrameLabelMetric(Metric):
    """VBench's frame-weighted success rate of a label over 16 frames.

    Frames: 16, "middle" sampling (:func:`.overall_consistency.middle_indices`; a shorter video is padded with
    its last frame, so every video counts 16 frames). Each frame succeeds (1) or not (0) by
    :meth:`frame_successes`; video score = its success fraction; the per-frame 0/1 values are stored and the
    dataset score pools all frames of all videos (VBench's ``success_frame_count / frame_count``). A case
    without the label (manifest field :attr:`label`) is an error for that video, never a number.
    """

    group = "text_alignment"
    bf16_ok = True
    num_frames: ClassVar[int] = 16
    #: The ``Case`` field holding the label.
    label: ClassVar[str]
    #: The WEIGHTS row of the network, and the transformers classes that load it.
    weight: ClassVar[str]
    model_class: ClassVar[str]
    processor_class: ClassVar[str]

    def unavailable_reason(self) -> str | None:
        needed = (_HF_WEIGHT_FILES, *_HF_PROCESSOR_FILES)
        return weights.missing_reason(*(WeightFile(self.weight, files).path for files in needed))

    def load(self) -> tuple[Any, Any]:
        """(model, processor)."""
        return load_transformers_model(self.weight, self.model_class, self.processor_class, self.device)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        results = [MetricResult(error=self._missing_label(item)) for item in items]
        todo = [i for i, result in enumerate(results) if result.error is None]
        if not todo:
            return results
        clips = [items[i].video.frames[middle_indices(self.num_frames, items[i].video.num_frames)] for i in todo]
        labels = [str(getattr(items[i].case, self.label)).strip() for i in todo]
        flat = [frame for clip in clips for frame in clip]
        successes = np.asarray(self.frame_successes(flat, [lab for lab in labels for _ in range(self.num_frames)]),
                               dtype=float)
        for i, ok in zip(todo, successes.reshape(len(todo), self.num_frames)):
            results[i] = MetricResult({self.name: float(ok.mean())}, {self.name: ok.tolist()})
        return results

    def _missing_label(self, item: EvalItem) -> str | None:
        if str(getattr(item.case, self.label) or "").strip():
            return None
        return (f"case {item.case.id!r} has no {self.label!r} label: {self.name} needs the suite to give every case "
                f"a \"{self.label}\" field in its manifest (see docs/metrics.md)")

    @abstractmethod
    def frame_successes(self, frames: Sequence[np.ndarray], labels: Sequence[str]) -> Sequence[bool]:
        """Whether each frame (uint8 RGB ``[H, W, 3]``) shows its label."""


def detection_scores(model: Any, processor: Any, frames: Sequence[np.ndarray], queries: Sequence[str],
                     device: str) -> torch.Tensor:
    """OWLv2 score of each frame's query: the sigmoid of the highest logit for it over all predicted boxes."""
    out = []
    for start, stop in frame_chunks(frames, device):
        inputs = processor(text=[[q] for q in queries[start:stop]], images=list(frames[start:stop]),
                           return_tensors="pt").to(device)
        with torch.inference_mode():
            logits = model(**inputs).logits  # [n, boxes, 1 query]
        out.append(torch.sigmoid(logits.float().amax(dim=(1, 2))).cpu())
    return torch.cat(out)


def object_detected(scores: torch.Tensor, threshold: float = DETECTION_THRESHOLD) -> list[bool]:
    """A frame succeeds when its best box for the object scores strictly above ``threshold`` (transformers'
    post-processing keeps ``score > threshold``)."""
    return [bool(s > threshold) for s in scores.tolist()]


class ObjectConsistency(FrameLabelMetric):
    """I2V-Bench object consistency = VBench ``object_class`` (``vbench/object_class.py``), with OWLv2 for GRiT.

    Frames: 16, "middle" sampling, at the video's resolution (OWLv2's processor pads to a square and resizes to
    960). Per frame: OWLv2 (``google/owlv2-base-patch16-ensemble``) is queried with ``"a photo of a {object}"``;
    the frame succeeds when the best box scores above :data:`DETECTION_THRESHOLD` (VBench: the label is among
    GRiT's detected class names). Video score = successful frames / 16; dataset score frame-weighted. Needs the
    case's ``object`` label.
    """

    name = "object_consistency"
    scores = (ScoreSpec("object_consistency", frame_weighted=True),)
    backbones = ("owlv2_base_ensemble",)
    description = "frames where OWLv2 finds the case's object (VBench object class, GRiT replaced)"
    label = "object"
    weight = "owlv2_base_ensemble"
    model_class = "Owlv2ForObjectDetection"
    processor_class = "Owlv2Processor"

    def frame_successes(self, frames: Sequence[np.ndarray], labels: Sequence[str]) -> list[bool]:
        model, processor = self.network()
        queries = [QUERY_TEMPLATE.format(label) for label in labels]
        return object_detected(detection_scores(model, processor, frames, queries, self.device))
