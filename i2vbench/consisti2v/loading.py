"""Load released (diffusers-layout) ConsistI2V UNet weights, never executing code from a checkpoint."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Collection, Mapping

import torch
from safetensors.torch import load_file

from .config import UNetConfig
from .folder import DIFFUSERS_WEIGHTS as WEIGHTS_NAMES
from .folder import INDEX_SUFFIX, shard_files, weights_file
from .unet import ConsistI2VUNet

CONFIG_NAME = "config.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_TRAINING_PREFIX = "module."
_FULL_PRECISION_KEYS = ("rotary_emb.freqs",)
#: the module kinds ConsistI2V adds to an image UNet (Stable Diffusion 2.1's keys are the rest)
_VIDEO_ONLY_MODULES = {"conv3ds", "tempo_attns", "frame_stride_embedding"}
_EXAMPLES = 3


class CheckpointMismatch(ValueError):
    """Weights whose keys or shapes are not those of the UNet their config describes."""


def load_unet(
    path: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> ConsistI2VUNet:
    """Build the UNet from ``config.json`` and load its weights strictly.

    ``path``: a diffusers UNet folder (``config.json`` + ``diffusion_pytorch_model.safetensors``, or
    a sharded ``*.safetensors.index.json``), a pipeline folder with a ``unet/`` subfolder, or one
    weights file (its folder's ``config.json`` is used if present, else the released config).
    Training checkpoints' ``module.`` prefixes are stripped. Pickled files are read with
    ``weights_only=True``. Rotary frequencies stay float32 whatever ``dtype``.
    """
    path = Path(path)
    if path.is_dir() and not (path / CONFIG_NAME).exists() and (path / "unet" / CONFIG_NAME).exists():
        path = path / "unet"
    folder = path if path.is_dir() else path.parent
    config_file = folder / CONFIG_NAME
    config = _read_config(config_file) if config_file.exists() else UNetConfig()
    state = _read_state_dict(_weights_file(path) if path.is_dir() else path)
    state = {key: _cast(key, value, dtype) for key, value in state.items()}
    with torch.device("meta"):
        unet = ConsistI2VUNet(config)
    check_state_dict(state, unet, path if path.is_file() else folder,
                     config_file if config_file.exists() else "the released config")
    unet.load_state_dict(state, strict=True, assign=True)
    return unet.to(device).eval()


def _read_config(file: Path) -> UNetConfig:
    """The UNet config of a ``config.json``; one that is no JSON object, or describes a network this code does not
    build, is refused naming the file."""
    try:
        data = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file} is not valid JSON ({exc}): the UNet's config.json is damaged; fetch it again") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} holds a JSON {type(data).__name__}, not the UNet's settings (a JSON object)")
    try:
        return UNetConfig.from_json(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file} does not describe a ConsistI2V UNet: {exc}") from None


def check_state_dict(state: Mapping[str, torch.Tensor], model: torch.nn.Module, source: Path | str,
                     config: Path | str) -> None:
    """Refuse weights that do not fit ``model``, saying how many keys are missing, unexpected or of another
    shape (by module kind, with examples) and what that suggests, instead of listing every key."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = [f"{key}: {tuple(state[key].shape)} in the file, {expected[key]} expected"
                for key in sorted(expected.keys() & state.keys()) if tuple(state[key].shape) != expected[key]]
    if not (missing or unexpected or reshaped):
        return
    parts = []
    for what, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            kinds = Counter(_module_kind(key) for key in keys).most_common()
            parts.append(f"{len(keys)} {what} ({', '.join(f'{kind} {n}' for kind, n in kinds)}; "
                         f"e.g. {', '.join(keys[:_EXAMPLES])})")
    if reshaped:
        parts.append(f"{len(reshaped)} of another shape (e.g. {'; '.join(reshaped[:_EXAMPLES])})")
    raise CheckpointMismatch(f"the UNet weights in {source} do not fit the ConsistI2V UNet built from {config}: "
                             f"{', '.join(parts)}. {_mismatch_hint(missing, unexpected, reshaped, expected.keys())}")


def _module_kind(key: str) -> str:
    """``down_blocks.0.conv3ds.1.norm1.weight`` -> ``conv3ds``; ``conv_in.weight`` -> ``conv_in``."""
    parts = key.split(".")
    if parts[0] in ("down_blocks", "up_blocks") and len(parts) > 2:
        return parts[2]
    if parts[0] == "mid_block" and len(parts) > 1:
        return parts[1]
    return parts[0]


def _mismatch_hint(missing: list[str], unexpected: list[str], reshaped: list[str], expected: Collection[str]) -> str:
    if len(missing) == len(expected):
        return ("No key of the file belongs to this UNet: point at a ConsistI2V UNet in diffusers layout "
                "(`i2vbench weights fetch consisti2v` downloads the released one).")
    video_only = {key for key in expected if _module_kind(key) in _VIDEO_ONLY_MODULES}
    if missing and not unexpected and not reshaped and set(missing) <= video_only:
        if set(missing) == video_only:
            return ("Every temporal layer is missing and nothing else: these look like the weights of an image "
                    "UNet (Stable Diffusion 2.1), not of ConsistI2V.")
        return "Only temporal layers are missing: the file is incomplete, or was saved without some of them."
    if reshaped:
        return ("The config.json beside the weights describes another network than they hold (compare "
                "block_out_channels, attention_head_dim, cross_attention_dim with the file).")
    return "Use the released ConsistI2V weights, or a checkpoint trained with the reference code."


def _cast(key: str, value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if not value.is_floating_point():
        return value
    return value.float() if key.endswith(_FULL_PRECISION_KEYS) else value.to(dtype)


def _weights_file(folder: Path) -> Path:
    found = weights_file(folder)
    if found is None:
        raise FileNotFoundError(
            f"no UNet weights in {folder}: expected one of "
            + ", ".join(n + s for n in WEIGHTS_NAMES for s in ("", INDEX_SUFFIX))
        )
    return found


def _read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """Tensors by key from a safetensors / pickled file or a sharded index; ``module.`` stripped."""
    if not file.exists():
        raise FileNotFoundError(f"UNet weights not found: {file}")
    if file.name.endswith(INDEX_SUFFIX):
        state: dict[str, torch.Tensor] = {}
        for shard in shard_files(file):
            state.update(_read_state_dict(shard))
        return state
    if file.suffix == ".safetensors":
        state = load_file(file)
    elif file.suffix in _PICKLE_SUFFIXES:
        state = torch.load(file, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    else:
        raise ValueError(f"unsupported weights file {file.name}: expected .safetensors or one of {_PICKLE_SUFFIXES}")
    return {key.removeprefix(_TRAINING_PREFIX): value for key, value in state.items()}
