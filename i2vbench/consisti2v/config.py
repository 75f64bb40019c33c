"""UNet configuration as data, read from a diffusers-style ``config.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

_CROSS_ATTN_DOWN = "CrossAttnDownBlock2D"
_PLAIN_DOWN = "DownBlock2D"
_CROSS_ATTN_UP = "CrossAttnUpBlock2D"
_PLAIN_UP = "UpBlock2D"
_MID = "UNetMidBlock2DCrossAttn"


@dataclass(frozen=True)
class UNetConfig:
    """The subset of the released ``unet/config.json`` that shapes the network.

    ``attention_head_dim`` holds HEAD COUNTS per level (a diffusers naming quirk kept so that the
    released config reads as-is); every head is ``channels // heads`` wide.

    Two keys are read but do not change the network: ``augment_temporal_attention`` (the first-frame
    window is always built, as every official script passes ``augment_temporal_attention=True`` over the
    stored config) and ``upcast_attention`` (the fused attention kernels used on GPUs compute the softmax
    in float32 anyway).
    """

    in_channels: int = 4
    out_channels: int = 4
    down_block_types: tuple[str, ...] = (_CROSS_ATTN_DOWN,) * 3 + (_PLAIN_DOWN,)
    up_block_types: tuple[str, ...] = (_PLAIN_UP,) + (_CROSS_ATTN_UP,) * 3
    mid_block_type: str = _MID
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    attention_head_dim: tuple[int, ...] = (5, 10, 20, 20)
    cross_attention_dim: int = 1024
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    use_linear_projection: bool = True
    upcast_attention: bool = False
    transformer_layers_per_block: int = 1
    sample_size: int = 64
    use_temporal: bool = True
    n_frames: int = 16
    n_temp_heads: int = 8
    first_frame_condition_mode: str = "concat"
    augment_temporal_attention: bool = True
    temp_pos_embedding: str = "rotary"
    use_frame_stride_condition: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        levels = len(self.block_out_channels)
        if len(self.attention_head_dim) != levels:
            raise ValueError(
                f"attention_head_dim has {len(self.attention_head_dim)} entries; "
                f"block_out_channels has {levels}: give one head count per level"
            )
        if tuple(self.down_block_types) != (_CROSS_ATTN_DOWN,) * (levels - 1) + (_PLAIN_DOWN,):
            raise ValueError(
                f"down_block_types {list(self.down_block_types)} not supported: expected "
                f"{levels - 1} x {_CROSS_ATTN_DOWN} then {_PLAIN_DOWN}"
            )
        if tuple(self.up_block_types) != (_PLAIN_UP,) + (_CROSS_ATTN_UP,) * (levels - 1):
            raise ValueError(
                f"up_block_types {list(self.up_block_types)} not supported: expected "
                f"{_PLAIN_UP} then {levels - 1} x {_CROSS_ATTN_UP}"
            )
        if self.mid_block_type != _MID:
            raise ValueError(f"mid_block_type {self.mid_block_type!r} not supported: expected {_MID!r}")
        if self.first_frame_condition_mode != "concat":
            raise ValueError(
                f"first_frame_condition_mode {self.first_frame_condition_mode!r} not supported: "
                "only 'concat' (the released model) is implemented"
            )
        if self.temp_pos_embedding != "rotary":
            raise ValueError(
                f"temp_pos_embedding {self.temp_pos_embedding!r} not supported: "
                "only 'rotary' (the released model) is implemented"
            )
        if not self.augment_temporal_attention:
            import warnings

            warnings.warn("augment_temporal_attention is false in this UNet config; building the first-frame "
                          "window anyway, as the official scripts do (they pass augment_temporal_attention=True)")
        if not (self.use_temporal and self.use_linear_projection and self.transformer_layers_per_block == 1):
            raise ValueError(
                "only use_temporal=True, use_linear_projection=True, transformer_layers_per_block=1 "
                "(the released model) are implemented"
            )

    @property
    def time_embed_dim(self) -> int:
        """Width of the timestep / frame-stride embedding (4x the first level, as in SD)."""
        return 4 * self.block_out_channels[0]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "UNetConfig":
        """Build from a parsed diffusers ``config.json``; unknown keys are kept in ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in names and value is not None:
                kwargs[key] = tuple(value) if isinstance(value, list) else value
        extra = {k: v for k, v in data.items() if k not in names}
        if data.get("num_attention_heads") is not None:  # diffusers: the real head count wins
            kwargs["attention_head_dim"] = data["num_attention_heads"]
        heads = kwargs.get("attention_head_dim")
        if isinstance(heads, int):
            kwargs["attention_head_dim"] = (heads,) * len(
                kwargs.get("block_out_channels", cls.block_out_channels)
            )
        elif heads is not None:
            kwargs["attention_head_dim"] = tuple(heads)
        return cls(**kwargs, extra=extra)

    @classmethod
    def consisti2v(cls) -> "UNetConfig":
        """The released ConsistI2V UNet: SD2.1-base plus the temporal / first-frame extras."""
        return cls()
