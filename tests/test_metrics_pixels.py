"""The weight-free metrics against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from i2vbench.metrics import FeatureCache, get_metric, metric_names
from i2vbench.metrics.base import EvalItem
from i2vbench.metrics.frame0_fidelity import PSNR_CAP_DB, psnr, ssim
from i2vbench.metrics.temporal_flickering import flicker_score
from i2vbench.suite import Case
from i2vbench.video import Video


def test_flicker_of_known_sequences():
    still = np.full((5, 4, 4, 3), 77, np.uint8)
    assert flicker_score(still) == 1.0
    alternating = np.stack([np.zeros((4, 4, 3)), np.full((4, 4, 3), 255)] * 2).astype(np.uint8)
    assert flicker_score(alternating) == pytest.approx(0.0)
    # pair differences 10, 20, 30 -> mean 20 -> (255 - 20) / 255
    ramp = np.stack([np.full((2, 2, 3), v) for v in (0, 10, 30, 60)]).astype(np.uint8)
    assert flicker_score(ramp) == pytest.approx(235 / 255)


def test_flicker_is_vbench_mean_of_per_pair_means():
    frames = np.random.default_rng(3).integers(0, 256, (9, 24, 40, 3), dtype=np.uint8)
    pair_means = [np.mean(np.abs(frames[i + 1].astype(np.float64) - frames[i])) for i in range(8)]
    assert flicker_score(frames) == pytest.approx((255 - np.mean(pair_means)) / 255, rel=1e-15)


def test_flicker_uses_absolute_not_wrapped_differences():
    frames = np.stack([np.full((2, 2, 3), 200), np.full((2, 2, 3), 100)]).astype(np.uint8)
    assert flicker_score(frames) == pytest.approx(155 / 255)


def test_psnr_known_mse():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 5, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 25))
    assert psnr(a, a) == PSNR_CAP_DB


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, channel_axis=-1)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def _item(tmp_path, frames: np.ndarray, image: np.ndarray) -> EvalItem:
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "ref.png")
    case = Case(id="c", image=tmp_path / "ref.png", prompt="p", category="x")
    return EvalItem(case, Video(frames, 8))


def test_frame0_fidelity_compares_input_at_video_size(tmp_path):
    yy, xx = np.mgrid[0:32, 0:32]
    image = np.stack([xx * 8, yy * 8, (xx + yy) * 4], -1).astype(np.uint8)  # smooth: resampling keeps it
    big = np.kron(image, np.ones((2, 2, 1), np.uint8))  # input at twice the video size
    frames = np.repeat(image[None], 3, axis=0)
    result = get_metric("frame0_fidelity")().score([_item(tmp_path, frames, big)], FeatureCache())[0]
    assert result.values["frame0_ssim"] > 0.9
    assert result.values["frame0_psnr"] > 30
    shifted = np.roll(frames, 4, axis=2)
    worse = get_metric("frame0_fidelity")().score([_item(tmp_path, shifted, big)], FeatureCache())[0]
    assert worse.values["frame0_psnr"] < result.values["frame0_psnr"] - 5


def test_temporal_flickering_reports_one_frame_videos_as_errors(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    result = get_metric("temporal_flickering")().score([_item(tmp_path, image[None], image)], FeatureCache())[0]
    assert result.error and not result.values


def test_registry_lists_the_weight_free_metrics():
    assert {"temporal_flickering", "frame0_fidelity"} <= set(metric_names())
