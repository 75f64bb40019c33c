"""The ConsistI2V adapter: the released checkpoint through i2vbench's own implementation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from ..devices import resolve_device
from ..errors import ConfigError, I2VBenchError
from ..suite import Case
from ..video import Video
from .base import Adapter

DTYPES = ("float16", "bfloat16", "float32")
#: ``--set compile=`` values: torch.compile modes (``true`` is ``default``; ``reduce-overhead`` adds CUDA graphs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
FRAMES_PER_CHUNK = 16


def chunks_for(num_frames: int) -> int:
    """Autoregressive chunks needed for ``num_frames`` (each chunk adds 15 frames to the first 16)."""
    if num_frames < FRAMES_PER_CHUNK or (num_frames - 1) % (FRAMES_PER_CHUNK - 1):
        raise ConfigError(
            f"ConsistI2V makes 16 frames per chunk and chains chunks on their last frame: num_frames must be "
            f"16, 31, 46, ... (16k - k + 1); got {num_frames}"
        )
    return (num_frames - 1) // (FRAMES_PER_CHUNK - 1)


def compile_mode(value: Any) -> str | None:
    """The torch.compile mode of a ``compile`` setting: false/null for none, true for ``default``, or a mode."""
    if value is None or value is False:
        return None
    if value is True:
        return "default"
    if value in COMPILE_MODES:
        return value
    raise ConfigError(f"compile must be true, false or a torch.compile mode ({', '.join(COMPILE_MODES)}); "
                      f"got {value!r}")


class ConsistI2VAdapter(Adapter):
    """ConsistI2V (Ren et al., TMLR 2024) with the released weights (``TIGER-Lab/ConsistI2V``).

    Settings mirror the official inference config; ``weights`` points at a local copy of the diffusers
    folder (default: the Hugging Face cache, filled by ``i2vbench weights fetch consisti2v``).
    """

    name = "consisti2v"
    description = "ConsistI2V (TMLR 2024): first-frame attention, FrameInit; 256x256, 16 frames"
    requirements = "GPU, ~8 GB"
    default_batch_size = 8  # 7.4 GiB peak in bf16 on an H100; 7 % faster per video than 4
    runtime_settings = ("device", "weights", "decode_chunk", "compile")
    path_settings = ("weights",)
    untyped_settings = ("compile",)  # true, false or a torch.compile mode (checked by compile_mode)
    defaults: dict[str, Any] = {
        "steps": 50,
        "guidance_scale_txt": 7.5,
        "guidance_scale_img": 1.0,
        "frame_stride": 3,
        "negative_prompt": "",
        "noise_method": "pyoco_mixed",
        "noise_alpha": 1.0,
        "frameinit": True,
        "frameinit_noise_level": 850,
        "frameinit_filter_type": "gaussian",
        "frameinit_d_s": 0.25,
        "frameinit_d_t": 0.25,
        "frameinit_butterworth_order": 4,
        "camera_motion": None,
        "dtype": "float16",
        "device": "auto",
        "weights": None,
        "decode_chunk": 16,
        "compile": False,
    }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        try:  # said before the run folder is made, not as a failed model load after it
            import diffusers  # noqa: F401  (the VAE)
        except ImportError as exc:
            raise ConfigError(f"consisti2v needs diffusers, which cannot be imported here ({exc}): install it with "
                              "pip install -e \".[consisti2v]\" (or pip install \"diffusers>=0.27\")") from exc
        s = self.settings
        if s["dtype"] not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {s['dtype']!r}")
        self.compile_mode = compile_mode(s["compile"])
        self.request = self._request()
        self.device, self.weights_dir = self._device_and_weights()
        self.pipeline = None
        self.compiled_batch = 0

    def _request(self):
        from ..consisti2v.pipeline import VideoRequest, check_request, sampling_config

        s = self.settings
        try:
            sampling = sampling_config(
                num_inference_steps=s["steps"], guidance_scale_txt=s["guidance_scale_txt"],
                guidance_scale_img=s["guidance_scale_img"], frame_stride=s["frame_stride"],
                noise_method=s["noise_method"], noise_alpha=s["noise_alpha"], frameinit=s["frameinit"],
                **{k: v for k, v in s.items() if k.startswith("frameinit_")},
            )
            request = VideoRequest(height=s["height"], width=s["width"], sampling=sampling,
                                   negative_prompt=s["negative_prompt"] or "", camera_motion=s["camera_motion"],
                                   autoregress_chunks=chunks_for(s["num_frames"]), decode_chunk=s["decode_chunk"])
            check_request(request, FRAMES_PER_CHUNK)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"consisti2v: {exc}") from exc
        return request

    def _device_and_weights(self) -> tuple[str, Path]:
        """The device and the weights folder, both checked before anything is written or loaded; when both are
        wanting, one error says so (a login node without a GPU or weights should not take two tries)."""
        problems, device, folder = [], "cpu", Path()
        try:
            device = resolve_device(self.settings["device"], instead="--set device=cpu")
            if device == "cpu" and self.settings["device"] == "auto":
                raise ConfigError("consisti2v: no CUDA GPU is visible, and the 1.25B-parameter UNet takes hours per "
                                  "video on a CPU. Run on a GPU machine, or pass --set device=cpu to go ahead anyway")
        except ConfigError as exc:
            problems.append(exc)
        try:
            folder = self._weights_dir()
        except I2VBenchError as exc:
            problems.append(exc)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise ConfigError(f"{problems[0]}\nAnd: {problems[1]}")
        return device, folder

    def _weights_dir(self) -> Path:
        from .. import weights
        from ..consisti2v import folder

        if not self.settings["weights"]:
            return weights.locate("consisti2v")
        path = Path(self.settings["weights"]).expanduser()
        lacking = folder.problems(path)
        if lacking:
            raise ConfigError(f"weights {path}: not a complete copy of the ConsistI2V repository (its unet/ vae/ "
                              f"text_encoder/ tokenizer/ folders, as 'i2vbench weights fetch consisti2v' downloads "
                              f"them): {'; '.join(lacking)}")
        return path

    def weights_identity(self) -> dict[str, str]:
        """The SHA-256 of the UNet weights (of each shard, in order, for a sharded checkpoint): what a ConsistI2V
        checkpoint is (the VAE and the text encoder are Stable Diffusion 2.1's, and stay frozen in training)."""
        from .. import weights
        from ..consisti2v import folder

        file = folder.weights_file(self.weights_dir / "unet")
        try:
            digests = [weights.file_digest(shard) for shard in folder.shard_files(file)]
        except OSError as exc:
            raise ConfigError(f"weights {self.weights_dir}: the UNet weights cannot be read ({exc})") from exc
        return {"unet_sha256": digests[0] if len(digests) == 1 else ",".join(digests)}

    def load(self):
        """Load the pipeline once (weights to the device, optional torch.compile of the UNet)."""
        if self.pipeline is None:
            import torch

            from ..consisti2v.pipeline import ConsistI2VPipeline

            dtype = getattr(torch, self.settings["dtype"])
            self.pipeline = ConsistI2VPipeline.from_pretrained(self.weights_dir, dtype=dtype, device=self.device)
            if self.compile_mode:
                self.pipeline.compile(self.compile_mode)
        return self.pipeline

    def generate(self, cases: Sequence[Case], *, seeds: Sequence[int]) -> list[Video]:
        pipeline = self.load()
        images, prompts, seeds = [c.load_image() for c in cases], [c.prompt for c in cases], list(seeds)
        if self.compile_mode:
            # A compiled UNet is specialised to its batch size, and compiling takes minutes: a smaller batch (the
            # last one of a run, or a retried case) is padded with copies of its last case, which are dropped.
            if len(cases) > self.compiled_batch:
                from tqdm.auto import tqdm

                tqdm.write(f"consisti2v: compiling the UNet and VAE decoder ({self.compile_mode}) for batches of "
                           f"{len(cases)}; this batch takes minutes longer than the next", file=sys.stderr)
            self.compiled_batch = max(self.compiled_batch, len(cases))
            pad = self.compiled_batch - len(cases)
            images, prompts, seeds = images + images[-1:] * pad, prompts + prompts[-1:] * pad, seeds + seeds[-1:] * pad
        videos = pipeline.generate(images, prompts, seeds, self.request)[: len(cases)]
        return [Video(v, self.settings["fps"]) for v in videos]

    def close(self) -> None:
        self.pipeline = None
