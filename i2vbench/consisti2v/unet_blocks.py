"""Down, mid and up blocks: SD2.1 layers with a temporal layer after each spatial one.

Order inside a layer: resnet -> temporal conv -> spatial transformer -> temporal transformer
(the last two only in blocks with attention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import VideoGeometry
from .branches import repeat_rows
from .resnets import Downsample2D, ResnetBlock2D, TemporalResnetBlock, Upsample2D
from .transformers import SpatialTransformer, TemporalTransformer


@dataclass(frozen=True)
class LevelSettings:
    """What every block of one resolution level needs to build its layers."""

    temb_dim: int
    groups: int
    eps: float
    heads: int
    context_dim: int
    temporal_heads: int
    n_frames: int

    def resnet(self, in_channels: int, out_channels: int) -> ResnetBlock2D:
        return ResnetBlock2D(in_channels, out_channels, self.temb_dim, self.groups, self.eps)

    def conv3d(self, channels: int) -> TemporalResnetBlock:
        return TemporalResnetBlock(channels, self.n_frames)

    def spatial(self, channels: int) -> SpatialTransformer:
        return SpatialTransformer(channels, self.heads, self.context_dim, self.groups)

    def temporal(self, channels: int) -> TemporalTransformer:
        return TemporalTransformer(channels, self.temporal_heads, self.context_dim, self.groups)


class _LayerStack(nn.Module):
    """Lists of (resnet, conv3d[, attention, temporal attention]) layers under the released names."""

    def _build(
        self, settings: LevelSettings, in_channels: list[int], out_channels: int, with_attention: bool
    ) -> None:
        self.resnets = nn.ModuleList([settings.resnet(c, out_channels) for c in in_channels])
        self.conv3ds = nn.ModuleList([settings.conv3d(out_channels) for _ in in_channels])
        count = len(in_channels) if with_attention else 0
        self.attentions = nn.ModuleList([settings.spatial(out_channels) for _ in range(count)])
        self.tempo_attns = nn.ModuleList([settings.temporal(out_channels) for _ in range(count)])

    def _layer(self, i: int, x: torch.Tensor, temb: torch.Tensor, n_frames: int, context: torch.Tensor) -> torch.Tensor:
        x = self.conv3ds[i](self.resnets[i](x, temb))
        if self.attentions:
            geometry = VideoGeometry(n_frames, x.shape[-2], x.shape[-1])
            x = self.tempo_attns[i](self.attentions[i](x, geometry, context), geometry, context)
        return x


class DownBlock(_LayerStack):
    """``CrossAttnDownBlock2D`` (with attention) or ``DownBlock2D``; returns the skip tensors too."""

    def __init__(
        self,
        settings: LevelSettings,
        in_channels: int,
        out_channels: int,
        layers: int,
        with_attention: bool,
        downsample: bool,
    ) -> None:
        super().__init__()
        self._build(settings, [in_channels] + [out_channels] * (layers - 1), out_channels, with_attention)
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels)] if downsample else [])

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, n_frames: int, context: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for i in range(len(self.resnets)):
            x = self._layer(i, x, temb, n_frames, context)
            skips.append(x)
        for downsampler in self.downsamplers:
            x = downsampler(x)
            skips.append(x)
        return x, skips


class MidBlock(nn.Module):
    """``UNetMidBlock2DCrossAttn``: resnet -> conv3d -> spatial transformer -> resnet -> conv3d."""

    def __init__(self, settings: LevelSettings, channels: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([settings.resnet(channels, channels) for _ in range(2)])
        self.conv3ds = nn.ModuleList([settings.conv3d(channels) for _ in range(2)])
        self.attentions = nn.ModuleList([settings.spatial(channels)])

    def forward(self, x: torch.Tensor, temb: torch.Tensor, n_frames: int, context: torch.Tensor) -> torch.Tensor:
        x = self.conv3ds[0](self.resnets[0](x, temb))
        x = self.attentions[0](x, VideoGeometry(n_frames, x.shape[-2], x.shape[-1]), context)
        return self.conv3ds[1](self.resnets[1](x, temb))


class UpBlock(_LayerStack):
    """``CrossAttnUpBlock2D`` (with attention) or ``UpBlock2D``: each layer first takes a skip tensor."""

    def __init__(
        self,
        settings: LevelSettings,
        prev_channels: int,
        out_channels: int,
        skip_channels: list[int],  # in the order the layers consume them
        with_attention: bool,
        upsample: bool,
    ) -> None:
        super().__init__()
        inputs = [prev_channels] + [out_channels] * (len(skip_channels) - 1)
        self._build(settings, [i + s for i, s in zip(inputs, skip_channels)], out_channels, with_attention)
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)] if upsample else [])

    def forward(
        self,
        x: torch.Tensor,
        skips: list[torch.Tensor],
        temb: torch.Tensor,
        n_frames: int,
        context: torch.Tensor,
        upsample_size: tuple[int, int] | None,
    ) -> torch.Tensor:
        """``skips`` in consumption order; ``upsample_size`` is the next level's size (None: last block)."""
        for i, skip in enumerate(skips):
            x = self._layer(i, torch.cat([x, repeat_rows(skip, x.shape[0])], dim=1), temb, n_frames, context)
        for upsampler in self.upsamplers:
            x = upsampler(x, upsample_size)
        return x
