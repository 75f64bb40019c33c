"""Sinusoidal timestep features and the MLPs that embed timestep and frame stride."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(
    values: torch.Tensor, dim: int, flip_sin_to_cos: bool = True, freq_shift: float = 0.0
) -> torch.Tensor:
    """SD's ``time_proj``: (n,) integers -> (n, dim) float32 [cos | sin] features.

    Always float32 (as the reference does even for a float64 model) so that every dtype embeds a
    timestep the same way before the MLP.
    """
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=values.device)
    freqs = torch.exp(exponent / (half - freq_shift))
    angles = values[:, None].float() * freqs[None, :]
    sin, cos = torch.sin(angles), torch.cos(angles)
    return torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)


class TimestepEmbedding(nn.Module):
    """Linear -> SiLU -> Linear; used for the timestep and (a second copy) for the frame stride."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(features)))
