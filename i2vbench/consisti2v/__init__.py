"""ConsistI2V (Ren et al., TMLR 2024): the video UNet, its initial-noise priors, FrameInit and sampler.

Pure torch + safetensors; knows nothing of the rest of i2vbench.
"""

from .config import UNetConfig
from .frameinit import FILTER_TYPES, FrameInitConfig, frameinit, freq_mix_3d, low_pass_filter
from .loading import CheckpointMismatch, load_unet
from .noise import NOISE_METHODS, initial_noise
from .sampling import SamplingConfig, sample_latents
from .scheduler import DDIMScheduler
from .unet import ConsistI2VUNet

__all__ = [
    "FILTER_TYPES",
    "CheckpointMismatch",
    "NOISE_METHODS",
    "ConsistI2VUNet",
    "DDIMScheduler",
    "FrameInitConfig",
    "SamplingConfig",
    "UNetConfig",
    "freq_mix_3d",
    "frameinit",
    "initial_noise",
    "load_unet",
    "low_pass_filter",
    "sample_latents",
]
