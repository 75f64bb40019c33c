"""Initial noise, FrameInit and the DDIM tables reproduce the reference pipeline's numbers."""

from __future__ import annotations

import pytest
import torch
from ci2v_helpers import FIXTURES, MISSING_FIXTURES, fixture

from i2vbench.consisti2v import DDIMScheduler, initial_noise, low_pass_filter
from i2vbench.consisti2v.frameinit import frameinit

if not FIXTURES.is_dir():
    pytest.skip(MISSING_FIXTURES, allow_module_level=True)


@pytest.fixture(scope="module")
def masks() -> dict[str, torch.Tensor]:
    return fixture("frameinit.safetensors")


@pytest.fixture(scope="module")
def pyoco() -> dict[str, torch.Tensor]:
    return fixture("pyoco.safetensors")


@pytest.fixture(scope="module")
def sampler() -> dict[str, torch.Tensor]:
    return fixture("sampler.safetensors")


@pytest.mark.parametrize(
    "filter_type, key",
    [("gaussian", "lpf_gaussian"), ("butterworth", "lpf_butterworth_n4"), ("ideal", "lpf_ideal"), ("box", "lpf_box")],
)
def test_low_pass_masks_match_reference(masks, filter_type, key):
    mask = low_pass_filter(16, 32, 32, filter_type, d_s=0.25, d_t=0.25, butterworth_order=4)
    assert mask.shape == (16, 32, 32) and mask.dtype == torch.float32
    torch.testing.assert_close(mask, masks[key][0, 0], atol=1e-7, rtol=0)


def test_gaussian_mask_landmarks():
    mask = low_pass_filter(16, 32, 32, "gaussian")
    assert mask[8, 16, 16] == 1.0  # DC at the centre index
    assert mask[8, 20, 16].item() == pytest.approx(0.6065306663513184)
    assert mask.sum().item() == pytest.approx(503.8755449796288, rel=1e-6)


def test_pyoco_mixed_noise_is_bit_exact(pyoco):
    noise = initial_noise((1, 4, 16, 32, 32), torch.Generator().manual_seed(42), "pyoco_mixed", alpha=1.0)
    assert torch.equal(noise, pyoco["noise"])


def test_pyoco_mixed_noise_batch2_one_generator_is_bit_exact(pyoco):
    noise = initial_noise((2, 4, 16, 16, 16), torch.Generator().manual_seed(43), "pyoco_mixed")
    assert torch.equal(noise, pyoco["noise_batch2"])


def test_ddim_tables_match_reference(sampler):
    scheduler = DDIMScheduler()
    assert torch.equal(scheduler.alphas_cumprod, sampler["alphas_cumprod"])
    assert scheduler.timesteps(50) == sampler["timesteps_50"].tolist()


def test_frameinit_noising_and_mixing_match_reference(masks, pyoco):
    scheduler = DDIMScheduler()
    z1, eps = masks["z1"], pyoco["noise"]
    z_tau = scheduler.add_noise(z1.expand(-1, -1, 16, -1, -1), eps, 850)
    torch.testing.assert_close(z_tau, masks["z_tau"], atol=1e-5, rtol=0)
    mixed = frameinit(z1, eps, low_pass_filter(16, 32, 32, "gaussian"), 850, scheduler)
    torch.testing.assert_close(mixed, masks["mixed"], atol=1e-5, rtol=0)
