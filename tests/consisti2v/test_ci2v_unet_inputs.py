"""The UNet explains what is wrong with its inputs and config, and runs batches consistently."""

from __future__ import annotations

import pytest
import torch
from ci2v_helpers import random_unet, small_config

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig

H, W = 8, 12


@pytest.fixture(scope="module")
def unet() -> ConsistI2VUNet:
    return random_unet()


def call(unet, batch=1, frames=15, first_shape=None, text_shape=None, timestep=981, frame_stride=3, size=(H, W)):
    g = torch.Generator().manual_seed(0)
    sample = torch.randn((batch, 4, frames, *size), generator=g)
    first = torch.randn(first_shape or (batch, 4, 1, *size), generator=g)
    text = torch.randn(text_shape or (batch, 77, 16), generator=g)
    with torch.no_grad():
        return unet(sample, timestep, text, first, frame_stride)


def test_output_has_the_noisy_frames_only(unet):
    assert call(unet, batch=2).shape == (2, 4, 15, H, W)


def test_odd_latent_sizes_round_trip(unet):
    assert call(unet, size=(7, 5)).shape == (1, 4, 15, 7, 5)


def test_sixteen_noisy_frames_are_rejected_with_the_expected_count(unet):
    with pytest.raises(ValueError, match=r"\(batch, 4, 15, h, w\).*n_frames=16"):
        call(unet, frames=16)


def test_first_frame_latents_must_match_the_sample_size(unet):
    with pytest.raises(ValueError, match="first_frame_latents must be"):
        call(unet, first_shape=(1, 4, 1, H, W + 2))


def test_text_must_be_one_embedding_per_video(unet):
    with pytest.raises(ValueError, match="one text embedding per video"):
        call(unet, batch=2, text_shape=(32, 77, 16))


def test_timestep_of_the_wrong_length_lists_the_allowed_forms(unet):
    with pytest.raises(ValueError, match=r"\(2,\).*\(32,\)"):
        call(unet, batch=2, timestep=torch.tensor([1, 2, 3]))


def test_frame_stride_is_required_by_a_stride_conditioned_unet(unet):
    with pytest.raises(ValueError, match="frame_stride is required"):
        call(unet, frame_stride=None)


def random_inputs(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 4, 15, H, W, generator=g)
    return sample, torch.randn(batch, 4, 1, H, W, generator=g), torch.randn(batch, 77, 16, generator=g)


def test_batch_rows_are_independent(unet):
    sample, first, text = random_inputs(2, seed=1)
    with torch.no_grad():
        both = unet(sample, torch.tensor([981, 21]), text, first, torch.tensor([3, 5]))
        second = unet(sample[1:], 21, text[1:], first[1:], 5)
    torch.testing.assert_close(both[1:], second, atol=1e-5, rtol=0)


def test_first_frame_conditions_every_output_frame(unet):
    sample, first, text = random_inputs(1, seed=2)
    with torch.no_grad():
        changed = (unet(sample, 500, text, first, 3) - unet(sample, 500, text, first * 1.5, 3)).abs()
    assert (changed.amax(dim=(0, 1, 3, 4)) > 0).all()


def test_alpha_gates_are_clamped_to_identity_range():
    gated = random_unet()
    with torch.no_grad():
        for name, param in gated.named_parameters():
            if name.endswith("alpha"):
                param.fill_(1.7)
        reference = random_unet()
        for name, param in reference.named_parameters():
            if name.endswith("alpha"):
                param.fill_(1.0)
    sample, first, text = random_inputs(1, seed=3)
    with torch.no_grad():
        expected = reference(sample, 10, text, first, 3)
        torch.testing.assert_close(gated(sample, 10, text, first, 3), expected, atol=0, rtol=0)
    assert gated.down_blocks[0].tempo_attns[0].alpha.item() == pytest.approx(1.7)  # not mutated


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(attention_head_dim=(2,)), "one head count per level"),
        (dict(first_frame_condition_mode="input_only"), "only 'concat'"),
        (dict(temp_pos_embedding="sinusoidal"), "only 'rotary'"),
        (dict(down_block_types=("DownBlock2D", "DownBlock2D")), "CrossAttnDownBlock2D"),
    ],
)
def test_unsupported_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        small_config(**overrides)


def test_from_json_ignores_unknown_keys_and_prefers_num_attention_heads():
    config = UNetConfig.from_json(
        {
            "block_out_channels": [32, 32],
            "attention_head_dim": 8,
            "num_attention_heads": [2, 4],
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
            "_class_name": "VideoLDMUNet3DConditionModel",
            "sample_size": None,
        }
    )
    assert config.attention_head_dim == (2, 4)
    assert config.sample_size == 64
    assert config.extra["_class_name"] == "VideoLDMUNet3DConditionModel"


@pytest.mark.parametrize("per_video_timesteps", [False, True])
def test_guidance_branches_sharing_their_input_equal_repeated_inputs(per_video_timesteps):
    """``branches=2`` runs the layers before the first text cross-attention once per video; the result is the
    one of repeating latents, first frame and timesteps for each branch (float64: no rounding to hide in)."""
    unet = random_unet().double()
    g = torch.Generator().manual_seed(4)
    sample, first = torch.randn((2, 4, 15, H, W), generator=g), torch.randn((2, 4, 1, H, W), generator=g)
    text = torch.randn((4, 77, 16), generator=g)
    sample, first, text = sample.double(), first.double(), text.double()
    t = torch.tensor([700, 30]) if per_video_timesteps else torch.tensor(700)
    with torch.no_grad():
        shared = unet(sample, t, text, first, 3, branches=2)
        repeated = unet(torch.cat([sample] * 2), torch.cat([t] * 2) if t.ndim else t, text, torch.cat([first] * 2), 3)
    assert shared.shape == (4, 4, 15, H, W)
    torch.testing.assert_close(shared, repeated, atol=1e-12, rtol=0)
    assert not torch.allclose(shared[:2], shared[2:])  # the branches' texts differ, and so do their outputs


def test_shared_branches_need_that_many_text_rows_per_video(unet):
    g = torch.Generator().manual_seed(0)
    sample, first = torch.randn((2, 4, 15, H, W), generator=g), torch.randn((2, 4, 1, H, W), generator=g)
    with pytest.raises(ValueError, match=r"2 text embeddings per video, \(4, tokens, 16\)"):
        unet(sample, 981, torch.randn(2, 77, 16), first, 3, branches=2)


def test_the_first_frame_window_is_differentiable_and_reads_frame_0_alone():
    from i2vbench.consisti2v.attention import VideoGeometry, first_frame_window

    geometry = VideoGeometry(16, 5, 3)
    with torch.inference_mode():  # a window made in inference mode leaves nothing behind for later calls
        first_frame_window(torch.randn(16, 15, 4), geometry)
    x = torch.randn(16, 15, 4, requires_grad=True)
    first_frame_window(x, geometry).sum().backward()
    assert x.grad[0].abs().sum() > 0 and x.grad[1:].abs().sum() == 0  # only frame 0 feeds the window


def test_attention_backends_can_be_chosen_for_the_unet_alone(monkeypatch):
    """``Attention.sdpa_backends`` reaches every SDPA call of the UNet (a backend the CPU lacks makes them fail)
    and changes nothing else (the math backend gives the default's output), eager and compiled."""
    from torch.nn.attention import SDPBackend

    from i2vbench.consisti2v.attention import Attention

    unet = random_unet()
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(1, 4, 15, 4, 4, generator=g), torch.tensor(981), torch.randn(1, 77, 16, generator=g),
            torch.randn(1, 4, 1, 4, 4, generator=g), 3)
    with torch.no_grad():
        default = unet(*args)
        monkeypatch.setattr(Attention, "sdpa_backends", (SDPBackend.MATH,))
        torch.testing.assert_close(unet(*args), default, rtol=1e-5, atol=1e-5)
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(unet, backend="aot_eager", dynamic=False, fullgraph=True)(*args), default,
                                   rtol=1e-5, atol=1e-5)
        monkeypatch.setattr(Attention, "sdpa_backends", (SDPBackend.CUDNN_ATTENTION,))
        with pytest.raises(RuntimeError, match="No viable backend"):
            unet(*args)
