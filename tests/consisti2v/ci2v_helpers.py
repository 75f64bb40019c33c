"""Helpers for the ConsistI2V tests: golden-fixture location and small UNets (unique module name)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "consisti2v"
MISSING_FIXTURES = f"ConsistI2V golden fixtures not found at {FIXTURES}"


def small_config(**overrides: object) -> UNetConfig:
    """A two-level UNet with every ConsistI2V layer type, fast enough for many CPU calls.

    Channels are 32 because the temporal ResNets fix GroupNorm at 32 groups.
    """
    settings = dict(
        block_out_channels=(32, 32),
        attention_head_dim=(2, 4),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=16,
        norm_num_groups=16,
    )
    settings.update(overrides)
    return UNetConfig(**settings)


def random_unet(seed: int = 0) -> ConsistI2VUNet:
    """A small UNet whose gates are open (alpha 0.5) so the temporal layers affect the output."""
    torch.manual_seed(seed)
    unet = ConsistI2VUNet(small_config()).eval()
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if name.endswith("alpha"):
                param.fill_(0.5)
            elif name.endswith("frame_stride_embedding.linear_2.weight"):
                param.normal_(0, 0.05)
    return unet


def fixture(name: str) -> dict[str, torch.Tensor]:
    """Tensors of one golden-fixture file."""
    return load_file(FIXTURES / name)
