"""AMT-S (Li et al., CVPR 2023, "All-Pairs Multi-Field Transforms"): video frame interpolation.

Written from the architecture of MCG-NKU/AMT (``networks/AMT-S.py``, ``networks/blocks/*.py``,
``cfgs/AMT-S.yaml``: correlation radius 3, 4 correlation levels, 3 flow fields, pyramid channels
20/32/44/56, 20 side channels). Module names and order follow the released code so that the released
``amt-s.pth`` (its ``state_dict`` entry) loads by key with ``strict=True``. Only the inference path at
the network's native scale is kept; the network knows nothing of the toolkit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resize(x: Tensor, scale: float) -> Tensor:
    """Bilinear rescaling by ``scale`` (``align_corners=False``), as AMT resizes flows and features."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def backward_warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` at ``pixel + flow`` (bilinear, border padding, corner-aligned grid)."""
    b, _, h, w = flow.shape
    xs = torch.linspace(-1.0, 1.0, w, device=flow.device, dtype=flow.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
    ys = torch.linspace(-1.0, 1.0, h, device=flow.device, dtype=flow.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
    grid = torch.cat([xs + flow[:, 0:1] / ((w - 1.0) / 2.0), ys + flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    return F.grid_sample(image, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=True)


def coords_grid(batch: int, height: int, width: int, device: torch.device) -> Tensor:
    """Pixel coordinates ``[batch, 2 (x, y), height, width]``."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([xs, ys]).float()[None].repeat(batch, 1, 1, 1)


def conv_prelu(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.PReLU(cout))


class Bottleneck(nn.Module):
    """RAFT's bottleneck residual block with parameter-free instance norms."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1)
        self.conv3 = nn.Conv2d(mid, cout, 1)
        self.downsample = (
            None if stride == 1 else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), nn.InstanceNorm2d(cout))
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(F.instance_norm(self.conv1(x)))
        y = F.relu(F.instance_norm(self.conv2(y)))
        y = F.relu(F.instance_norm(self.conv3(y)))
        return F.relu((x if self.downsample is None else self.downsample(x)) + y)


class CorrelationEncoder(nn.Module):
    """RAFT's small encoder (instance norm): features at 1/8 resolution for the correlation volumes."""

    def __init__(self, out_channels: int = 84) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=3)
        self.layer1 = nn.Sequential(Bottleneck(32, 32, 1), Bottleneck(32, 32, 1))
        self.layer2 = nn.Sequential(Bottleneck(32, 64, 2), Bottleneck(64, 64, 1))
        self.layer3 = nn.Sequential(Bottleneck(64, 96, 2), Bottleneck(96, 96, 1))
        self.conv2 = nn.Conv2d(96, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(F.instance_norm(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


class ContextEncoder(nn.Module):
    """Four stride-2 levels (``pyramid1..4``) of two conv + PReLU each: features at 1/2 .. 1/16."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        previous = 3
        for level, ch in enumerate(channels, 1):
            self.add_module(f"pyramid{level}", nn.Sequential(conv_prelu(previous, ch, 3, 2, 1), conv_prelu(ch, ch)))
            previous = ch
        self.levels = len(channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for level in range(1, self.levels + 1):
            x = getattr(self, f"pyramid{level}")(x)
            features.append(x)
        return features


class SideResBlock(nn.Module):
    """IFRNet's residual block: the last ``side`` channels get extra convolutions in between."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.conv1 = conv_prelu(channels, channels)
        self.conv2 = conv_prelu(side, side)
        self.conv3 = conv_prelu(channels, channels)
        self.conv4 = conv_prelu(side, side)
        self.conv5 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu = nn.PReLU(channels)

    def _side(self, x: Tensor, conv: nn.Module) -> Tensor:
        return torch.cat([x[:, : -self.side], conv(x[:, -self.side :])], 1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self._side(self.conv1(x), self.conv2))
        out = self.conv5(self._side(out, self.conv4))
        return self.prelu(x + out)


def _decoder_block(cin: int, mid: int, side: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_prelu(cin, mid), SideResBlock(mid, side), nn.ConvTranspose2d(mid, cout, 4, 2, 1))


class InitDecoder(nn.Module):
    """Coarsest level: initial bilateral flows (t->0, t->1) and intermediate feature from both frames and t."""

    def __init__(self, cin: int, cout: int, side: int) -> None:
        super().__init__()
        self.convblock = _decoder_block(2 * cin + 1, 2 * cin, side, cout + 4)

    def forward(self, f0: Tensor, f1: Tensor, embt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        t = embt.expand(-1, 1, f0.shape[2], f0.shape[3])
        out = self.convblock(torch.cat([f0, f1, t], 1))
        return out[:, 0:2], out[:, 2:4], out[:, 4:]


class IntermediateDecoder(nn.Module):
    """Refines and doubles the flows and the intermediate feature using the warped frame features."""

    def __init__(self, cin: int, cout: int, side: int) -> None:
        super().__init__()
        self.convblock = _decoder_block(3 * cin + 4, 3 * cin, side, cout + 4)

    def forward(self, ft: Tensor, f0: Tensor, f1: Tensor, flow0: Tensor,
                flow1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.convblock(torch.cat([ft, backward_warp(f0, flow0), backward_warp(f1, flow1), flow0, flow1], 1))
        return out[:, 0:2] + 2.0 * resize(flow0, 2.0), out[:, 2:4] + 2.0 * resize(flow1, 2.0), out[:, 4:]


class MultiFlowDecoder(nn.Module):
    """Finest level: ``num_flows`` flow pairs, occlusion masks and RGB residuals at full resolution."""

    def __init__(self, cin: int, side: int, num_flows: int) -> None:
        super().__init__()
        self.num_flows = num_flows
        self.convblock = _decoder_block(3 * cin + 4, 3 * cin, side, 8 * num_flows)

    def forward(self, ft: Tensor, f0: Tensor, f1: Tensor, flow0: Tensor, flow1: Tensor):
        n = self.num_flows
        out = self.convblock(torch.cat([ft, backward_warp(f0, flow0), backward_warp(f1, flow1), flow0, flow1], 1))
        delta0, delta1, mask, residual = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        flow0 = delta0 + 2.0 * resize(flow0, 2.0).repeat(1, n, 1, 1)
        flow1 = delta1 + 2.0 * resize(flow1, 2.0).repeat(1, n, 1, 1)
        return flow0, flow1, torch.sigmoid(mask), residual


class UpdateBlock(nn.Module):
    """Residual update of the flows and the intermediate feature from looked-up correlations (at 1/8)."""

    def __init__(self, cdim: int, scale: int | None, corr_levels: int, radius: int,
                 hidden: int = 76, flow_dim: int = 20, corr_dim: int = 64, fc_dim: int = 68) -> None:
        super().__init__()
        corr_planes = 2 * corr_levels * (2 * radius + 1) ** 2
        self.scale = scale
        self.convc1 = nn.Conv2d(corr_planes, corr_dim, 1)
        self.convf1 = nn.Conv2d(4, 2 * flow_dim, 7, padding=3)
        self.convf2 = nn.Conv2d(2 * flow_dim, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(corr_dim + flow_dim, fc_dim, 3, padding=1)
        self.gru = self._two_convs(fc_dim + 4 + cdim, hidden, hidden)
        self.feat_head = self._two_convs(hidden, hidden, cdim)
        self.flow_head = self._two_convs(hidden, hidden, 4)

    @staticmethod
    def _two_convs(cin: int, mid: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(mid, cout, 3, padding=1))

    def forward(self, feature: Tensor, flow: Tensor, corr: Tensor) -> tuple[Tensor, Tensor]:
        if self.scale is not None:
            feature = resize(feature, 1 / self.scale)
        cor = F.leaky_relu(self.convc1(corr), 0.1)
        flo = F.leaky_relu(self.convf2(F.leaky_relu(self.convf1(flow), 0.1)), 0.1)
        x = F.leaky_relu(self.conv(torch.cat([cor, flo], 1)), 0.1)
        out = self.gru(torch.cat([x, flow, feature], 1))
        delta_feature, delta_flow = self.feat_head(out), self.flow_head(out)
        if self.scale is not None:
            delta_feature = resize(delta_feature, self.scale)
            delta_flow = self.scale * resize(delta_flow, self.scale)
        return delta_feature, delta_flow


class BidirectionalCorrelation:
    """All-pairs correlation volumes 0->1 and 1->0 with ``levels`` average-pooled levels, looked up in a
    ``(2r+1)^2`` window (the window offsets are stacked in RAFT's (i, j) order, as the weights expect)."""

    def __init__(self, fmap0: Tensor, fmap1: Tensor, levels: int, radius: int) -> None:
        b, c, h, w = fmap0.shape
        corr = torch.matmul(fmap0.flatten(2).transpose(1, 2), fmap1.flatten(2))
        corr = (corr / torch.sqrt(torch.tensor(c, dtype=torch.float32))).view(b, h, w, 1, h, w)
        volume = corr.reshape(b * h * w, 1, h, w)
        volume_t = corr.permute(0, 4, 5, 3, 1, 2).reshape(b * h * w, 1, h, w)
        self.pyramid, self.pyramid_t = [volume], [volume_t]
        for _ in range(levels - 1):
            self.pyramid.append(F.avg_pool2d(self.pyramid[-1], 2, stride=2))
            self.pyramid_t.append(F.avg_pool2d(self.pyramid_t[-1], 2, stride=2))
        self.radius = radius

    @staticmethod
    def _sample(volume: Tensor, coords: Tensor) -> Tensor:
        h, w = volume.shape[-2:]
        x, y = coords.split(1, dim=-1)
        grid = torch.cat([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], dim=-1)
        return F.grid_sample(volume, grid, align_corners=True)

    def _lookup(self, pyramid: list[Tensor], coords: Tensor) -> Tensor:
        b, _, h, w = coords.shape
        r = self.radius
        offsets = torch.linspace(-r, r, 2 * r + 1, device=coords.device)
        delta = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
        centres = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
        levels = [self._sample(volume, centres / 2**i + delta).view(b, h, w, -1) for i, volume in enumerate(pyramid)]
        return torch.cat(levels, dim=-1).permute(0, 3, 1, 2).contiguous()

    def __call__(self, coords0: Tensor, coords1: Tensor) -> tuple[Tensor, Tensor]:
        return self._lookup(self.pyramid, coords0), self._lookup(self.pyramid_t, coords1)


def combine_flows(comb_block: nn.Module, img0: Tensor, img1: Tensor, flow0: Tensor, flow1: Tensor,
                  mask: Tensor, residual: Tensor, mean: Tensor) -> Tensor:
    """Warp both frames with every flow field, blend by the masks, add residual and mean, average the
    fields and add the learned correction ``comb_block`` of all candidates."""
    b, c, h, w = flow0.shape
    n = c // 2

    def per_field(x: Tensor, channels: int) -> Tensor:
        return x.reshape(b * n, channels, h, w)

    def repeat(x: Tensor) -> Tensor:
        return x.unsqueeze(1).expand(b, n, *x.shape[1:]).reshape(b * n, *x.shape[1:])

    m = per_field(mask, 1)
    candidates = (m * backward_warp(repeat(img0), per_field(flow0, 2))
                  + (1 - m) * backward_warp(repeat(img1), per_field(flow1, 2))
                  + repeat(mean) + per_field(residual, 3)).reshape(b, n, 3, h, w)
    return candidates.mean(1) + comb_block(candidates.reshape(b, n * 3, h, w))


class AMTS(nn.Module):
    """AMT-S: ``forward(img0, img1, embt)`` -> the frame at time ``embt`` in (0, 1) between the two.

    Frames are RGB in [0, 1], ``[B, 3, H, W]`` with H and W multiples of 16 (pad first); ``embt`` is
    ``[B, 1, 1, 1]``. Output is clamped to [0, 1].
    """

    def __init__(self, corr_radius: int = 3, corr_levels: int = 4, num_flows: int = 3,
                 channels: tuple[int, ...] = (20, 32, 44, 56), skip_channels: int = 20) -> None:
        super().__init__()
        self.radius, self.corr_levels = corr_radius, corr_levels
        self.feat_encoder = CorrelationEncoder(84)
        self.encoder = ContextEncoder(channels)
        self.decoder4 = InitDecoder(channels[3], channels[2], skip_channels)
        self.decoder3 = IntermediateDecoder(channels[2], channels[1], skip_channels)
        self.decoder2 = IntermediateDecoder(channels[1], channels[0], skip_channels)
        self.decoder1 = MultiFlowDecoder(channels[0], skip_channels, num_flows)
        self.update4 = UpdateBlock(channels[2], None, corr_levels, corr_radius)
        self.update3 = UpdateBlock(channels[1], 2, corr_levels, corr_radius)
        self.update2 = UpdateBlock(channels[0], 4, corr_levels, corr_radius)
        self.comb_block = nn.Sequential(
            nn.Conv2d(3 * num_flows, 6 * num_flows, 3, 1, 1),
            nn.PReLU(6 * num_flows),
            nn.Conv2d(6 * num_flows, 3, 3, 1, 1),
        )

    @staticmethod
    def _update(block: UpdateBlock, corr_fn: BidirectionalCorrelation, coord: Tensor, flow0: Tensor,
                flow1: Tensor, feature: Tensor, embt: Tensor, downsample: int) -> tuple[Tensor, Tensor, Tensor]:
        """Look up correlations along the bilateral flows rescaled to 0->1 / 1->0 (linear motion), then
        apply the block's residual update."""
        small0, small1 = flow0, flow1
        if downsample != 1:
            small0 = resize(flow0, 1 / downsample) / downsample
            small1 = resize(flow1, 1 / downsample) / downsample
        corr0, corr1 = corr_fn(coord + small1 / embt, coord + small0 / (1.0 - embt))
        delta_feature, delta_flow = block(feature, torch.cat([small0, small1], 1), torch.cat([corr0, corr1], 1))
        return flow0 + delta_flow[:, 0:2], flow1 + delta_flow[:, 2:4], feature + delta_feature

    def forward(self, img0: Tensor, img1: Tensor, embt: Tensor) -> Tensor:
        b, _, h, w = img0.shape
        mean = torch.cat([img0, img1], 2).mean(1, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        coord = coords_grid(b, h // 8, w // 8, img0.device)
        fmap0, fmap1 = self.feat_encoder(torch.cat([img0, img1])).chunk(2)
        corr_fn = BidirectionalCorrelation(fmap0, fmap1, self.corr_levels, self.radius)
        features = [f.chunk(2) for f in self.encoder(torch.cat([img0, img1]))]
        (f0_1, f1_1), (f0_2, f1_2), (f0_3, f1_3), (f0_4, f1_4) = features

        flow0, flow1, ft = self.decoder4(f0_4, f1_4, embt)
        flow0, flow1, ft = self._update(self.update4, corr_fn, coord, flow0, flow1, ft, embt, 1)
        flow0, flow1, ft = self.decoder3(ft, f0_3, f1_3, flow0, flow1)
        flow0, flow1, ft = self._update(self.update3, corr_fn, coord, flow0, flow1, ft, embt, 2)
        flow0, flow1, ft = self.decoder2(ft, f0_2, f1_2, flow0, flow1)
        flow0, flow1, ft = self._update(self.update2, corr_fn, coord, flow0, flow1, ft, embt, 4)
        flow0, flow1, mask, residual = self.decoder1(ft, f0_1, f1_1, flow0, flow1)
        return combine_flows(self.comb_block, img0, img1, flow0, flow1, mask, residual, mean).clamp(0, 1)
