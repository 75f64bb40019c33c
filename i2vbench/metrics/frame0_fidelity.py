"""How faithfully frame 0 reproduces the input image: PSNR and SSIM (pixels only)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec

#: PSNR of identical images is infinite; it is reported as this ceiling so that averages stay finite.
PSNR_CAP_DB = 100.0


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels, capped at :data:`PSNR_CAP_DB`."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * np.log10(data_range**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004): Gaussian window sigma 1.5 (11 taps), K1 0.01, K2 0.03,
    population covariances, per channel, averaged over the image minus a 5-pixel border and over channels.
    Matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``.
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    pad = int(3.5 * sigma + 0.5)
    a, b = a.astype(np.float64), b.astype(np.float64)
    values = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        blur = lambda z: gaussian_filter(z, sigma=sigma, truncate=3.5)  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s[pad:-pad, pad:-pad].mean() if min(s.shape) > 2 * pad else s.mean())
    return float(np.mean(values))


class Frame0Fidelity(Metric):
    """PSNR (dB) and SSIM between the input image, fitted to the video's size, and the video's frame 0.

    An I2V model should start from its conditioning image; ConsistI2V's frame 0 is the VAE
    reconstruction of it, so its fidelity is the VAE's. Dataset scores are means over videos.
    """

    name = "frame0_fidelity"
    group = "first_frame"
    scores = (ScoreSpec("frame0_ssim"), ScoreSpec("frame0_psnr", unit="dB"))
    description = "PSNR / SSIM of frame 0 against the input image"

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        return [
            MetricResult({"frame0_ssim": ssim(item.image, item.video.frames[0]),
                          "frame0_psnr": psnr(item.image, item.video.frames[0])})
            for item in items
        ]
