"""The whole ConsistI2V generator: image + prompt -> video, around the UNet and sampler.

VAE (diffusers ``AutoencoderKL``), text encoder and tokenizer (transformers) are loaded from the released
diffusers layout (``unet/ vae/ text_encoder/ tokenizer/ scheduler/``). Everything a video depends on is
drawn from that video's own generator (VAE posterior sample first, then the initial noise, as in the
reference), so a batch gives the same videos as the same cases one at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torchvision.transforms.functional import center_crop, crop, resize

from . import folder
from .frameinit import FILTER_TYPES, FrameInitConfig
from .loading import load_unet
from .noise import NOISE_METHODS
from .sampling import SamplingConfig, sample_latents
from .scheduler import NUM_TRAIN_TIMESTEPS, DDIMScheduler
from .unet import ConsistI2VUNet

CAMERA_MOTIONS = (None, "pan_left", "pan_right", "zoom_in", "zoom_out")

@dataclass(frozen=True)
class VideoRequest:
    """Settings of one generate call (defaults: the released inference config)."""

    height: int = 256
    width: int = 256
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    negative_prompt: str = ""
    camera_motion: str | None = None
    #: number of 16-frame chunks; chunk k+1 starts from the last latent frame of chunk k
    autoregress_chunks: int = 1
    #: latent frames decoded per VAE call (bounds decoder memory)
    decode_chunk: int = 16


class ConsistI2VPipeline:
    """UNet + VAE + text encoder + tokenizer + DDIM, with batched, seeded generation."""

    def __init__(self, unet: ConsistI2VUNet, vae, text_encoder, tokenizer, scheduler: DDIMScheduler | None = None) -> None:
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.scheduler = scheduler or DDIMScheduler()
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 0.18215))

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype = torch.float16,
                        device: torch.device | str = "cuda") -> "ConsistI2VPipeline":
        """Load the released diffusers-layout folder (safetensors, or pickles read with weights_only)."""
        from diffusers import AutoencoderKL
        from transformers import CLIPTextModel, CLIPTokenizer

        path = Path(path)
        lacking = folder.problems(path)
        if lacking:
            raise FileNotFoundError(f"{path} is not a complete ConsistI2V folder: {'; '.join(lacking)}")
        unet = load_unet(path / "unet", dtype=dtype, device=device)
        # diffusers' fast loading needs accelerate, and without it prints a warning on every load
        vae = AutoencoderKL.from_pretrained(path / "vae", torch_dtype=dtype,
                                            low_cpu_mem_usage=find_spec("accelerate") is not None).to(device).eval()
        text_encoder = CLIPTextModel.from_pretrained(path / "text_encoder", torch_dtype=dtype).to(device).eval()
        tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
        return cls(unet, vae, text_encoder, tokenizer, scheduler_from_config(path / "scheduler"))

    def use_channels_last(self) -> "ConsistI2VPipeline":
        """NHWC weights and activations for UNet and VAE: the fast layout for GPU convolutions."""
        self.unet.to_channels_last()
        self.vae.to(memory_format=torch.channels_last)
        return self

    def compile(self, mode: str = "default") -> "ConsistI2VPipeline":
        """``torch.compile`` the UNet and the VAE decoder (fuses norms, activations and gates; the first
        calls compile), in the channels-last layout (measured on an H100: 4 % less GPU time per compiled
        UNet call). ``mode="reduce-overhead"`` also replays each call as a CUDA graph (no launch gaps
        between the UNet's 1600 kernels); the sampler and the decoder copy each output out before the next call."""
        if self.device.type == "cuda":
            self.use_channels_last()
        self.unet = torch.compile(self.unet, mode=mode, dynamic=False)
        self.vae.decoder = torch.compile(self.vae.decoder, mode=mode, dynamic=False)
        return self

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def latent_frames(self) -> int:
        return self.unet.config.n_frames

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """(b, 77, D) last hidden states (with the final LayerNorm), prompts padded/truncated to 77 tokens."""
        length = self.text_encoder.config.max_position_embeddings
        tokens = self.tokenizer(list(prompts), padding="max_length", max_length=length, truncation=True,
                                return_tensors="pt")
        return self.text_encoder(tokens.input_ids.to(self.device))[0]

    def preprocess(self, image: np.ndarray, height: int, width: int) -> torch.Tensor:
        """The reference's transform: ToTensor, Resize(short side = height), CenterCrop, to [-1, 1].

        The resize is bilinear without antialiasing: the reference resizes a float tensor with
        ``antialias=None``, which torchvision treats as no antialiasing for tensors.
        """
        x = center_crop(resize(_float_image(image), height, antialias=False), [height, width])
        return x * 2 - 1

    @torch.no_grad()
    def encode_frames(self, pixels: torch.Tensor, generators: Sequence[torch.Generator], chunk: int = 16) -> torch.Tensor:
        """VAE posterior samples of (b, F, 3, H, W) pixels in [-1, 1] -> (b, 4, F, h, w) scaled latents, encoding
        ``chunk`` frames per VAE call (a camera motion's 16 crops of a batch of 8 are 128 images)."""
        b, f = pixels.shape[:2]
        dists = [self.vae.encode(part.to(self.device, self.vae.dtype)).latent_dist for part in pixels.flatten(0, 1).split(chunk)]
        mean = torch.cat([d.mean.float() for d in dists]).unflatten(0, (b, f))
        std = torch.cat([d.std.float() for d in dists]).unflatten(0, (b, f))
        eps = torch.stack([torch.randn(mean.shape[1:], generator=g, device=g.device) for g in generators]).to(self.device)
        return ((mean + std * eps) * self.scaling_factor).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk: int = 16, seeds: Sequence[int] | None = None) -> np.ndarray:
        """(b, 4, F, h, w) latents -> uint8 (b, F, H, W, 3), decoding ``chunk`` frames per VAE call; NaN or
        infinite pixels (a half-precision overflow in the decoder) are refused, naming the videos' ``seeds``."""
        b = latents.shape[0]
        flat = latents.permute(0, 2, 1, 3, 4).flatten(0, 1) / self.scaling_factor
        # each chunk copied out: a decoder compiled with CUDA graphs overwrites its output on the next call
        pixels = torch.cat([self.vae.decode(part.to(self.vae.dtype)).sample.to(torch.float32, copy=True)
                            for part in flat.split(chunk)])
        names = [f"seed {s}" for s in seeds] if seeds is not None else [f"batch row {i}" for i in range(b)]
        check_finite(pixels.unflatten(0, (b, -1)), names, "decoded to NaN or infinite pixels", self.vae.dtype)
        # truncated, not rounded, as the reference's save_videos_grid does (``(x * 255).astype(np.uint8)``)
        pixels = ((pixels / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8)
        return pixels.unflatten(0, (b, -1)).permute(0, 1, 3, 4, 2).cpu().numpy()

    def generate(self, images: Sequence[np.ndarray], prompts: Sequence[str], seeds: Sequence[int],
                 request: VideoRequest = VideoRequest(),
                 callback: Callable[[int, int, torch.Tensor], None] | None = None) -> np.ndarray:
        """Videos (b, T, H, W, 3) uint8 for uint8 RGB ``images`` and ``prompts``; ``seeds[i]`` seeds video i.

        T = 16 for one chunk, 16k - (k - 1) for ``autoregress_chunks = k``.
        """
        check_request(request, self.latent_frames)
        if not (len(images) == len(prompts) == len(seeds)):
            raise ValueError(f"got {len(images)} images, {len(prompts)} prompts and {len(seeds)} seeds: give one each")
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        text = self.encode_prompts(prompts)
        uncond = self.encode_prompts([request.negative_prompt])
        if request.camera_motion:
            pixels = torch.stack([camera_frames(img, request.camera_motion, request.height, request.width,
                                                self.latent_frames) for img in images])
            layout = self.encode_frames(pixels, generators, request.decode_chunk)
            first = layout[:, :, :1]
        else:
            pixels = torch.stack([self.preprocess(img, request.height, request.width) for img in images])
            first, layout = self.encode_frames(pixels[:, None], generators), None
        chunks = []
        for _ in range(request.autoregress_chunks):
            latents = sample_latents(self.unet, first, text, uncond, config=request.sampling, generator=generators,
                                     scheduler=self.scheduler, callback=callback, layout_latents=layout)
            chunks.append(latents if not chunks else latents[:, :, 1:])
            first, layout = latents[:, :, -1:], None
        latents = torch.cat(chunks, dim=2)
        check_finite(latents, [f"seed {s}" for s in seeds], "sampled to NaN or infinite latents", self.unet.dtype)
        return self.decode(latents, request.decode_chunk, seeds)


def check_finite(values: torch.Tensor, names: Sequence[str], what: str, dtype: torch.dtype) -> None:
    """Refuse a batch (b, ...) holding NaN or infinite values rather than turn them into a garbage video;
    ``names[i]`` says which video row i is."""
    bad = (~torch.isfinite(values).flatten(1).all(dim=1)).nonzero().flatten().tolist()
    if bad:
        which = ", ".join(dict.fromkeys(names[i] for i in bad))
        advice = ("float16 can overflow in this network: try dtype bfloat16 or float32" if dtype == torch.float16
                  else "try dtype float32")
        raise FloatingPointError(f"the video(s) of {which} {what} ({advice})")


def check_request(request: VideoRequest, latent_frames: int) -> None:
    """Refuse settings the network cannot honour, saying what is allowed."""
    for name in ("height", "width"):
        value = getattr(request, name)
        if value % 8 or value < 64:
            raise ValueError(f"{name} must be a multiple of 8 and at least 64 (the VAE downsamples 8x); got {value}")
    if request.camera_motion not in CAMERA_MOTIONS:
        raise ValueError(f"unknown camera motion {request.camera_motion!r}; choose one of "
                         f"{', '.join(m for m in CAMERA_MOTIONS if m)} (or none)")
    if request.camera_motion and request.sampling.frameinit is None:
        raise ValueError("camera motion works through FrameInit: enable FrameInit to use it")
    if request.camera_motion in ("zoom_in", "zoom_out") and request.height != request.width:
        raise ValueError("zoom camera motions make square crops: use height == width")
    if request.autoregress_chunks < 1:
        raise ValueError(f"autoregress_chunks must be at least 1; got {request.autoregress_chunks}")
    if request.camera_motion and request.autoregress_chunks > 1:
        raise ValueError("camera motion guides one 16-frame chunk (the reference has no camera motion for "
                         "autoregressive videos, and later chunks would stand still): use 16 frames with it")
    sampling = request.sampling
    most = DDIMScheduler().max_inference_steps
    if not 1 <= sampling.num_inference_steps <= most:
        raise ValueError(f"steps must be from 1 to {most} (the released setting is 50); got "
                         f"{sampling.num_inference_steps}")
    if request.decode_chunk < 1:
        raise ValueError(f"decode_chunk (frames per VAE call) must be at least 1; got {request.decode_chunk}")
    if not sampling.frame_stride >= 1:
        raise ValueError(f"frame_stride must be at least 1 (the model was trained with strides 1 to 5; larger means "
                         f"more motion); got {sampling.frame_stride}")
    if sampling.noise_method not in NOISE_METHODS:
        raise ValueError(f"unknown noise_method {sampling.noise_method!r}; choose one of {', '.join(NOISE_METHODS)}")
    if sampling.frameinit is not None:
        check_frameinit(sampling.frameinit)


def check_frameinit(frameinit: FrameInitConfig) -> None:
    """Refuse FrameInit settings the sampler would misuse, naming the setting and what it takes."""
    level, timesteps = frameinit.noise_level, NUM_TRAIN_TIMESTEPS
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < timesteps:
        raise ValueError(f"frameinit_noise_level must be a whole timestep from 0 to {timesteps - 1} (the released "
                         f"setting is 850; higher keeps less of the first frame's layout); got {level!r}")
    if frameinit.filter_type not in FILTER_TYPES:
        raise ValueError(f"unknown frameinit_filter_type {frameinit.filter_type!r}; choose one of "
                         f"{', '.join(FILTER_TYPES)}")
    if not (frameinit.d_s > 0 and frameinit.d_t > 0):
        raise ValueError(f"frameinit_d_s and frameinit_d_t, the filter's spatial and temporal cut-offs (fractions of "
                         f"the frequency range; released 0.25), must be above 0; got {frameinit.d_s}, {frameinit.d_t}")
    if frameinit.filter_type == "box" and not (frameinit.d_s <= 1 and frameinit.d_t <= 1):
        raise ValueError(f"the box filter's frameinit_d_s and frameinit_d_t must be at most 1 (1 keeps every "
                         f"frequency); got {frameinit.d_s}, {frameinit.d_t}")
    if frameinit.butterworth_order < 1:
        raise ValueError(f"frameinit_butterworth_order must be at least 1 (released 4); got "
                         f"{frameinit.butterworth_order}")


def _float_image(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1], as torchvision's ToTensor."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def camera_frames(image: np.ndarray, motion: str, height: int, width: int, n: int) -> torch.Tensor:
    """The reference's synthetic camera video (n, 3, H, W) in [-1, 1] whose latents guide FrameInit.

    Pans: the image resized to short side ``height`` (no centre crop), ``width``-wide windows starting at
    ``int((W_img - width) * i / n)`` (pan_right) or ``int((W_img - width) * (1 - i / n))`` (pan_left); a
    window past the image's edge is zero-filled (grey), as torchvision's ``crop`` does in the reference,
    and a portrait image's windows are centre-cropped to ``height`` (the reference keeps their full height,
    which no latent of the requested size fits).
    Zooms: resized to short side ``2 * height``; square crops at ``((H - S) // 2, (W - S) // 2)`` whose side
    S goes from the short side to a 1.5 times smaller one (zoom_in) or back (zoom_out), each resized to
    ``width``. Crop sizes are integers (the reference's zoom_out passes a float and fails). Every resize is
    bilinear without antialiasing and the image is normalised before cropping, in the reference's order.
    """
    frames = []
    if motion.startswith("pan"):
        x = resize(_float_image(image), height, antialias=False) * 2 - 1
        span = x.shape[-1] - width
        for i in range(n):
            frac = i / n if motion == "pan_right" else 1 - i / n
            window = crop(x, 0, int(span * frac), x.shape[-2], width)
            frames.append(center_crop(window, [height, width]))
    else:
        x = resize(_float_image(image), 2 * height, antialias=False) * 2 - 1
        rows, cols = x.shape[-2:]
        side = min(rows, cols)
        small = int(side // 1.5)
        for i in range(n):
            shrink = int((side - small) * i / n)
            size = side - shrink if motion == "zoom_in" else small + shrink
            square = crop(x, (rows - size) // 2, (cols - size) // 2, size, size)
            frames.append(resize(square, [width, width], antialias=False))
    return torch.stack(frames)


def scheduler_from_config(folder: Path) -> DDIMScheduler:
    """DDIM from ``scheduler_config.json`` when present; the released defaults otherwise.

    The official scripts build the scheduler from their yaml (linear betas 0.00085..0.012, leading spacing,
    offset 1); a saved config that disagrees is reported rather than silently followed.
    """
    default = DDIMScheduler()
    file = folder / "scheduler_config.json"
    if not file.is_file():
        return default
    saved = json.loads(file.read_text())
    expected = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "linear", "steps_offset": 1,
                "timestep_spacing": "leading", "prediction_type": "epsilon", "clip_sample": False,
                "set_alpha_to_one": True, "rescale_betas_zero_snr": False}
    differs = {k: saved[k] for k, v in expected.items() if k in saved and saved[k] != v}
    if differs:
        import warnings

        warnings.warn(f"{file} differs from the official inference settings in {differs}; using the official ones")
    return default


def sampling_config(**settings) -> SamplingConfig:
    """A SamplingConfig from flat settings (``frameinit_*`` keys go to FrameInit; ``frameinit=False`` disables it)."""
    fi = {k.removeprefix("frameinit_"): v for k, v in settings.items() if k.startswith("frameinit_")}
    enabled = settings.pop("frameinit", True)
    plain = {k: v for k, v in settings.items() if not k.startswith("frameinit_")}
    frameinit = FrameInitConfig(**fi)
    if not enabled:  # unused, but recorded with the run: a value that could never run is refused all the same
        check_frameinit(frameinit)
    return replace(SamplingConfig(**plain), frameinit=frameinit if enabled else None)
