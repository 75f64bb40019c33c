"""Behaviour of the noise priors, FrameInit and DDIM that needs no golden fixture."""

from __future__ import annotations

import math

import pytest
import torch

from i2vbench.consisti2v import DDIMScheduler, freq_mix_3d, initial_noise, low_pass_filter

SHAPE = (1, 4, 16, 8, 8)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("method", ["vanilla", "pyoco_mixed", "pyoco_progressive"])
def test_per_video_generators_make_batches_equal_single_videos(method):
    batch = initial_noise((2, *SHAPE[1:]), [generator(1), generator(2)], method)
    singles = [initial_noise(SHAPE, generator(s), method) for s in (1, 2)]
    assert torch.equal(batch, torch.cat(singles))


def test_generator_list_must_have_one_generator_per_video():
    with pytest.raises(ValueError, match="one per video"):
        initial_noise((2, *SHAPE[1:]), [generator(1)], "vanilla")


def test_unknown_noise_method_is_rejected_with_the_allowed_names():
    with pytest.raises(ValueError, match="pyoco_mixed"):
        initial_noise(SHAPE, generator(0), "perlin")


def test_pyoco_mixed_draw_order_shared_then_independent():
    g = generator(7)
    shared = torch.randn((1, 4, 1, 8, 8), generator=g)
    own = torch.randn(SHAPE, generator=g)
    expected = shared * math.sqrt(0.5) + own * math.sqrt(0.5)
    assert torch.equal(initial_noise(SHAPE, generator(7), "pyoco_mixed", alpha=1.0), expected)


def test_pyoco_progressive_is_an_ar1_chain_over_frames():
    alpha = 2.0
    g = generator(3)
    first = torch.randn(SHAPE, generator=g)[:, :, 0]
    own = torch.randn(SHAPE, generator=g) * math.sqrt(1 / (1 + alpha**2))
    noise = initial_noise(SHAPE, generator(3), "pyoco_progressive", alpha=alpha)
    assert torch.equal(noise[:, :, 0], first)
    for f in range(1, 16):
        assert torch.equal(noise[:, :, f], noise[:, :, f - 1] * math.sqrt(alpha**2 / (1 + alpha**2)) + own[:, :, f])


def test_unknown_filter_type_is_rejected_with_the_allowed_names():
    with pytest.raises(ValueError, match="gaussian, butterworth, ideal, box"):
        low_pass_filter(16, 8, 8, "hann")


def test_box_cut_offs_above_one_are_refused_rather_than_keeping_less():
    assert low_pass_filter(16, 8, 8, "box", d_s=1.0, d_t=1.0).sum() == 16 * 8 * 8  # 1: every frequency
    with pytest.raises(ValueError, match="at most 1"):
        low_pass_filter(16, 8, 8, "box", d_s=1.2, d_t=0.25)  # its block would start before the spectrum


def test_freq_mix_with_all_pass_or_all_stop_returns_one_input():
    x, noise = torch.randn(SHAPE), torch.randn(SHAPE)
    torch.testing.assert_close(freq_mix_3d(x, noise, torch.ones(16, 8, 8)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(freq_mix_3d(x, noise, torch.zeros(16, 8, 8)), noise, atol=1e-5, rtol=0)


def test_ddim_step_to_the_final_alpha_returns_the_clean_estimate():
    scheduler = DDIMScheduler()
    x0, eps = torch.randn(2, 3), torch.randn(2, 3)
    x_t = scheduler.add_noise(x0, eps, 1)
    torch.testing.assert_close(scheduler.step(eps, 1, x_t, scheduler.previous_timestep(1, 50)), x0, atol=1e-5, rtol=0)


def test_add_noise_accepts_one_timestep_per_batch_item():
    scheduler = DDIMScheduler()
    x, eps = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    both = scheduler.add_noise(x, eps, torch.tensor([10, 900]))
    torch.testing.assert_close(both[1:], scheduler.add_noise(x[1:], eps[1:], 900))


def test_timesteps_reject_impossible_step_counts():
    with pytest.raises(ValueError, match=r"\[1, 999\]"):
        DDIMScheduler().timesteps(0)
    with pytest.raises(ValueError, match=r"\[1, 999\]"):  # the offset would start at timestep 1000
        DDIMScheduler().timesteps(1000)


@pytest.mark.parametrize("steps", [499, 500, 501, 998, 999])
def test_every_allowed_step_count_stays_inside_the_table(steps):
    scheduler = DDIMScheduler()
    x = torch.ones(1, 2)
    for t in scheduler.timesteps(steps):
        x = scheduler.step(torch.zeros_like(x), t, x, scheduler.previous_timestep(t, steps))
    assert torch.isfinite(x).all()
