"""FrameInit: keep the low frequencies of the noised static first-frame video, take the rest from noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fft as fft

from .scheduler import DDIMScheduler

FILTER_TYPES = ("gaussian", "butterworth", "ideal", "box")


@dataclass(frozen=True)
class FrameInitConfig:
    """The released defaults: noise level 850, Gaussian low-pass with d_s = d_t = 0.25."""

    noise_level: int = 850
    filter_type: str = "gaussian"
    d_s: float = 0.25
    d_t: float = 0.25
    butterworth_order: int = 4


def low_pass_filter(
    n_frames: int,
    height: int,
    width: int,
    filter_type: str = "gaussian",
    d_s: float = 0.25,
    d_t: float = 0.25,
    butterworth_order: int = 4,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A (F, h, w) float32 mask over fftshift-ed frequencies (DC at index N//2), FreeInit formulas.

    With ``d² = ((d_s/d_t)(2t/F-1))² + (2y/h-1)² + (2x/w-1)²``: gaussian ``exp(-d²/(2 d_s²))``,
    butterworth ``1/(1+(d²/d_s²)^n)``, ideal ``d² <= 2 d_s`` (FreeInit's ``d_s*2``, not ``d_s²``,
    kept for identical masks), box a centred block of half-sizes ``round(h//2·d_s)`` (both spatial
    axes) and ``round(F//2·d_t)``. Computed in float64 like the reference's python loops.
    """
    if filter_type not in FILTER_TYPES:
        raise ValueError(f"unknown FrameInit filter {filter_type!r}; expected one of {', '.join(FILTER_TYPES)}")
    if d_s <= 0 or d_t <= 0:
        raise ValueError(f"FrameInit cut-offs must be positive; got d_s={d_s}, d_t={d_t}")
    if filter_type == "box":
        if d_s > 1 or d_t > 1:  # the block would start before the spectrum (a negative slice keeps less, not more)
            raise ValueError(f"the box filter's cut-offs are at most 1 (all frequencies); got d_s={d_s}, d_t={d_t}")
        mask = torch.zeros(n_frames, height, width, dtype=torch.float64)
        half_s, half_t = round(height // 2 * d_s), round(n_frames // 2 * d_t)
        ct, cy, cx = n_frames // 2, height // 2, width // 2
        mask[ct - half_t : ct + half_t, cy - half_s : cy + half_s, cx - half_s : cx + half_s] = 1.0
        return mask.to(device=device, dtype=torch.float32)

    def centred(n: int) -> torch.Tensor:
        return 2 * torch.arange(n, dtype=torch.float64) / n - 1

    d2 = (
        ((d_s / d_t) * centred(n_frames))[:, None, None] ** 2
        + centred(height)[None, :, None] ** 2
        + centred(width)[None, None, :] ** 2
    )
    if filter_type == "gaussian":
        mask = torch.exp(-1 / (2 * d_s**2) * d2)
    elif filter_type == "butterworth":
        mask = 1 / (1 + (d2 / d_s**2) ** butterworth_order)
    else:
        mask = (d2 <= d_s * 2).to(torch.float64)
    return mask.to(device=device, dtype=torch.float32)


def freq_mix_3d(x: torch.Tensor, noise: torch.Tensor, lpf: torch.Tensor) -> torch.Tensor:
    """Low frequencies (``lpf``) of ``x`` plus high frequencies (``1 - lpf``) of ``noise``, over (F, h, w)."""
    dims = (-3, -2, -1)
    x_freq = fft.fftshift(fft.fftn(x.float(), dim=dims), dim=dims)
    noise_freq = fft.fftshift(fft.fftn(noise.float(), dim=dims), dim=dims)
    mixed = x_freq * lpf + noise_freq * (1 - lpf)
    return fft.ifftn(fft.ifftshift(mixed, dim=dims), dim=dims).real


def frameinit(
    first_frame_latents: torch.Tensor,
    noise: torch.Tensor,
    lpf: torch.Tensor,
    noise_level: int,
    scheduler: DDIMScheduler,
) -> torch.Tensor:
    """Initial latents whose layout comes from the first frame: the static video (first frame repeated
    over ``noise``'s frames; or a whole layout video, for camera motion) is diffused to ``noise_level``
    with the SAME noise, then frequency-mixed."""
    static = first_frame_latents.float().expand(-1, -1, noise.shape[2], -1, -1)
    z_tau = scheduler.add_noise(static, noise.float(), noise_level)
    return freq_mix_3d(z_tau, noise, lpf)
