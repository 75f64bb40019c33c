"""LPIPS (Zhang et al. 2018), AlexNet variant v0.1, as the ``lpips`` package computes it.

The trunk is torchvision's AlexNet ``features`` (ImageNet weights, the ones ``lpips`` loads through torchvision);
the five linear heads are the ``lpips`` package's ``weights/v0.1/alex.pth`` (keys ``lin{k}.model.1.weight``,
``[1, C_k, 1, 1]``), loaded by key with ``strict=True``. This module knows nothing of the toolkit.
"""

from __future__ import annotations

import torch
from torch import nn

#: Channels of the five AlexNet ReLU outputs LPIPS compares, and their indices in ``alexnet().features``.
CHANNELS = (64, 192, 384, 256, 256)
TAPS = (1, 4, 7, 9, 11)
#: AlexNet needs at least this many pixels a side to reach its fifth ReLU.
MIN_SIDE = 32


class _LinearHead(nn.Module):
    """``lpips.NetLinLayer`` with dropout: 1x1 convolution C -> 1 without bias (keys ``model.1.weight``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPSAlex(nn.Module):
    """Perceptual distance between two image batches ``[N, 3, H, W]`` in [-1, 1] -> ``[N]`` (0 = identical).

    Inputs are shifted/scaled by LPIPS' ``ScalingLayer``; at each tap the features are unit-normalised over
    channels (``x / (||x|| + 1e-10)``), their squared difference is weighted by the linear head, averaged over
    space, and the five layers are summed."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import alexnet

        self.features = alexnet().features[: TAPS[-1] + 1]
        for k, channels in enumerate(CHANNELS):
            self.add_module(f"lin{k}", _LinearHead(channels))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        both = self.taps((torch.cat([a, b]) - self.shift) / self.scale)
        total = torch.zeros(a.shape[0], device=a.device, dtype=both[0].dtype)
        for k, feats in enumerate(both):
            fa, fb = feats.chunk(2)
            total = total + getattr(self, f"lin{k}")((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return total


def lpips_weights(heads: dict[str, torch.Tensor], trunk: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict of :class:`LPIPSAlex` from ``alex.pth`` (the heads) and torchvision's AlexNet checkpoint
    (its ``features.*``; the classifier is not used)."""
    return {**heads, **{k: v for k, v in trunk.items() if k.startswith("features.")}}


def load_lpips(heads: dict[str, torch.Tensor], trunk: dict[str, torch.Tensor]) -> LPIPSAlex:
    """:class:`LPIPSAlex` with both checkpoints loaded strictly by key, in eval mode (dropout off)."""
    model = LPIPSAlex()
    model.load_state_dict(lpips_weights(heads, trunk), strict=True)
    return model.eval().requires_grad_(False)


def to_lpips_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float ``[N, 3, H, W]`` in [-1, 1] (the ``lpips`` package's ``im2tensor``)."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0

