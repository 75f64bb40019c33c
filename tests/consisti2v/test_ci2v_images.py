"""Pixels in and out of ConsistI2V, held to the reference's formulas written out here independently.

The reference resizes float tensors with ``antialias=None`` (no antialiasing), crops camera windows with
floor offsets and zero fill past the image, normalises before cropping, and saves videos truncated to uint8.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2vbench.consisti2v.pipeline import ConsistI2VPipeline, VideoRequest, camera_frames, check_request
from i2vbench.consisti2v.sampling import SamplingConfig


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=False)[0]


def _normalised(image: np.ndarray, short: int) -> torch.Tensor:
    """ToTensor, Resize(short side) without antialiasing, Normalize(0.5, 0.5)."""
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    h, w = x.shape[-2:]
    size = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    return (_bilinear(x, size) - 0.5) / 0.5


def test_the_input_image_is_resized_without_antialiasing_then_centre_cropped():
    image = _image(100, 157)  # short side 100 -> 64, long side int(64 * 157 / 100) = 100
    got = ConsistI2VPipeline.preprocess(None, image, 64, 64)
    x = _normalised(image, 64)
    left = int(round((x.shape[-1] - 64) / 2))  # torchvision CenterCrop rounds its offset
    assert got.shape == (3, 64, 64)
    assert torch.allclose(got, x[:, :, left : left + 64], atol=1e-6)
    smoothed = F.interpolate(torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255, size=(64, 100),
                             mode="bilinear", antialias=True)[0] * 2 - 1
    assert (got - smoothed[:, :, left : left + 64]).abs().max() > 0.1  # the test tells the two apart


@pytest.mark.parametrize("motion", ["zoom_in", "zoom_out"])
def test_zoom_crops_sit_at_floor_offsets_and_are_resized_without_antialiasing(motion):
    image = _image(90, 121, seed=1)  # short side -> 64, long side int(64 * 121 / 90) = 86: odd margins occur
    got = camera_frames(image, motion, 32, 32, 16)
    x = _normalised(image, 64)
    side, small = 64, int(64 // 1.5)
    margins = set()
    for i in range(16):
        shrink = int((side - small) * i / 16)
        size = side - shrink if motion == "zoom_in" else small + shrink
        top, left = (64 - size) // 2, (86 - size) // 2
        margins.add((86 - size) % 2)
        assert torch.allclose(got[i], _bilinear(x[:, top : top + size, left : left + size], (32, 32)), atol=1e-6), i
    assert margins == {0, 1}  # both parities of the margin were checked (rounding would move the odd ones)


@pytest.mark.parametrize("motion", ["pan_left", "pan_right"])
def test_pan_windows_start_where_the_reference_puts_them(motion):
    image = _image(40, 100, seed=2)  # -> (32, 80): windows 32 wide over a span of 48
    got = camera_frames(image, motion, 32, 32, 16)
    x = _normalised(image, 32)
    for i in range(16):
        frac = i / 16 if motion == "pan_right" else 1 - i / 16
        left = int(48 * frac)
        assert torch.equal(got[i], x[:, :, left : left + 32]), i


def test_pan_windows_past_the_image_edge_are_zero_filled_like_the_reference():
    image = _image(64, 48, seed=3)  # portrait: short side 48 -> 32 wide, 42 high; windows 48 wide
    got = camera_frames(image, "pan_right", 32, 48, 16)
    x = _normalised(image, 32)
    assert x.shape[-2:] == (42, 32)
    for i in range(16):
        left = int((32 - 48) * i / 16)  # negative: the window starts left of the image
        canvas = torch.zeros(3, 42, 48)
        canvas[:, :, -left : -left + 32] = x
        assert torch.equal(got[i], canvas[:, 5:37]), i  # then centre-cropped to the requested 32 rows


class _StubVAE:
    """Decodes every latent to the same pixel value (in [-1, 1])."""

    dtype = torch.float32

    def __init__(self, value: float) -> None:
        self.value = value
        self.config = type("Config", (), {"scaling_factor": 0.5})()

    def decode(self, z: torch.Tensor):
        return type("Out", (), {"sample": torch.full((z.shape[0], 3, 8, 8), self.value)})()


@pytest.mark.parametrize("level, expected", [(10.7, 10), (254.99, 254), (255.0, 255), (0.3, 0)])
def test_decoded_pixels_are_truncated_to_uint8_as_the_reference_saves_them(level, expected):
    pipe = ConsistI2VPipeline(None, _StubVAE((level / 255 - 0.5) * 2), None, None)
    video = pipe.decode(torch.zeros(1, 4, 2, 1, 1))
    assert video.shape == (1, 2, 8, 8, 3) and video.dtype == np.uint8
    assert np.all(video == expected)


@pytest.mark.parametrize("request_, message", [
    (VideoRequest(sampling=SamplingConfig(frame_stride=0)), "frame_stride must be at least 1"),
    (VideoRequest(sampling=SamplingConfig(num_inference_steps=0)), "steps must be from 1 to 999"),
    (VideoRequest(sampling=SamplingConfig(num_inference_steps=1000)), "steps must be from 1 to 999"),
    (VideoRequest(decode_chunk=0), "decode_chunk .* at least 1"),
])
def test_settings_out_of_range_are_refused(request_, message):
    with pytest.raises(ValueError, match=message):
        check_request(request_, 16)


@pytest.mark.parametrize("level", [-1, 1000, 850.5, True])
def test_frameinit_noise_levels_outside_the_timesteps_are_refused(level):
    from i2vbench.consisti2v.frameinit import FrameInitConfig

    request = VideoRequest(sampling=SamplingConfig(frameinit=FrameInitConfig(noise_level=level)))
    with pytest.raises(ValueError, match="frameinit_noise_level must be a whole timestep from 0 to 999"):
        check_request(request, 16)
    check_request(VideoRequest(sampling=SamplingConfig(frameinit=FrameInitConfig(noise_level=999))), 16)
    check_request(VideoRequest(sampling=SamplingConfig(frameinit=None)), 16)
