"""Load released (diffusers-layout) ConsistI2V UNet weights, never executing code from a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from .config import UNetConfig
from .unet import ConsistI2VUNet

CONFIG_NAME = "config.json"
WEIGHTS_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
INDEX_SUFFIX = ".index.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_TRAINING_PREFIX = "module."
_FULL_PRECISION_KEYS = ("rotary_emb.freqs",)


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
    config = UNetConfig.from_json(json.loads(config_file.read_text())) if config_file.exists() else UNetConfig()
    state = _read_state_dict(_weights_file(path) if path.is_dir() else path)
    state = {key: _cast(key, value, dtype) for key, value in state.items()}
    with torch.device("meta"):
        unet = ConsistI2VUNet(config)
    unet.load_state_dict(state, strict=True, assign=True)
    return unet.to(device).eval()


def _cast(key: str, value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if not value.is_floating_point():
        return value
    return value.float() if key.endswith(_FULL_PRECISION_KEYS) else value.to(dtype)


def _weights_file(folder: Path) -> Path:
    for name in WEIGHTS_NAMES:
        for candidate in (folder / name, folder / (name + INDEX_SUFFIX)):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(
        f"no UNet weights in {folder}: expected one of "
        + ", ".join(n + s for n in WEIGHTS_NAMES for s in ("", INDEX_SUFFIX))
    )


def _read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """Tensors by key from a safetensors / pickled file or a sharded index; ``module.`` stripped."""
    if not file.exists():
        raise FileNotFoundError(f"UNet weights not found: {file}")
    if file.name.endswith(INDEX_SUFFIX):
        shards = sorted(set(json.loads(file.read_text())["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_read_state_dict(file.parent / shard))
        return state
    if file.suffix == ".safetensors":
        state = load_file(file)
    elif file.suffix in _PICKLE_SUFFIXES:
        state = torch.load(file, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    else:
        raise ValueError(f"unsupported weights file {file.name}: expected .safetensors or one of {_PICKLE_SUFFIXES}")
    return {key.removeprefix(_TRAINING_PREFIX): value for key, value in state.items()}
