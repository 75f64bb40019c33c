"""ConsistI2V (Ren et al., TMLR 2024): the video UNet, its initial-noise priors, FrameInit and sampler.

Pure torch + safetensors; knows nothing of the rest of i2vbench. Names are imported on first use, so that
:mod:`.folder` (checking a weights folder, as ``i2vbench weights check`` does) does not import torch. FrameInit
itself is ``frameinit.frameinit``: the package attribute ``frameinit`` is the submodule.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_EXPORTS = {
    "UNetConfig": "config",
    "FILTER_TYPES": "frameinit", "FrameInitConfig": "frameinit", "freq_mix_3d": "frameinit",
    "low_pass_filter": "frameinit",
    "CheckpointMismatch": "loading", "load_unet": "loading",
    "NOISE_METHODS": "noise", "initial_noise": "noise",
    "SamplingConfig": "sampling", "sample_latents": "sampling",
    "DDIMScheduler": "scheduler",
    "ConsistI2VUNet": "unet",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
