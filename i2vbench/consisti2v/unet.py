"""The ConsistI2V video UNet: SD2.1 inflated with temporal layers and first-frame conditioning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .branches import repeat_rows
from .config import UNetConfig
from .embeddings import TimestepEmbedding, sinusoidal_embedding
from .unet_blocks import DownBlock, LevelSettings, MidBlock, UpBlock

TimestepLike = int | float | torch.Tensor


class ConsistI2VUNet(nn.Module):
    """Predicts the noise of the 15 frames that follow a clean first frame.

    The clean first-frame latent is put in front of the noisy frames (16 frames), every 2-D layer runs
    on ``(b*16, C, h, w)`` and frame 0 is dropped from the output. State-dict keys are those of the
    released ``VideoLDMUNet3DConditionModel`` checkpoint.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        channels = list(config.block_out_channels)
        levels = len(channels)
        temb_dim = config.time_embed_dim

        def settings(level: int) -> LevelSettings:
            return LevelSettings(
                temb_dim=temb_dim,
                groups=config.norm_num_groups,
                eps=config.norm_eps,
                heads=config.attention_head_dim[level],
                context_dim=config.cross_attention_dim,
                temporal_heads=config.n_temp_heads,
                n_frames=config.n_frames,
            )

        self.conv_in = nn.Conv2d(config.in_channels, channels[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(channels[0], temb_dim)
        if config.use_frame_stride_condition:
            self.frame_stride_embedding = TimestepEmbedding(channels[0], temb_dim)

        skip_channels = [channels[0]]
        self.down_blocks = nn.ModuleList()
        for level, out_ch in enumerate(channels):
            last = level == levels - 1
            in_ch = channels[max(level - 1, 0)]
            self.down_blocks.append(
                DownBlock(settings(level), in_ch, out_ch, config.layers_per_block, not last, not last)
            )
            skip_channels += [out_ch] * (config.layers_per_block + (0 if last else 1))

        self.mid_block = MidBlock(settings(levels - 1), channels[-1])

        self.up_blocks = nn.ModuleList()
        prev_ch = channels[-1]
        for i, level in enumerate(reversed(range(levels))):
            taken = skip_channels[-(config.layers_per_block + 1):]
            del skip_channels[-(config.layers_per_block + 1):]
            self.up_blocks.append(
                UpBlock(settings(level), prev_ch, channels[level], taken[::-1], i > 0, level > 0)
            )
            prev_ch = channels[level]

        self.conv_norm_out = nn.GroupNorm(config.norm_num_groups, channels[0], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(channels[0], config.out_channels, 3, padding=1)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    def to_channels_last(self) -> "ConsistI2VUNet":
        """Store conv weights NHWC (NDHWC for the temporal convs) so activations stay channels-last.

        On GPUs the convolutions then run without layout conversions, and the token views of the
        transformers (``(b*f, h*w, C)``) and the frame regrouping of the temporal convs are free.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.to(memory_format=torch.channels_last)
            elif isinstance(module, nn.Conv3d):
                module.to(memory_format=torch.channels_last_3d)
        return self

    @property
    def device(self) -> torch.device:
        return self.conv_in.weight.device

    def _embed(self, values: torch.Tensor, mlp: TimestepEmbedding) -> torch.Tensor:
        features = sinusoidal_embedding(
            values, self.config.block_out_channels[0], self.config.flip_sin_to_cos, self.config.freq_shift
        )
        return mlp(features.to(self.dtype))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: TimestepLike,
        encoder_hidden_states: torch.Tensor,
        first_frame_latents: torch.Tensor,
        frame_stride: TimestepLike | None = None,
        *,
        branches: int = 1,
    ) -> torch.Tensor:
        """Noise prediction for ``sample`` (b, C, F-1, h, w) given the clean ``first_frame_latents``.

        ``encoder_hidden_states`` is one text embedding per video (b, L, D). ``timestep`` and
        ``frame_stride`` may be a python number, a 0-dim tensor, one value per video (b,) or one per
        frame (b*F,) in video-major order. Returns (b, C_out, F-1, h, w).

        ``branches`` > 1: guidance branches that differ only in their text. ``encoder_hidden_states`` then
        holds ``branches * b`` rows, branch-major, every other input ``b``; the layers before the first
        text cross-attention run once per video (:mod:`.branches`). Returns (branches * b, C_out, F-1, h, w),
        the same as repeating the other inputs ``branches`` times.
        """
        n_frames = self.config.n_frames
        b, h, w = self._check_inputs(sample, encoder_hidden_states, first_frame_latents, branches)
        temb = self._embed(_per_frame(timestep, b, n_frames, sample.device, "timestep"), self.time_embedding)
        if self.config.use_frame_stride_condition:
            if frame_stride is None:
                raise ValueError("frame_stride is required: this UNet was trained with frame-stride conditioning")
            stride = _per_frame(frame_stride, b, n_frames, sample.device, "frame_stride")
            temb = temb + self._embed(stride, self.frame_stride_embedding)

        video = torch.cat([first_frame_latents.to(sample.dtype), sample], dim=2)
        x = video.transpose(1, 2).reshape(b * n_frames, -1, h, w).to(self.dtype)
        context = encoder_hidden_states.to(self.dtype)

        x = self.conv_in(x)
        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, temb, n_frames, context)
            skips += block_skips
        x = self.mid_block(x, temb, n_frames, context)
        for block in self.up_blocks:
            n_skips = len(block.resnets)
            taken, skips = skips[-n_skips:], skips[:-n_skips]
            size = tuple(skips[-1].shape[-2:]) if block.upsamplers else None
            x = block(x, taken[::-1], temb, n_frames, context, size)
        x = self.conv_out(F.silu(self.conv_norm_out(repeat_rows(x, branches * b * n_frames))))
        return x.view(branches * b, n_frames, -1, h, w).transpose(1, 2)[:, :, 1:]

    def _check_inputs(
        self, sample: torch.Tensor, encoder_hidden_states: torch.Tensor, first_frame_latents: torch.Tensor,
        branches: int,
    ) -> tuple[int, int, int]:
        cfg = self.config
        expected_frames = cfg.n_frames - 1
        if sample.ndim != 5 or sample.shape[1] != cfg.in_channels or sample.shape[2] != expected_frames:
            raise ValueError(
                f"sample must be (batch, {cfg.in_channels}, {expected_frames}, h, w): the {expected_frames} noisy "
                f"frames that follow the clean first frame (n_frames={cfg.n_frames} is fixed by the "
                f"checkpoint); got {tuple(sample.shape)}"
            )
        b, _, _, h, w = sample.shape
        if tuple(first_frame_latents.shape) != (b, cfg.in_channels, 1, h, w):
            raise ValueError(
                f"first_frame_latents must be (batch, {cfg.in_channels}, 1, h, w) = {(b, cfg.in_channels, 1, h, w)} "
                f"to match sample; got {tuple(first_frame_latents.shape)}"
            )
        if branches < 1:
            raise ValueError(f"branches must be at least 1; got {branches}")
        if (
            encoder_hidden_states.ndim != 3
            or encoder_hidden_states.shape[0] != branches * b
            or encoder_hidden_states.shape[2] != cfg.cross_attention_dim
        ):
            per = "one text embedding per video" if branches == 1 else f"{branches} text embeddings per video"
            raise ValueError(
                f"encoder_hidden_states must be {per}, ({branches * b}, tokens, "
                f"{cfg.cross_attention_dim}); got {tuple(encoder_hidden_states.shape)}"
            )
        return b, h, w


def _per_frame(value: TimestepLike, batch: int, n_frames: int, device: torch.device, name: str) -> torch.Tensor:
    """Broadcast a scalar, per-video (b,) or per-frame (b*F,) value to one entry per frame row."""
    if isinstance(value, (int, float)):  # filled on the device: a copy from the host would wait for the GPU
        values = torch.full((), value, device=device)
    else:
        values = torch.as_tensor(value, device=device)
    if values.ndim == 0 or values.shape == (1,):
        return values.reshape(1).expand(batch * n_frames)
    if values.shape == (batch,):
        return values.repeat_interleave(n_frames)
    if values.shape == (batch * n_frames,):
        return values
    raise ValueError(
        f"{name} must be a number, a 0-dim tensor, a per-video tensor of shape ({batch},) or a per-frame "
        f"tensor of shape ({batch * n_frames},); got shape {tuple(values.shape)}"
    )
