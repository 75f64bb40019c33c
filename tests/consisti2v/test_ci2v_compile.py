"""Compiled UNets: one graph for all denoising steps, and the same function as eager."""

from __future__ import annotations

import copy

import pytest
import torch
from ci2v_helpers import random_unet, small_config
from torch._dynamo.utils import counters

from i2vbench.consisti2v import SamplingConfig, sample_latents
from i2vbench.consisti2v.resnets import TEMPORAL_CONV_FORMS, TemporalResnetBlock
from i2vbench.consisti2v.unet import ConsistI2VUNet


def test_compiled_unet_is_traced_once_for_all_steps():
    torch._dynamo.reset()
    counters.clear()
    unet = torch.compile(random_unet(), backend="eager", dynamic=False)  # dynamo only: fast on CPU
    z1, text = torch.randn(1, 4, 1, 8, 8), torch.randn(1, 77, 16)
    sample_latents(unet, z1, text, torch.zeros(1, 77, 16), config=SamplingConfig(num_inference_steps=4),
                   generator=torch.Generator().manual_seed(0))
    assert counters["stats"]["unique_graphs"] == 1


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("conv_form", TEMPORAL_CONV_FORMS)
def test_compiled_unet_is_the_same_function_at_the_smallest_sizes(backend, conv_form, monkeypatch):
    """2x2 and 1x1 levels once compiled wrongly on CPUs: the 1x1 temporal convolution wrote channels-last where
    a contiguous output was traced (aot_eager: an error), and inductor miscompiled the frame-0 window index (2x2).

    With 1 or 2 channels per GroupNorm group at 1x1, float32 rounding alone moves this UNet's output by 1e-5
    or more, so both the eager and the compiled float32 outputs are held to the float64 function.
    """
    torch._dynamo.reset()
    monkeypatch.setattr(TemporalResnetBlock, "conv_form", conv_form)
    unet = random_unet()
    exact = copy.deepcopy(unet).double()
    compiled = torch.compile(unet, dynamic=False, backend=backend)
    torch.manual_seed(1)
    args = (torch.randn(2, 4, 15, 2, 2), torch.tensor(981), torch.randn(2, 77, 16), torch.randn(2, 4, 1, 2, 2), 3)
    with torch.no_grad():
        truth = exact(*(a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args))
        eager_error = (unet(*args).double() - truth).abs().max().item()
        compiled_error = (compiled(*args).double() - truth).abs().max().item()
    assert compiled_error <= 10 * eager_error + 1e-5, (compiled_error, eager_error)


def test_a_unet_with_attention_at_several_sizes_compiles_to_its_eager_function():
    """The released UNet attends at four sizes (32x32 down to 4x4 at 256x256); the small test UNet at one. Its
    frame-0 window, held as a compile-time constant per size, once failed to compile at the second size."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    unet = ConsistI2VUNet(small_config(
        block_out_channels=(32, 32, 32), attention_head_dim=(2, 4, 4),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))).eval()
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if name.endswith("alpha"):
                param.fill_(0.5)  # open gates: the temporal attentions (and their windows) reach the output
    args = (torch.randn(1, 4, 15, 8, 6), torch.tensor(981), torch.randn(1, 77, 16), torch.randn(1, 4, 1, 8, 6), 3)
    with torch.no_grad():
        eager = unet(*args)
        compiled = torch.compile(unet, dynamic=False, backend="aot_eager")(*args)
    torch.testing.assert_close(compiled, eager)
