"""The ConsistI2V denoising loop: initial noise, FrameInit, DDIM with batched classifier-free guidance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .frameinit import FrameInitConfig, frameinit, low_pass_filter
from .noise import Generators, initial_noise
from .scheduler import DDIMScheduler
from .unet import ConsistI2VUNet

StepCallback = Callable[[int, int, torch.Tensor], None]


@dataclass(frozen=True)
class SamplingConfig:
    """Sampler settings; defaults are the released inference config.

    Guidance: ``guidance_scale_img > 1`` selects text+image CFG (3 branches), else
    ``guidance_scale_txt > 1`` selects text CFG (2 branches), else a single conditional branch.
    ``frameinit=None`` starts from the plain noise.
    """

    num_inference_steps: int = 50
    guidance_scale_txt: float = 7.5
    guidance_scale_img: float = 1.0
    frame_stride: int = 3
    noise_method: str = "pyoco_mixed"
    noise_alpha: float = 1.0
    frameinit: FrameInitConfig | None = field(default_factory=FrameInitConfig)

    @property
    def guidance_mode(self) -> str:
        """``"both"`` (text + image CFG), ``"text"`` or ``"none"``, as the reference decides it."""
        if self.guidance_scale_img > 1.0:
            return "both"
        return "text" if self.guidance_scale_txt > 1.0 else "none"


@torch.no_grad()
def sample_latents(
    unet: ConsistI2VUNet,
    first_frame_latents: torch.Tensor,
    text_embeddings: torch.Tensor,
    uncond_embeddings: torch.Tensor | None = None,
    *,
    config: SamplingConfig = SamplingConfig(),
    generator: Generators = None,
    scheduler: DDIMScheduler | None = None,
    callback: StepCallback | None = None,
    layout_latents: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoise a video from its clean first-frame latent ``z1`` (b, C, 1, h, w).

    ``layout_latents`` (b, C, F, h, w): the video whose low frequencies FrameInit keeps (camera motion);
    by default the static video of ``z1`` repeated.

    ``text_embeddings`` / ``uncond_embeddings``: (b, L, D) prompt and empty-prompt embeddings (a
    single uncond row is shared by the batch). ``generator``: see :func:`initial_noise`.
    ``callback(step_index, t, latents)`` runs after every step. Returns float32 latents
    (b, C, F, h, w) = ``cat(z1, denoised F-1 frames)``. All guidance branches share one UNet call.
    """
    scheduler = scheduler or DDIMScheduler()
    b, c, h, w = _check(unet, first_frame_latents, text_embeddings)
    mode = config.guidance_mode
    device = unet.device
    z1 = first_frame_latents.to(device=device, dtype=torch.float32)
    text = text_embeddings.to(device)
    if mode != "none":
        if uncond_embeddings is None:
            raise ValueError(f"guidance mode {mode!r} needs uncond_embeddings (the empty-prompt embedding)")
        uncond = uncond_embeddings.to(device)
        if uncond.ndim == 3 and uncond.shape[0] == 1:
            uncond = uncond.expand(b, -1, -1)
        if uncond.shape != text.shape:
            raise ValueError(
                f"uncond_embeddings {tuple(uncond_embeddings.shape)} must match text_embeddings {tuple(text.shape)}"
            )

    noise = initial_noise(
        (b, c, unet.config.n_frames, h, w), generator, config.noise_method, config.noise_alpha, device
    )
    if config.frameinit is not None:
        fi = config.frameinit
        lpf = low_pass_filter(
            unet.config.n_frames, h, w, fi.filter_type, fi.d_s, fi.d_t, fi.butterworth_order, device
        )
        layout = z1 if layout_latents is None else layout_latents.to(device=device, dtype=torch.float32)
        noise = frameinit(layout, noise, lpf, fi.noise_level, scheduler)
    noisy_first, latents = noise[:, :, :1], noise[:, :, 1:]

    if mode == "both":  # the branches' first frames differ: each branch runs the whole network
        first_in = torch.cat([noisy_first, z1, z1])
        text_in = torch.cat([uncond, uncond, text])
        branches, shared = 3, 1
    elif mode == "text":  # the branches differ in their text alone: the layers before it run once
        first_in, text_in = z1, torch.cat([uncond, text])
        branches, shared = 2, 2
    else:
        first_in, text_in = z1, text
        branches, shared = 1, 1
    repeats = branches // shared

    steps = config.num_inference_steps
    for i, t in enumerate(scheduler.timesteps(steps)):
        # a tensor timestep: a compiled UNet would otherwise specialise (and recompile) on every value; filled
        # on the device (torch.tensor would copy from the host and wait for the GPU to finish the last step)
        timestep = torch.full((), t, dtype=torch.int64, device=device)
        torch.compiler.cudagraph_mark_step_begin()  # a UNet compiled with CUDA graphs may reuse its buffers now
        eps = unet(torch.cat([latents] * repeats), timestep, text_in, first_in, config.frame_stride,
                   branches=shared).to(torch.float32, copy=True)  # a copy: CUDA-graph outputs are overwritten
        eps = _guide(eps.chunk(branches), config)
        latents = scheduler.step(eps, t, latents, scheduler.previous_timestep(t, steps))
        if callback is not None:
            callback(i, t, latents)
    return torch.cat([z1, latents], dim=2)


def _guide(branches: tuple[torch.Tensor, ...], config: SamplingConfig) -> torch.Tensor:
    """Combine the branch predictions: text CFG, or ``e_u + s_img(e_img - e_u) + s_txt(e_both - e_img)``."""
    if len(branches) == 1:
        return branches[0]
    if len(branches) == 2:
        uncond, cond = branches
        return uncond + config.guidance_scale_txt * (cond - uncond)
    uncond, image, both = branches
    return uncond + config.guidance_scale_img * (image - uncond) + config.guidance_scale_txt * (both - image)


def _check(unet: ConsistI2VUNet, first_frame_latents: torch.Tensor, text_embeddings: torch.Tensor) -> tuple[int, ...]:
    channels = unet.config.in_channels
    if first_frame_latents.ndim != 5 or first_frame_latents.shape[1:3] != (channels, 1):
        raise ValueError(
            f"first_frame_latents must be (batch, {channels}, 1, h, w), the clean latent of the first frame; "
            f"got {tuple(first_frame_latents.shape)}"
        )
    b, c, _, h, w = first_frame_latents.shape
    if text_embeddings.ndim != 3 or text_embeddings.shape[0] != b:
        raise ValueError(
            f"text_embeddings must be (batch={b}, tokens, dim), one per video; got {tuple(text_embeddings.shape)}"
        )
    return b, c, h, w
