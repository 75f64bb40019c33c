"""Spatial ResNet blocks (SD2.1) and the temporal 3x1x1-conv ResNets ConsistI2V adds after them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .branches import repeat_rows

# Fixed in the released model regardless of config (observable when norm_num_groups != 32).
TEMPORAL_NORM_GROUPS = 32
TEMPORAL_NORM_EPS = 1e-6
TEMPORAL_UNUSED_TEMB_DIM = 512


class ResnetBlock2D(nn.Module):
    """diffusers ``ResnetBlock2D`` (default time-embedding shift, output scale 1) on (b*f, C, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, groups: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + repeat_rows(self.time_emb_proj(F.silu(temb)), h.shape[0])[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


#: ways to run the temporal (3, 1, 1) convolutions, all the same function (see :func:`temporal_conv`)
TEMPORAL_CONV_FORMS = ("conv3d", "conv2d", "matmul")


class TemporalResnetBlock(nn.Module):
    """Residual 3x1x1 convolutions over time, gated: ``alpha*x + (1-alpha)*block(x)``.

    The GroupNorms normalise each frame on its own (as the reference does); only the convolutions
    mix frames (zero padding in time).

    ``alpha`` starts at 1 (identity) in the reference and is clamped to [0, 1] when used.
    ``time_emb_proj`` is never called but is part of the released checkpoint, so it is kept to load it.
    """

    #: how the convolutions run (:data:`TEMPORAL_CONV_FORMS`); the 3-D convolution until another is timed faster
    conv_form = "conv3d"

    def __init__(self, channels: int, n_frames: int) -> None:
        super().__init__()
        self.n_frames = n_frames
        self.alpha = nn.Parameter(torch.ones(1))
        self.norm1 = nn.GroupNorm(TEMPORAL_NORM_GROUPS, channels, eps=TEMPORAL_NORM_EPS)
        self.conv1 = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))
        self.time_emb_proj = nn.Linear(TEMPORAL_UNUSED_TEMB_DIM, channels)
        self.norm2 = nn.GroupNorm(TEMPORAL_NORM_GROUPS, channels, eps=TEMPORAL_NORM_EPS)
        self.conv2 = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = temporal_conv(self.conv1, F.silu(self.norm1(x)), self.n_frames, self.conv_form)
        h = temporal_conv(self.conv2, F.silu(self.norm2(h)), self.n_frames, self.conv_form)
        # alpha*x + (1-alpha)*(x + h), in two passes over the activations instead of four
        return torch.addcmul(x, 1.0 - self.alpha.clamp(0.0, 1.0), h)


def temporal_conv(conv: nn.Conv3d, x: torch.Tensor, n_frames: int, form: str = "conv3d") -> torch.Tensor:
    """Apply the (3, 1, 1) convolution ``conv`` over time to ``(b*F, C, H, W)`` rows (video-major).

    ``form`` picks the kernels, not the function: ``conv3d`` convolves ``(b, C, F, H, W)`` videos; ``conv2d``
    the same weights as a (3, 1) 2-D convolution over ``(b, C, F, H*W)`` (the same memory, viewed; better-tuned
    kernels on some GPUs); ``matmul`` one matrix product with the three taps stacked (``3C`` outputs per token),
    whose thirds are summed over neighbouring frames (one fused pass when compiled; fastest channels-last, where
    the tokens need no copy). In half precision the stacked product rounds each tap's output before the sum, where
    a convolution accumulates all three taps in float32: about 1.3 times the convolution's rounding error.
    """
    bf, c, h, w = x.shape
    b = bf // n_frames
    if form == "conv3d":
        video = _one_layout(x.view(b, n_frames, c, h, w).transpose(1, 2))
        return conv(video).transpose(1, 2).reshape(bf, c, h, w)
    if form == "conv2d":
        video = _one_layout(x.view(b, n_frames, c, h * w).transpose(1, 2))
        out = F.conv2d(video, conv.weight.squeeze(-1), conv.bias, padding=(1, 0))
        return out.transpose(1, 2).reshape(bf, c, h, w)
    if form == "matmul":
        taps = conv.weight[..., 0, 0].permute(2, 0, 1).reshape(3 * c, c)  # rows: (tap, output channel)
        tokens = x.permute(0, 2, 3, 1).reshape(b, n_frames, h * w, c)
        before, here, after = F.linear(tokens, taps).unflatten(-1, (3, c)).unbind(-2)
        out = (here + conv.bias
               + F.pad(before, (0, 0, 0, 0, 1, 0))[:, :-1]  # frame f takes frame f-1 through tap 0
               + F.pad(after, (0, 0, 0, 0, 0, 1))[:, 1:])  # and frame f+1 through tap 2; zeros past the ends
        return out.reshape(bf, h, w, c).permute(0, 3, 1, 2)
    raise ValueError(f"unknown temporal convolution form {form!r}; expected one of {', '.join(TEMPORAL_CONV_FORMS)}")


def _one_layout(video: torch.Tensor) -> torch.Tensor:
    """``video`` (b, C, F, ...) made contiguous when its spatial size is 1: the frame-major view is then also
    channels-last, and oneDNN (CPU) writes a channels-last output where torch.compile traced a contiguous one (the
    traced graph's view of it fails)."""
    return video.contiguous() if video.shape[3:].numel() == 1 else video


class Downsample2D(nn.Module):
    """Stride-2 3x3 convolution (SD ``downsamplers.0``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample2D(nn.Module):
    """Nearest resize to the next skip connection's size (2x, less one for odd sizes), 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))
