"""The sampler reproduces the official pipeline's denoising loop (tiny UNet, CFG 7.5, FrameInit)."""

from __future__ import annotations

import time

import pytest
import torch
from ci2v_helpers import FIXTURES, MISSING_FIXTURES, fixture

from i2vbench.consisti2v import SamplingConfig, sample_latents

if not FIXTURES.is_dir():
    pytest.skip(MISSING_FIXTURES, allow_module_level=True)


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return fixture("sampler.safetensors")


@pytest.fixture(scope="module")
def run(tiny_unet, reference) -> dict[str, object]:
    """One 50-step run (released defaults) with the latents after steps 1 and 3 kept by the callback."""
    kept: dict[int, torch.Tensor] = {}
    timesteps: list[int] = []

    def callback(step: int, t: int, latents: torch.Tensor) -> None:
        timesteps.append(t)
        if step in (0, 2):
            kept[step + 1] = latents.clone()

    start = time.perf_counter()
    video = sample_latents(
        tiny_unet,
        reference["z1"],
        reference["text_cond"],
        reference["text_uncond"],
        config=SamplingConfig(),
        generator=torch.Generator().manual_seed(42),
        callback=callback,
    )
    return {"video": video, "kept": kept, "timesteps": timesteps, "seconds": time.perf_counter() - start}


def test_released_defaults():
    config = SamplingConfig()
    assert (config.num_inference_steps, config.guidance_scale_txt, config.guidance_scale_img) == (50, 7.5, 1.0)
    assert (config.frame_stride, config.noise_method, config.noise_alpha) == (3, "pyoco_mixed", 1.0)
    assert config.frameinit is not None and config.frameinit.noise_level == 850
    assert (config.frameinit.filter_type, config.frameinit.d_s, config.frameinit.d_t) == ("gaussian", 0.25, 0.25)


@pytest.mark.parametrize("step", [1, 3])
def test_latents_after_first_steps_match_reference(run, reference, step):
    torch.testing.assert_close(run["kept"][step], reference[f"latents_after_step{step}"], atol=5e-5, rtol=0)


def test_latents_after_50_steps_match_reference(run, reference):
    video = run["video"]
    assert video.shape == (1, 4, 16, 32, 32)
    torch.testing.assert_close(video[:, :, 1:], reference["latents_final"], atol=1e-3, rtol=1e-5)
    print(f"50-step tiny-UNet sampling took {run['seconds']:.1f} s")


def test_video_starts_with_the_clean_first_frame_and_visits_every_timestep(run, reference):
    assert torch.equal(run["video"][:, :, :1], reference["z1"])
    assert run["timesteps"] == reference["timesteps_50"].tolist()
