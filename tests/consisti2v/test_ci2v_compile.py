"""The sampler keeps a compiled UNet to one graph: no recompilation per denoising step."""

from __future__ import annotations

import torch
from ci2v_helpers import random_unet
from torch._dynamo.utils import counters

from i2vbench.consisti2v import SamplingConfig, sample_latents


def test_compiled_unet_is_traced_once_for_all_steps():
    torch._dynamo.reset()
    counters.clear()
    unet = torch.compile(random_unet(), backend="eager", dynamic=False)  # dynamo only: fast on CPU
    z1, text = torch.randn(1, 4, 1, 8, 8), torch.randn(1, 77, 16)
    sample_latents(unet, z1, text, torch.zeros(1, 77, 16), config=SamplingConfig(num_inference_steps=4),
                   generator=torch.Generator().manual_seed(0))
    assert counters["stats"]["unique_graphs"] == 1
