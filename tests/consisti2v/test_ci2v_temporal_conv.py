"""The temporal (3, 1, 1) convolution's forms (``TemporalResnetBlock.conv_form``) compute one function."""

from __future__ import annotations

import pytest
import torch
from ci2v_helpers import random_unet
from torch import nn

from i2vbench.consisti2v.resnets import TEMPORAL_CONV_FORMS, TemporalResnetBlock, temporal_conv

FRAMES = 16


def _conv_and_rows(channels: int, height: int, width: int, channels_last: bool) -> tuple[nn.Conv3d, torch.Tensor]:
    torch.manual_seed(0)
    conv = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)).double()
    x = torch.randn(2 * FRAMES, channels, height, width, dtype=torch.float64)
    if channels_last:
        conv.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last)
    return conv, x


def _frame_by_frame(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """The definition: output frame f = bias + sum over taps k of W[:, :, k] @ input frame f + k - 1 (zeros outside)."""
    videos = x.unflatten(0, (-1, FRAMES))
    out = torch.zeros_like(videos) + conv.bias.view(1, 1, -1, 1, 1)
    for f in range(FRAMES):
        for k in range(3):
            if 0 <= f + k - 1 < FRAMES:
                out[:, f] += torch.einsum("oi,bihw->bohw", conv.weight[:, :, k, 0, 0], videos[:, f + k - 1])
    return out.flatten(0, 1)


@pytest.mark.parametrize("form", TEMPORAL_CONV_FORMS)
@pytest.mark.parametrize("size", [(4, 4), (1, 1), (3, 5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_form_is_the_temporal_convolution(form, size, channels_last):
    conv, x = _conv_and_rows(8, *size, channels_last)
    with torch.no_grad():
        out = temporal_conv(conv, x, FRAMES, form)
        expected = _frame_by_frame(conv, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", [f for f in TEMPORAL_CONV_FORMS if f != "conv3d"])
def test_a_unet_gives_the_same_output_in_every_form(form, monkeypatch):
    unet = random_unet().double()
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, unet.config.n_frames - 1, 8, 8, generator=g, dtype=torch.float64)
    first = torch.randn(2, 4, 1, 8, 8, generator=g, dtype=torch.float64)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        expected = unet(sample, 981, text, first, 3)
        monkeypatch.setattr(TemporalResnetBlock, "conv_form", form)
        out = unet(sample, 981, text, first, 3)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("form", TEMPORAL_CONV_FORMS)
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("size", [(1, 1), (2, 2)])
def test_every_form_compiles_to_the_same_function_channels_last(form, backend, size, monkeypatch):
    """A compiled channels-last temporal ResNet (the layout of compiled GPU runs), at the smallest levels too;
    ``test_ci2v_compile`` compiles whole UNets in each form in the default layout."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    block = TemporalResnetBlock(32, FRAMES).eval().to(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        block.alpha.fill_(0.3)
    x = torch.randn(2 * FRAMES, 32, *size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        eager = block(x)
        monkeypatch.setattr(TemporalResnetBlock, "conv_form", form)
        compiled = torch.compile(block, backend=backend, dynamic=False)(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)


def test_an_unknown_form_is_refused_with_the_choices():
    conv, x = _conv_and_rows(8, 2, 2, channels_last=False)
    with pytest.raises(ValueError, match="conv3d, conv2d, matmul"):
        temporal_conv(conv, x, FRAMES, "fft")
