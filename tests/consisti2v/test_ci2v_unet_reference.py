"""The UNet reproduces the reference ConsistI2V UNet (golden fixtures from the official code)."""

from __future__ import annotations

import json

import pytest
import torch
from ci2v_helpers import FIXTURES, MISSING_FIXTURES, fixture

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig
from i2vbench.consisti2v.attention import VideoGeometry, first_frame_window

if not FIXTURES.is_dir():
    pytest.skip(MISSING_FIXTURES, allow_module_level=True)

UNET_ATOL = 5e-5
HOOK_ATOL = 2e-5


@pytest.fixture(scope="module")
def case() -> dict[str, torch.Tensor]:
    return fixture("unet_tiny_case.safetensors")


@pytest.fixture(scope="module")
def batch2() -> dict[str, torch.Tensor]:
    return fixture("unet_batch2.safetensors")


def run(unet: ConsistI2VUNet, inputs: dict[str, torch.Tensor], timestep, frame_stride) -> torch.Tensor:
    with torch.no_grad():
        return unet(
            inputs["sample"], timestep, inputs["encoder_hidden_states"], inputs["first_frame_latents"], frame_stride
        )


@pytest.mark.parametrize("timestep, output", [(981, "output_case0"), (21, "output_case1")])
def test_output_matches_reference(tiny_unet, case, timestep, output):
    got = run(tiny_unet, case, torch.tensor(timestep), 3)
    assert got.shape == case[output].shape
    torch.testing.assert_close(got, case[output], atol=UNET_ATOL, rtol=0)


def test_float64_output_matches_reference(tiny_unet, case):
    unet = ConsistI2VUNet(tiny_unet.config).double().eval()
    unet.load_state_dict(tiny_unet.state_dict())
    inputs = {k: v.double() for k, v in case.items() if k in ("sample", "encoder_hidden_states", "first_frame_latents")}
    torch.testing.assert_close(run(unet, inputs, 981, 3), case["output_case0_f64"], atol=1e-5, rtol=0)


def test_intermediate_tensors_match_reference(tiny_unet, case):
    """Embeddings, level-2 spatial/temporal layers and the mid block, captured with module hooks."""
    modules = dict(tiny_unet.named_modules())
    names = sorted({key[len("hook."):].rsplit(":", 1)[0] for key in case if key.startswith("hook.")})
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        module = modules[name]
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name: captured.__setitem__(f"{n}:input", a[0])))
        handles.append(module.register_forward_hook(lambda m, a, o, n=name: captured.__setitem__(f"{n}:output", o)))
    try:
        run(tiny_unet, case, 981, 3)
    finally:
        for handle in handles:
            handle.remove()
    compared = 0
    for key, expected in case.items():
        if not key.startswith("hook.") or key.endswith(":adjacent_slices"):
            continue
        torch.testing.assert_close(captured[key[len("hook."):]], expected, atol=HOOK_ATOL, rtol=0, msg=key)
        compared += 1
    assert compared == 14


def test_first_frame_window_matches_reference_adjacent_slices(case):
    """The temporal window: replicate-padded 3x3 neighbourhood of frame 0, centre dropped, row-major."""
    prefix = "hook.down_blocks.2.tempo_attns.0.transformer_blocks.0.attn1"
    window = first_frame_window(case[f"{prefix}:input"], VideoGeometry(16, 4, 6))
    expected = case[f"{prefix}:adjacent_slices"]  # (b, C, h, w, 8)
    torch.testing.assert_close(window.view(1, 4, 6, 8, 32).permute(0, 4, 1, 2, 3), expected, atol=HOOK_ATOL, rtol=0)


def test_timestep_and_stride_forms_are_equivalent(tiny_unet, case):
    """int, 0-dim, per-video (b,) and per-frame (b*16,) timesteps / strides embed identically."""
    reference = run(tiny_unet, case, 981, 3)
    for timestep, stride in [
        (torch.tensor(981), torch.tensor(3)),
        (torch.tensor([981]), torch.tensor([3])),
        (torch.full((16,), 981), torch.full((16,), 3)),
    ]:
        torch.testing.assert_close(run(tiny_unet, case, timestep, stride), reference, atol=0, rtol=0)


def test_batch2_shared_scalar_timestep_matches_reference(tiny_unet, batch2):
    got = run(tiny_unet, batch2, batch2["caseA_timestep"], int(batch2["caseA_frame_stride"]))
    torch.testing.assert_close(got, batch2["caseA_output"], atol=UNET_ATOL, rtol=0)


def test_batch2_per_frame_timesteps_match_reference(tiny_unet, batch2):
    got = run(tiny_unet, batch2, batch2["caseB_timestep"], batch2["caseB_frame_stride"])
    torch.testing.assert_close(got, batch2["caseB_output"], atol=UNET_ATOL, rtol=0)


def test_batch2_per_video_timesteps_work_where_the_reference_fails(tiny_unet, batch2):
    got = run(tiny_unet, batch2, torch.tensor([981, 21]), torch.tensor([3, 5]))
    torch.testing.assert_close(got, batch2["caseB_output"], atol=UNET_ATOL, rtol=0)


def test_full_size_module_tree_has_the_released_keys_and_shapes():
    released = json.loads((FIXTURES / "real_unet_state_dict_shapes.json").read_text())
    with torch.device("meta"):
        unet = ConsistI2VUNet(UNetConfig.consisti2v())
    shapes = {key: list(value.shape) for key, value in unet.state_dict().items()}
    assert set(shapes) == set(released["shapes"])
    assert shapes == released["shapes"]
    assert len(shapes) == released["n_tensors"] == 1397
    assert sum(v.numel() for v in unet.state_dict().values()) == released["n_params"]


def test_config_json_round_trip_matches_released_kwargs(tiny_config):
    released = json.loads((FIXTURES / "real_unet_state_dict_shapes.json").read_text())["config_explicit_kwargs"]
    full = UNetConfig.consisti2v()
    for key, value in released.items():
        expected = tuple(value) if isinstance(value, list) else value
        assert getattr(full, key) == expected, key
    assert tiny_config.attention_head_dim == (2, 4, 8, 16)
    assert tiny_config.norm_num_groups == 16
    assert "addition_embed_type" in tiny_config.extra


def test_channels_last_layout_matches_reference(tiny_unet, case):
    """The fast GPU layout (NHWC activations and weights) computes the same function."""
    fast = ConsistI2VUNet(tiny_unet.config).eval()
    fast.load_state_dict(tiny_unet.state_dict())
    fast.to_channels_last()
    assert fast.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    got = run(fast, case, torch.tensor(981), 3)
    torch.testing.assert_close(got, case["output_case0"], atol=UNET_ATOL, rtol=0)
