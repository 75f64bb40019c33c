"""Sampler behaviour: guidance branches in one batched call, per-video determinism, input checks."""

from __future__ import annotations

import pytest
import torch
from ci2v_helpers import random_unet, small_config
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from i2vbench.consisti2v import (
    DDIMScheduler,
    FrameInitConfig,
    SamplingConfig,
    initial_noise,
    low_pass_filter,
    kernels,
    sample_latents,
)
from i2vbench.consisti2v.frameinit import frameinit

H = W = 8


class RecordingUNet(nn.Module):
    """Stands in for the UNet: returns seeded random predictions and records every call."""

    def __init__(self) -> None:
        super().__init__()
        self.config = small_config()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.calls: list[dict[str, object]] = []
        self.rng = torch.Generator().manual_seed(5)

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def forward(self, sample, timestep, text, first, frame_stride, branches=1):
        out = torch.randn((branches * sample.shape[0], *sample.shape[1:]), generator=self.rng)
        self.calls.append(dict(sample=sample, text=text, first=first, t=timestep, stride=frame_stride, out=out,
                               branches=branches))
        return out


class RecordingScheduler(DDIMScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.eps: list[torch.Tensor] = []

    def step(self, eps, t, x, prev_t):
        self.eps.append(eps)
        return super().step(eps, t, x, prev_t)


def inputs(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn((batch, 4, 1, H, W), generator=g)
    return z1, torch.randn((batch, 77, 16), generator=g), torch.randn((batch, 77, 16), generator=g)


def test_text_and_image_guidance_runs_three_branches_in_one_call():
    unet, scheduler = RecordingUNet(), RecordingScheduler()
    z1, text, uncond = inputs(2)
    config = SamplingConfig(num_inference_steps=2, guidance_scale_txt=7.5, guidance_scale_img=2.0, frame_stride=4)
    generator = torch.Generator().manual_seed(1)
    sample_latents(unet, z1, text, uncond, config=config, generator=generator, scheduler=scheduler)

    assert len(unet.calls) == 2  # one UNet call per step
    noise = initial_noise((2, 4, 16, H, W), torch.Generator().manual_seed(1), "pyoco_mixed")
    mixed = frameinit(z1, noise, low_pass_filter(16, H, W), 850, DDIMScheduler())
    for call, eps in zip(unet.calls, scheduler.eps):
        assert call["stride"] == 4
        torch.testing.assert_close(call["first"], torch.cat([mixed[:, :, :1], z1, z1]))
        assert torch.equal(call["text"], torch.cat([uncond, uncond, text]))
        e_u, e_img, e_both = call["out"].chunk(3)
        torch.testing.assert_close(eps, e_u + 2.0 * (e_img - e_u) + 7.5 * (e_both - e_img))
    torch.testing.assert_close(unet.calls[0]["sample"], torch.cat([mixed[:, :, 1:]] * 3))
    assert unet.calls[0]["branches"] == 1  # the first frames differ: nothing to share
    assert [c["t"] for c in unet.calls] == [501, 1]


def test_text_guidance_runs_uncond_then_cond_with_the_clean_first_frame():
    unet, scheduler = RecordingUNet(), RecordingScheduler()
    z1, text, uncond = inputs(1)
    sample_latents(unet, z1, text, uncond, config=SamplingConfig(num_inference_steps=1), scheduler=scheduler)
    call = unet.calls[0]
    # the branches differ only in their text: latents and first frame go in once, the UNet shares them
    assert call["branches"] == 2 and call["sample"].shape[0] == 1
    assert torch.equal(call["first"], z1)
    assert torch.equal(call["text"], torch.cat([uncond, text]))
    e_u, e_c = call["out"].chunk(2)
    torch.testing.assert_close(scheduler.eps[0], e_u + 7.5 * (e_c - e_u))


def test_without_guidance_only_the_conditional_branch_runs():
    unet = RecordingUNet()
    z1, text, _ = inputs(1)
    config = SamplingConfig(num_inference_steps=1, guidance_scale_txt=1.0, frameinit=None, noise_method="vanilla")
    video = sample_latents(unet, z1, text, config=config, generator=torch.Generator().manual_seed(3))
    assert unet.calls[0]["sample"].shape[0] == 1
    noise = initial_noise((1, 4, 16, H, W), torch.Generator().manual_seed(3), "vanilla")
    assert torch.equal(unet.calls[0]["sample"], noise[:, :, 1:])
    assert video.shape == (1, 4, 16, H, W)


@pytest.mark.parametrize("guidance_scale_img", [1.0, 2.0])
def test_batch_with_per_video_generators_equals_single_video_runs(guidance_scale_img):
    unet = random_unet()
    z1, text, uncond = inputs(2, seed=9)
    config = SamplingConfig(
        num_inference_steps=2, guidance_scale_img=guidance_scale_img, frameinit=FrameInitConfig(noise_level=500)
    )
    batch = sample_latents(
        unet, z1, text, uncond, config=config, generator=[torch.Generator().manual_seed(s) for s in (11, 12)]
    )
    for i, seed in enumerate((11, 12)):
        single = sample_latents(
            unet, z1[i : i + 1], text[i : i + 1], uncond[i : i + 1], config=config,
            generator=torch.Generator().manual_seed(seed),
        )
        # float32 matrix products of different batch sizes round differently (1e-5 relative); mixed-up seeds
        # or rows would differ by O(1)
        torch.testing.assert_close(batch[i : i + 1], single, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(batch[0, :, 1:], batch[1, :, 1:])


def test_guidance_without_uncond_embeddings_is_rejected():
    z1, text, _ = inputs(1)
    with pytest.raises(ValueError, match="uncond_embeddings"):
        sample_latents(RecordingUNet(), z1, text, None, config=SamplingConfig(num_inference_steps=1))


def test_first_frame_latents_must_be_one_frame():
    z1, text, uncond = inputs(1)
    with pytest.raises(ValueError, match=r"\(batch, 4, 1, h, w\)"):
        sample_latents(RecordingUNet(), z1.expand(-1, -1, 2, -1, -1), text, uncond)


def test_text_batch_must_match_first_frames():
    z1, text, uncond = inputs(2)
    with pytest.raises(ValueError, match="one per video"):
        sample_latents(RecordingUNet(), z1, text[:1], uncond)


class HostDeviceTraffic(TorchDispatchMode):
    """Records the operations that move data between host memory and a device, or read a device value on the
    host: on a GPU each one blocks the host until every queued kernel has run."""

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        devices = {t.device.type for t in tensors}
        built_on_device = func is torch.ops.aten.lift_fresh.default and "cpu" not in devices
        crosses = func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default) and len(devices) > 1
        read_back = func is torch.ops.aten._local_scalar_dense.default and "cpu" not in devices
        if built_on_device or crosses or read_back:
            self.moves.append(f"{func} {sorted(devices)}")
        return out


def _traffic_per_step(unet, steps: int, generator=None) -> list[list[str]]:
    """The host-device moves of a sampling run, cut at each step's callback: the first part holds the set-up
    and step 0, part i the step i, the last part what follows the loop."""
    device = unet.device
    z1 = torch.randn((2, 4, 1, H, W), device=device)
    text = torch.randn((2, 77, unet.config.cross_attention_dim), device=device)
    config = SamplingConfig(num_inference_steps=steps, frameinit=None)
    with HostDeviceTraffic() as traffic:
        sample_latents(unet, z1, text, text[:1], config=config, generator=generator,
                       callback=lambda *_: traffic.moves.append("step done"))
    parts, part = [], []
    for move in traffic.moves:
        if move == "step done":
            parts.append(part)
            part = []
        else:
            part.append(move)
    return parts + [part]


def test_denoising_steps_move_nothing_between_host_and_device():
    """On the meta device every host-device copy shows up as an operation: the steps must make none, so that
    on a GPU the host queues the next UNet call while the last one runs instead of waiting for it."""
    unet = random_unet().to("meta")
    _traffic_per_step(unet, 1)  # caches made once per size
    two, five = _traffic_per_step(unet, 2), _traffic_per_step(unet, 5)
    assert all(part == [] for part in five[1:-1]), f"per-step host-device traffic: {five}"  # steps 1..4, the last
    assert two[0] == five[0], "the set-up and first step move more in a longer run"  # step 0 is like the others


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA's synchronisation check)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # bf16: through the fused temporal kernel
def test_denoising_on_cuda_never_waits_for_the_gpu(dtype):
    unet = random_unet().to("cuda", dtype)
    warm_up, timed = ([torch.Generator("cuda").manual_seed(i) for i in range(2)] for _ in range(2))
    _traffic_per_step(unet, 1, warm_up)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        moves = _traffic_per_step(unet, 3, timed)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert moves == [[]] * 4


@pytest.mark.skipif(not torch.backends.cuda.is_built() or kernels.triton is None,
                    reason="this torch has no CUDA support (or no Triton) to imitate a GPU with")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("guidance_scale_img", [1.0, 2.0])  # text CFG (shared first layers); text + image CFG
def test_the_gpu_path_runs_on_a_fake_cuda_device(dtype, guidance_scale_img, monkeypatch):
    """Fake tensors stand in for a GPU without one: every operation checks devices and dtypes as on CUDA, and
    reading a device value on the host fails. So a tensor left on the CPU, a dtype clash in half precision or a
    host read anywhere in sampling (FrameInit included) fails here instead of on a GPU; and the fused temporal
    kernel, which only half-precision CUDA tensors take, is the path taken for them (float32 takes SDPA's)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from i2vbench.consisti2v import ConsistI2VUNet, attention

    kernel, dtypes = attention.temporal_window_attention, []
    monkeypatch.setattr(attention, "temporal_window_attention",
                        lambda q, *args, **kwargs: dtypes.append(q.dtype) or kernel(q, *args, **kwargs))
    with FakeTensorMode():
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # made in half precision: a fake module cannot be converted afterwards
        try:
            with torch.device("cuda"):
                unet = ConsistI2VUNet(small_config()).eval()
        finally:
            torch.set_default_dtype(default)
        z1 = torch.randn((2, 4, 1, H, W), device="cuda")
        text = torch.randn((2, 77, 16), device="cuda", dtype=dtype)
        config = SamplingConfig(num_inference_steps=2, guidance_scale_img=guidance_scale_img)
        out = sample_latents(unet, z1, text, text[:1], config=config)
    assert (out.device.type, out.dtype, tuple(out.shape)) == ("cuda", torch.float32, (2, 4, 16, H, W))
    temporal_layers = sum(isinstance(m, attention.TemporalSelfAttention) for m in unet.modules())
    in_kernel = dtype in (torch.bfloat16, torch.float16)
    assert dtypes == [dtype] * (2 * temporal_layers) * in_kernel  # every temporal self-attention of both steps
