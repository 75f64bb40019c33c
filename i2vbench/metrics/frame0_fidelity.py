"""How faithfully frame 0 reproduces the input image: PSNR and SSIM (pixels), and LPIPS where its weights are
cached."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .. import weights
from .backbones import read_state_dict
from .base import EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec
from .lpips import MIN_SIDE, LPIPSAlex, load_lpips, to_lpips_input

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


#: WEIGHTS rows LPIPS needs: the v0.1 linear heads of the ``lpips`` package and torchvision's AlexNet trunk.
LPIPS_WEIGHTS = ("lpips_alex", "alexnet_imagenet")
LPIPS_SPEC = ScoreSpec("frame0_lpips", higher_is_better=False)


def lpips_available() -> bool:
    return all(weights.is_available(name) for name in LPIPS_WEIGHTS)


class Frame0Fidelity(Metric):
    """PSNR (dB), SSIM and LPIPS between the input image, fitted to the video's size, and the video's frame 0.

    An I2V model should start from its conditioning image; ConsistI2V's frame 0 is the VAE
    reconstruction of it, so its fidelity is the VAE's (and the resampling's: the reference is fitted by
    :func:`~i2vbench.video.fit_image`, bicubic, where ConsistI2V resizes bilinearly, on the same pixel grid).
    Dataset scores are means over videos.

    ``frame0_lpips`` (AlexNet, v0.1, as the ``lpips`` package, on both images in [-1, 1] at the video's size;
    lower is better) is declared only by an instance created while both :data:`LPIPS_WEIGHTS` are cached:
    without them the metric reports PSNR and SSIM alone and the store knows no LPIPS column, so reports leave it
    empty. A video smaller than 32 pixels a side has no LPIPS value.
    """

    name = "frame0_fidelity"
    group = "first_frame"
    scores = (ScoreSpec("frame0_ssim"), ScoreSpec("frame0_psnr", unit="dB"))
    description = "PSNR / SSIM (and LPIPS when its weights are cached) of frame 0 against the input image"

    def __init__(self, device: str = "cpu", precision: str = "auto") -> None:
        super().__init__(device, precision)
        self.with_lpips = lpips_available()
        if self.with_lpips:
            self.scores = (*type(self).scores, LPIPS_SPEC)

    def left_out(self) -> str | None:
        if self.with_lpips:
            return None
        return ("frame0_lpips left out: its weights are not cached (fetch them with 'i2vbench weights fetch "
                f"{' '.join(LPIPS_WEIGHTS)}')")

    def load(self) -> LPIPSAlex:
        heads, trunk = (read_state_dict(weights.locate(name)) for name in LPIPS_WEIGHTS)
        return load_lpips(heads, trunk).to(self.device)

    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        results = [
            MetricResult({"frame0_ssim": ssim(item.image, item.video.frames[0]),
                          "frame0_psnr": psnr(item.image, item.video.frames[0])})
            for item in items
        ]
        if self.with_lpips:
            for result, distance in zip(results, self.lpips(items)):
                if distance is not None:
                    result.values[LPIPS_SPEC.name] = distance
        return results

    def lpips(self, items: Sequence[EvalItem]) -> list[float | None]:
        """LPIPS of each video's frame 0 against its input image (None below 32 pixels a side); the videos of one
        size go through the network together."""
        out: list[float | None] = [None] * len(items)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, item in enumerate(items):
            if min(item.video.size) >= MIN_SIDE:
                by_size.setdefault(tuple(item.video.size), []).append(i)
        for indices in by_size.values():
            images = torch.from_numpy(np.stack([items[i].image for i in indices]))
            frames = torch.from_numpy(np.stack([items[i].video.frames[0] for i in indices]))
            with torch.inference_mode():
                dist = self.network()(to_lpips_input(images).to(self.device), to_lpips_input(frames).to(self.device))
            for i, d in zip(indices, dist.float().cpu().tolist()):
                out[i] = d
        return out
