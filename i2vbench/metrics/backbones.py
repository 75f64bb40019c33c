"""Shared feature extractors of the learned metrics: each network with its exact preprocessing.

Networks are loaded lazily from the weights cache (never downloaded here), once per process and device.
Features are computed once per evaluation batch and shared through the :class:`FeatureCache`, per video, so
that two metrics on the same backbone and preprocessing (e.g. ``subject_consistency`` and ``i2v_subject`` on
DINO) never run it twice, even when they score different subsets of the batch. All frames of all videos of a
batch go through the network together, in chunks, under the calling metric's numerics (bf16 autocast when
its precision is bf16; features computed under different numerics are cached apart).
Every feature is L2-normalised and returned as a float32 CPU tensor.

Preprocessing follows VBench (``vbench/utils.py``, ``vbench2_beta_i2v/utils.py``), which pins
``torchvision<0.16``: resizing a video tensor there does not antialias, while a PIL image (the reference
image of the I2V dimensions) is always antialiased by PIL. VBench's ``load_video`` returns float32 frames
(``torch.Tensor(buffer)``), so its resizes are neither rounded nor clamped to 0..255; ViCLIP's reader
returns uint8 frames, which torchvision's resize rounds and clamps. The frame functions below resize
whichever dtype they are given, and each caller passes what its VBench reader gives.
"""

from __future__ import annotations

import importlib.util
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import weights
from ..errors import NetworkLoadError, WeightsError
from .base import EvalItem, FeatureCache, load_network

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INPUT_SIZE = 224
#: Frames per forward pass.
CHUNK = {"cuda": 128, "cpu": 16}


# ----------------------------------------------------------------------------------------------------------
# Preprocessing: frames [N, 3, H, W] with values 0..255 (tensor path; float32 or uint8, see above) and uint8
# RGB images [H, W, 3] (PIL path).

def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1)
    return (x - m) / s


def _resize_frames(frames: torch.Tensor, size: int | list[int], interpolation: str) -> torch.Tensor:
    """torchvision ``Resize`` without antialiasing (VBench's torchvision<0.16), in the input's dtype: float
    frames stay unrounded (bicubic may overshoot 0..255), uint8 frames are rounded and clamped."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    mode = InterpolationMode.BICUBIC if interpolation == "bicubic" else InterpolationMode.BILINEAR
    return resize(frames, size if isinstance(size, list) else [size], interpolation=mode, antialias=False)


def _resize_image(image: np.ndarray, size: int | list[int], interpolation: str) -> torch.Tensor:
    """torchvision ``Resize`` on a PIL image then ``ToTensor``: float [3, h, w] in [0, 1]."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize, to_tensor

    mode = InterpolationMode.BICUBIC if interpolation == "bicubic" else InterpolationMode.BILINEAR
    return to_tensor(resize(Image.fromarray(image), size if isinstance(size, list) else [size], interpolation=mode))


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    from torchvision.transforms.functional import center_crop

    return center_crop(x, [size, size])


def dino_frames(frames: torch.Tensor) -> torch.Tensor:
    """VBench ``dino_transform(224)``: Resize(224) of the short side (bilinear, no antialias, no crop),
    /255, ImageNet mean/std."""
    return _normalise(_resize_frames(frames, INPUT_SIZE, "bilinear").float() / 255.0, IMAGENET_MEAN, IMAGENET_STD)


def dino_image(image: np.ndarray) -> torch.Tensor:
    """VBench ``dino_transform_Image(224)``: PIL Resize(224) of the short side (bilinear), ToTensor, ImageNet."""
    return _normalise(_resize_image(image, INPUT_SIZE, "bilinear"), IMAGENET_MEAN, IMAGENET_STD)


def clip_frames(frames: torch.Tensor) -> torch.Tensor:
    """VBench ``clip_transform(224)``: Resize(224) short side (bicubic, no antialias), CenterCrop(224), /255,
    CLIP mean/std."""
    x = _center_crop(_resize_frames(frames, INPUT_SIZE, "bicubic"), INPUT_SIZE)
    return _normalise(x.float() / 255.0, CLIP_MEAN, CLIP_STD)


def clip_image(image: np.ndarray) -> torch.Tensor:
    """VBench ``clip_transform_Image(224)``: PIL Resize(224) bicubic, CenterCrop(224), ToTensor, CLIP mean/std."""
    return _normalise(_center_crop(_resize_image(image, INPUT_SIZE, "bicubic"), INPUT_SIZE), CLIP_MEAN, CLIP_STD)


def dreamsim_frames(frames: torch.Tensor) -> torch.Tensor:
    """VBench-I2V ``dreamsim_transform(224)``: Resize((224, 224)) bicubic (no antialias), /255 (DreamSim
    normalises inside)."""
    return _resize_frames(frames, [INPUT_SIZE, INPUT_SIZE], "bicubic").float() / 255.0


def dreamsim_image(image: np.ndarray) -> torch.Tensor:
    """VBench-I2V ``dreamsim_transform_Image(224)``: PIL Resize((224, 224)) bicubic, ToTensor."""
    return _resize_image(image, [INPUT_SIZE, INPUT_SIZE], "bicubic")


def crop_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The largest centred crop of ``image`` with the aspect ratio ``width / height``, at its own resolution.

    VBench-I2V compares videos with the suite image cropped to the video's aspect ratio (``data/crop/<ratio>``,
    made by ``crop_to_diff_ratio.py`` around an annotated subject box); a centred crop stands in for that box.
    """
    h, w = image.shape[:2]
    if w * height > h * width:
        cw = max(1, round(h * width / height))
        left = (w - cw) // 2
        return image[:, left : left + cw]
    ch = max(1, round(w * height / width))
    top = (h - ch) // 2
    return image[top : top + ch]


def reference_image(item: EvalItem) -> np.ndarray:
    """The case's input image cropped to the video's aspect ratio (not resized: each backbone resizes it)."""
    return crop_to_aspect(item.case.load_image(), *item.video.size)


# ----------------------------------------------------------------------------------------------------------
# Networks: architectures (random init) and loading by key from the weights cache.

class DinoViT(nn.Module):
    """DINO ViT-B/16 (facebookresearch/dino ``dino_vitb16``) on timm's ViT blocks; returns the CLS token
    after the final norm. Positional embeddings are interpolated exactly as DINO's
    ``interpolate_pos_encoding`` does (bicubic with ``scale_factor=(n+0.1)/14``), unless the input is square
    with a 14x14 grid; the pixels beyond a multiple of 16 are dropped, as DINO's stride-16 conv does."""

    patch = 16

    def __init__(self) -> None:
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        self.vit = VisionTransformer(patch_size=self.patch, embed_dim=768, depth=12, num_heads=12, num_classes=0,
                                     dynamic_img_size=True)

    def pos_embed(self, gh: int, gw: int, square: bool) -> torch.Tensor:
        pos = self.vit.pos_embed
        n = pos.shape[1] - 1
        if gh * gw == n and square:
            return pos
        side = int(math.sqrt(n))
        grid = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((gh + 0.1) / side, (gw + 0.1) / side), mode="bicubic")
        return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        gh, gw = h // self.patch, w // self.patch
        x = self.vit.patch_embed(images[..., : gh * self.patch, : gw * self.patch]).flatten(1, 2)
        x = torch.cat([self.vit.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed(gh, gw, h == w).to(x.dtype)
        return self.vit.norm(self.vit.blocks(x))[:, 0]


def dino_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a facebookresearch/dino checkpoint (``cls_token``, ``blocks.N.attn.qkv``, ...; possibly saved with a
    ``module.``/``backbone.`` prefix, and with a ``head.`` that the backbone does not have) onto :class:`DinoViT`."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        if not key.startswith("head."):
            out[f"vit.{key}"] = value
    return out


def build_dino_vitb16() -> DinoViT:
    return DinoViT()


def build_clip(arch: str) -> nn.Module:
    """OpenAI CLIP architecture from open_clip (QuickGELU, as the OpenAI weights need), randomly initialised."""
    import logging

    import open_clip

    logging.disable(logging.WARNING)  # open_clip warns that no pretrained weights were loaded: they come next
    try:
        return open_clip.create_model(arch, pretrained=None, force_quick_gelu=True)
    finally:
        logging.disable(logging.NOTSET)


def build_aesthetic_head() -> nn.Linear:
    """LAION aesthetic predictor v1 for ViT-L/14: one linear layer 768 -> 1."""
    return nn.Linear(768, 1)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint: safetensors, or a pickle read with ``weights_only=True`` (never runs code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


@dataclass(frozen=True)
class WeightFile:
    """Where a backbone's checkpoint is: a WEIGHTS row and, for a Hugging Face snapshot, the file names
    accepted in it (first found wins; safetensors first)."""

    weight: str
    files: tuple[str, ...] = ()

    def path(self) -> Path:
        """The checkpoint file in the cache; a WeightsError with the fetch command when it is missing."""
        root = weights.locate(self.weight)
        if not self.files:
            return root
        for name in self.files:
            if (root / name).is_file():
                return root / name
        raise WeightsError(f"weights {self.weight!r} are incomplete in {root}: none of {', '.join(self.files)}. "
                           f"Fetch them with '{weights.fetch_command(self.weight)}'")


_OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
WEIGHT_FILES: dict[str, WeightFile] = {
    "dino_vitb16": WeightFile("dino_vitb16"),
    "clip_vit_b32": WeightFile("clip_vit_b32", _OPEN_CLIP_FILES),
    "clip_vit_l14": WeightFile("clip_vit_l14", _OPEN_CLIP_FILES),
    "laion_aesthetic_l14": WeightFile("laion_aesthetic_l14"),
    "dreamsim_ensemble": WeightFile("dreamsim_ensemble"),
}


def missing_weights(*names: str) -> str | None:
    """None when every named backbone's weights are in the cache, else why not (with the fetch command)."""
    return weights.missing_reason(*(WEIGHT_FILES[name].path for name in names))


def dreamsim_missing() -> str | None:
    """Why DreamSim cannot run here (package or weights), or None."""
    if importlib.util.find_spec("dreamsim") is None:
        return ("needs the optional 'dreamsim' package (pip install dreamsim) and its weights "
                f"('{weights.fetch_command('dreamsim_ensemble')}'); "
                "i2v_background_clip is the CLIP ViT-B/32 stand-in that runs without it")
    return missing_weights("dreamsim_ensemble")


def _load_dreamsim(archive: Path, device: str) -> nn.Module:
    """DreamSim ensemble through its own package, from the release archive unpacked beside it (no download)."""
    from dreamsim import dreamsim

    folder = archive.parent / "unpacked"
    if not any(folder.rglob("ensemble_lora")):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if Path(member).is_absolute() or ".." in Path(member).parts:
                    raise WeightsError(f"{archive} holds an unsafe path {member!r}; delete it and fetch again")
            zf.extractall(folder)
    root = next(folder.rglob("ensemble_lora")).parent
    model, _ = dreamsim(pretrained=True, device=device, cache_dir=str(root))
    return model


def _load_dino(device: str) -> nn.Module:
    model = build_dino_vitb16()
    model.load_state_dict(dino_keys(read_state_dict(WEIGHT_FILES["dino_vitb16"].path())), strict=True)
    return model


def _load_clip(name: str, arch: str) -> Callable[[str], nn.Module]:
    def load(device: str) -> nn.Module:
        model = build_clip(arch)
        model.load_state_dict(read_state_dict(WEIGHT_FILES[name].path()), strict=True)
        return model

    return load


def _load_aesthetic(device: str) -> nn.Module:
    head = build_aesthetic_head()
    head.load_state_dict(read_state_dict(WEIGHT_FILES["laion_aesthetic_l14"].path()), strict=True)
    return head


LOADERS: dict[str, Callable[[str], nn.Module]] = {
    "dino_vitb16": _load_dino,
    "clip_vit_b32": _load_clip("clip_vit_b32", "ViT-B-32"),
    "clip_vit_l14": _load_clip("clip_vit_l14", "ViT-L-14"),
    "laion_aesthetic_l14": _load_aesthetic,
    "dreamsim_ensemble": lambda device: _load_dreamsim(WEIGHT_FILES["dreamsim_ensemble"].path(), device),
}
_LOADED: dict[tuple[str, str], nn.Module | NetworkLoadError] = {}


def get_model(name: str, device: str) -> nn.Module:
    """The named network with its pretrained weights, in eval mode on ``device``; loaded once per process (a
    failed load raises :class:`NetworkLoadError`, then raises it again without retrying)."""
    key = (name, device)
    if key not in _LOADED:
        try:
            _LOADED[key] = load_network(
                f"the {name} network", lambda: LOADERS[name](device).eval().requires_grad_(False).to(device), [name])
        except NetworkLoadError as exc:
            _LOADED[key] = exc
    network = _LOADED[key]
    if isinstance(network, NetworkLoadError):
        raise network
    return network


# ----------------------------------------------------------------------------------------------------------
# Batched, shared feature extraction.

@dataclass(frozen=True)
class Extractor:
    """A backbone with one preprocessing: how frames and the reference image become network inputs, and
    which forward gives the embedding."""

    backbone: str
    frames: Callable[[torch.Tensor], torch.Tensor]
    image: Callable[[np.ndarray], torch.Tensor]
    embed: Callable[[nn.Module, torch.Tensor], torch.Tensor]


EXTRACTORS: dict[str, Extractor] = {
    "dino_vitb16": Extractor("dino_vitb16", dino_frames, dino_image, lambda m, x: m(x)),
    "clip_vit_b32": Extractor("clip_vit_b32", clip_frames, clip_image, lambda m, x: m.encode_image(x)),
    "clip_vit_l14": Extractor("clip_vit_l14", clip_frames, clip_image, lambda m, x: m.encode_image(x)),
    "dreamsim_ensemble": Extractor("dreamsim_ensemble", dreamsim_frames, dreamsim_image, lambda m, x: m.embed(x)),
}


def embed_batches(extractor: Extractor, inputs: Sequence[torch.Tensor], device: str) -> list[torch.Tensor]:
    """Run every input stack [n_i, 3, h, w] through the network, grouped by size and chunked; returns the
    L2-normalised float32 features [n_i, D] per input, in order."""
    model = get_model(extractor.backbone, device)
    dev = torch.device(device)
    chunk = CHUNK.get(dev.type, CHUNK["cpu"])
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(inputs):
        by_shape.setdefault(tuple(x.shape[1:]), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(inputs)
    with torch.inference_mode():
        for indices in by_shape.values():
            stacked = torch.cat([inputs[i] for i in indices])
            feats = torch.cat([extractor.embed(model, stacked[s : s + chunk].to(dev, non_blocking=True)).float()
                               for s in range(0, len(stacked), chunk)])
            feats = F.normalize(feats.reshape(len(stacked), -1), dim=-1).cpu()
            for i, part in zip(indices, feats.split([len(inputs[i]) for i in indices])):
                out[i] = part
    return out  # type: ignore[return-value]


def _item_key(item: EvalItem) -> tuple[str, int]:
    return item.case.id, id(item.video)


def _per_item(cache: FeatureCache, key: str, items: Sequence[EvalItem], device: str,
              compute: Callable[[Sequence[EvalItem]], list[torch.Tensor]]) -> list[torch.Tensor]:
    """Per-video values under ``key`` (and the numerics in force on ``device``) in the batch cache; the videos
    not yet there are computed together."""
    bf16 = torch.is_autocast_enabled(torch.device(device).type)
    store: dict = cache.get(f"{key}@{'bf16' if bf16 else 'fp32'}", dict)
    missing = [it for it in items if _item_key(it) not in store]
    if missing:
        for item, value in zip(missing, compute(missing)):
            store[_item_key(item)] = value
    return [store[_item_key(it)] for it in items]


def _frames_tensor(item: EvalItem) -> torch.Tensor:
    """A video's frames as VBench's ``load_video`` gives them: float32 [T, 3, H, W], values 0..255."""
    return torch.from_numpy(np.ascontiguousarray(item.video.frames)).permute(0, 3, 1, 2).float()


def frame_features(backbone: str, items: Sequence[EvalItem], cache: FeatureCache, device: str) -> list[torch.Tensor]:
    """Features [T, D] of every frame of every video, with the backbone's video preprocessing."""
    ex = EXTRACTORS[backbone]
    return _per_item(cache, f"{backbone}/frames", items, device,
                     lambda todo: embed_batches(ex, [ex.frames(_frames_tensor(it)) for it in todo], device))


def image_features(backbone: str, items: Sequence[EvalItem], cache: FeatureCache, device: str) -> list[torch.Tensor]:
    """Features [D] of each case's input image cropped to its video's aspect ratio (:func:`reference_image`)."""
    ex = EXTRACTORS[backbone]
    return _per_item(cache, f"{backbone}/image", items, device, lambda todo: [
        f[0] for f in embed_batches(ex, [ex.image(reference_image(it))[None] for it in todo], device)])


def dino_frame_features(items: Sequence[EvalItem], cache: FeatureCache, device: str) -> list[torch.Tensor]:
    """DINO ViT-B/16 CLS features [T, 768] of every frame (VBench subject-consistency preprocessing)."""
    return frame_features("dino_vitb16", items, cache, device)


def clip_text_features(backbone: str, items: Sequence[EvalItem], cache: FeatureCache, device: str) -> list[torch.Tensor]:
    """CLIP text features [D] of each case's prompt (open_clip's OpenAI BPE tokenizer, 77 tokens, truncated)."""
    import open_clip

    def compute(todo: Sequence[EvalItem]) -> list[torch.Tensor]:
        model = get_model(backbone, device)
        tokens = open_clip.tokenize([it.case.prompt for it in todo]).to(device)
        with torch.inference_mode():
            return list(F.normalize(model.encode_text(tokens).float(), dim=-1).cpu())

    return _per_item(cache, f"{backbone}/text", items, device, compute)
