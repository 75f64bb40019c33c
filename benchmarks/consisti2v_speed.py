"""ConsistI2V generation speed and memory: the fast path against the plain fp32 eager path, in one run.

Builds the full-size network (random weights: speed does not depend on their values) with a full-size VAE
and text encoder, and times whole videos (prompt encoding, VAE encoding, FrameInit, 50 DDIM steps with
text CFG, VAE decoding) at several batch sizes. Prints seconds per video, videos per second, peak GPU memory
and model FLOP utilisation (UNet FLOPs counted with torch's FlopCounterMode over the peak dense rate).

    python benchmarks/consisti2v_speed.py                      # GPU: bf16 batch 1/4/8 vs fp32 batch 1
    python benchmarks/consisti2v_speed.py --compile-batches 8  # also the compiled UNet at batch 8
    python benchmarks/consisti2v_speed.py --batches 8 --reference-batch 0 --compile-batches 8 --compile-mode max-autotune
    python benchmarks/consisti2v_speed.py --tiny --device cpu  # the tiny config, for a CPU smoke run
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig  # noqa: E402
from i2vbench.consisti2v.pipeline import ConsistI2VPipeline, VideoRequest, sampling_config  # noqa: E402
from i2vbench.consisti2v.attention import Attention, TemporalSelfAttention  # noqa: E402
from i2vbench.consisti2v.resnets import TEMPORAL_CONV_FORMS, TemporalResnetBlock  # noqa: E402
from profile_unet import SDPA_BACKENDS, cfg_call, inputs, kernel_breakdown  # noqa: E402

#: dense peak rates (TFLOP/s) used for model FLOP utilisation
PEAK_TFLOPS = {"H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0, "tf32": 494.0},
               "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0, "tf32": 494.0}}
TINY = dict(block_out_channels=(32, 32, 32, 32), attention_head_dim=(2, 4, 8, 16), cross_attention_dim=32,
            norm_num_groups=16)


def build_pipeline(dtype: torch.dtype, device: str, tiny: bool) -> ConsistI2VPipeline:
    """The full network (or the tiny one) with random weights, VAE and text encoder of SD2.1-base size."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    config = UNetConfig(**TINY) if tiny else UNetConfig.consisti2v()
    with torch.device(device):
        unet = ConsistI2VUNet(config).to(dtype).eval()
        if tiny:
            vae = AutoencoderKL(block_out_channels=(16,) * 4, down_block_types=("DownEncoderBlock2D",) * 4,
                                up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8)
            text = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                num_attention_heads=4, vocab_size=49408))
        else:  # SD2.1-base VAE and the OpenCLIP ViT-H/14 text tower (23 layers) exported as CLIPTextModel
            vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                                up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=768)
            text = CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                                                num_attention_heads=16, projection_dim=1024, hidden_act="gelu"))
    # torch's own cast: diffusers' ModelMixin.to warns about casting a model made in code (no from_pretrained)
    vae, text = torch.nn.Module.to(vae, dtype).eval(), text.to(dtype).eval()
    return ConsistI2VPipeline(unet, vae, text, _tokenizer(CLIPTokenizer))


def _tokenizer(cls):
    """A byte-level vocabulary is enough to time tokenisation; no download needed."""
    import string

    tokens = ["!", "<|startoftext|>", "<|endoftext|>"] + list(string.ascii_lowercase) + [c + "</w>" for c in string.ascii_lowercase]
    return cls(vocab={t: i for i, t in enumerate(tokens)}, merges=[], pad_token="!", model_max_length=77)


def unet_flops(pipe: ConsistI2VPipeline, size: int) -> float:
    """FLOPs of one UNet call for one video with text CFG (two branches sharing their first layers)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        cfg_call(pipe.unet)(*inputs(pipe.unet, 1, size // 8))
    return float(counter.get_total_flops())


def choose_layout(pipe: ConsistI2VPipeline, layout: str, size: int, videos: int) -> None:
    """Apply the requested layout; ``auto`` times a UNet call (2 branches per video) in both layouts."""
    if layout == "auto":
        unet, args = cfg_call(pipe.unet), inputs(pipe.unet, videos, size // 8)
        timings = {}
        for name in ("contiguous", "channels_last"):
            if name == "channels_last":
                pipe.use_channels_last()
            with torch.no_grad():
                unet(*args)
                _sync(pipe.device)
                start = time.perf_counter()
                for _ in range(3):
                    unet(*args)
                _sync(pipe.device)
            timings[name] = (time.perf_counter() - start) / 3
        print("UNet call, " + ", ".join(f"{k}: {v * 1e3:.1f} ms" for k, v in timings.items()), flush=True)
        layout = min(timings, key=timings.get)
        if layout == "contiguous":
            pipe.unet.to(memory_format=torch.contiguous_format)
            pipe.vae.to(memory_format=torch.contiguous_format)
    elif layout == "channels_last":
        pipe.use_channels_last()
    print(f"fast path layout: {layout}", flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class StepTimeline:
    """A sampler callback that notes when the host queued each denoising step and, through a CUDA event behind
    it, when the GPU finished it: if the GPU finishes step i after the host queued step i+1, the host kept ahead
    and the GPU never waited for it between steps."""

    def __init__(self) -> None:
        self.start = torch.cuda.Event(enable_timing=True)
        self.start.record()
        self.host_start = time.perf_counter()
        self.steps: list[tuple[float, torch.cuda.Event]] = []

    def __call__(self, *_) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self.steps.append((time.perf_counter() - self.host_start, event))

    def summary(self) -> str:
        """Call after synchronising."""
        host = [h for h, _ in self.steps]
        gpu = [self.start.elapsed_time(e) / 1e3 for _, e in self.steps]
        ahead = sum(g > h_next for g, h_next in zip(gpu, host[1:]))
        return (f"the host queued the last of {len(host)} steps at {host[-1]:.2f} s, the GPU finished it at "
                f"{gpu[-1]:.2f} s; the host was ahead of the GPU after {ahead} of {len(host) - 1} steps")


def time_videos(pipe: ConsistI2VPipeline, batch: int, request: VideoRequest, repeats: int) -> tuple[float, float]:
    """(seconds per batch, peak GiB) for ``batch`` videos, after one warm-up batch.

    On a GPU, also prints how far the host kept ahead of the GPU through the last repeat's steps
    (:class:`StepTimeline`)."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (request.height, request.width, 3), dtype=np.uint8) for _ in range(batch)]
    prompts = ["a dog runs across a meadow"] * batch
    cuda = pipe.device.type == "cuda"
    pipe.generate(images, prompts, list(range(batch)), request)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for r in range(repeats):
        timeline = StepTimeline() if cuda else None
        pipe.generate(images, prompts, [r * batch + i for i in range(batch)], request, callback=timeline)
    if cuda:
        torch.cuda.synchronize()
        print(f"  batch {batch}: {timeline.summary()}", flush=True)
    seconds = (time.perf_counter() - start) / repeats
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return seconds, peak


def time_decode(pipe: ConsistI2VPipeline, videos: int, size: int) -> float:
    """Seconds per video to decode 16 latent frames (the VAE part of a video), after one warm-up call."""
    latents = torch.randn(videos, 4, pipe.latent_frames, size // 8, size // 8, device=pipe.device)
    pipe.decode(latents)
    _sync(pipe.device)
    start = time.perf_counter()
    pipe.decode(latents)
    _sync(pipe.device)
    return (time.perf_counter() - start) / videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda",
                        help="cuda (default), or cpu with --tiny: the full-size network takes hours on a CPU")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--batches", default="1,4,8", help="batch sizes of the fast path")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reference-batch", type=int, default=1, help="batch of the fp32 eager path (0: skip it)")
    parser.add_argument("--compile-batches", default="",
                        help="batch sizes to time again with the UNet torch.compile-d (each size compiles once)")
    parser.add_argument("--compile-mode", default="default",
                        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                        help="torch.compile mode of the compiled rows (reduce-overhead adds CUDA graphs)")
    parser.add_argument("--profile", action="store_true",
                        help="after the timings, print where one UNet call of the last fast path spends its GPU time")
    parser.add_argument("--tiny", action="store_true", help="tiny UNet/VAE/text encoder (CPU smoke run)")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="let cuDNN time its convolution algorithms per shape (the choice may differ between runs)")
    parser.add_argument("--rotary-in-kernel", action="store_true",
                        help="temporal self-attention applies its rotary positions inside the fused kernel")
    parser.add_argument("--temporal-conv", default="conv3d", choices=TEMPORAL_CONV_FORMS,
                        help="how the temporal (3,1,1) convolutions run (TemporalResnetBlock.conv_form); the same function")
    parser.add_argument("--sdpa-backend", choices=["flash", "efficient", "cudnn"],
                        help="the only scaled-dot-product-attention backend the fast path's UNet may use (default: PyTorch's choice)")
    parser.add_argument("--layout", default="auto", choices=["auto", "contiguous", "channels_last"],
                        help="activation layout of the fast path; auto times one UNet call in each and keeps the faster")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, "this benchmark needs a CUDA GPU that this Python's torch can use (none is visible); for a "
                       "smoke run on the CPU: --tiny --device cpu\n")
    if not args.device.startswith("cuda") and not args.tiny:
        parser.exit(2, f"the full-size network on {args.device} would take hours: add --tiny for a smoke run\n")

    request = VideoRequest(height=args.size, width=args.size, sampling=sampling_config(num_inference_steps=args.steps))
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    gpu_kind = next((k for k in PEAK_TFLOPS if k in device_name), None)
    print(f"device: {device_name}; torch {torch.__version__}; {args.size}x{args.size}, 16 frames, "
          f"{args.steps} DDIM steps, text CFG 7.5 (2 branches), FrameInit on; {'tiny' if args.tiny else 'full-size'} network; "
          f"temporal rotary {'inside' if args.rotary_in_kernel else 'before'} the fused kernel; "
          f"cuDNN benchmark mode {'on' if args.cudnn_benchmark else 'off'} for the fast path; "
          f"attention backend {args.sdpa_backend or 'default'}; temporal convolutions as {args.temporal_conv}")

    if args.rotary_in_kernel:
        TemporalSelfAttention.rotate_in_kernel = True
    rows = []
    if args.reference_batch:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        ref = build_pipeline(torch.float32, args.device, args.tiny)
        flops = unet_flops(ref, args.size) * args.steps
        sec, peak = time_videos(ref, args.reference_batch, request, 1)
        rows.append(("fp32 eager (reference)", args.reference_batch, sec, peak, flops, "fp32"))
        print(f"fp32 eager batch {args.reference_batch}: {sec / args.reference_batch:.3f} s/video", flush=True)
        del ref
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.sdpa_backend:  # the UNet's attention layers only (the VAE's and text encoder's may need others)
        Attention.sdpa_backends = (SDPA_BACKENDS[args.sdpa_backend],)
    dtype = getattr(torch, args.dtype)
    TemporalResnetBlock.conv_form = args.temporal_conv  # from here on: the fp32 timing above used conv3d
    fast = build_pipeline(dtype, args.device, args.tiny)
    choose_layout(fast, args.layout, args.size, max(int(b) for b in (args.batches or "1").split(",") if b))
    flops = unet_flops(fast, args.size) * args.steps
    for batch in [int(b) for b in args.batches.split(",") if b]:
        sec, peak = time_videos(fast, batch, request, args.repeats)
        rows.append((f"{args.dtype} eager", batch, sec, peak, flops, "bf16"))
        print(f"eager batch {batch}: {sec / batch:.3f} s/video", flush=True)
    decode_videos = max(int(b) for b in (args.batches or "1").split(",") if b)
    print(f"VAE decoding, eager: {time_decode(fast, decode_videos, args.size):.3f} s/video", flush=True)
    if args.compile_batches:
        check_batch = int(args.compile_batches.split(",")[0])
        check_inputs = inputs(fast.unet, check_batch, args.size // 8)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # a true fp32 reference
        with torch.no_grad():
            exact = cfg_call(copy.deepcopy(fast.unet).float())(*check_inputs)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with torch.no_grad():
            eager_out = cfg_call(fast.unet)(*check_inputs).float()
        fast.compile(args.compile_mode)
        with torch.no_grad():
            compiled_out = cfg_call(fast.unet)(*check_inputs).float()
        errors = [((out - exact).norm() / exact.norm()).item() for out in (eager_out, compiled_out)]
        print(f"one UNet call ({check_batch} videos) against the same weights in fp32: relative error "
              f"{errors[0]:.1e} eager, {errors[1]:.1e} compiled", flush=True)
        del exact, eager_out, compiled_out
        print(f"VAE decoding, compiled: {time_decode(fast, decode_videos, args.size):.3f} s/video", flush=True)
        label = "compiled" if args.compile_mode == "default" else args.compile_mode
        for batch in [int(b) for b in args.compile_batches.split(",")]:
            sec, peak = time_videos(fast, batch, request, args.repeats)
            rows.append((f"{args.dtype} {label}", batch, sec, peak, flops, "bf16"))
            print(f"compiled batch {batch}: {sec / batch:.3f} s/video", flush=True)

    if args.profile and args.device.startswith("cuda"):
        videos = max(int(b) for b in (args.compile_batches or args.batches).split(",") if b)
        print(f"one UNet call, {videos} videos x 2 branches:")
        print(kernel_breakdown(cfg_call(fast.unet), inputs(fast.unet, videos, args.size // 8), top=40), flush=True)
    print(f"UNet FLOPs per video ({args.steps} steps x 2 branches): {flops / 1e12:.1f} TFLOP")
    print(f"{'path':<24}{'batch':>6}{'s/video':>10}{'videos/s':>10}{'peak GiB':>10}{'UNet MFU':>10}")
    base = rows[0][2] / rows[0][1] if rows and args.reference_batch else None
    for label, batch, sec, peak, fl, kind in rows:
        per_video = sec / batch
        peak_rate = PEAK_TFLOPS.get(gpu_kind, {}).get(kind) if gpu_kind else None
        mfu = f"{fl / per_video / (peak_rate * 1e12):.1%}" if peak_rate else "n/a"
        print(f"{label:<24}{batch:>6}{per_video:>10.3f}{1 / per_video:>10.2f}{peak:>10.2f}{mfu:>10}")
    if base:
        best = min(r[2] / r[1] for r in rows[1:]) if len(rows) > 1 else base
        print(f"speed-up of the best fast path over fp32 eager: {base / best:.1f}x")


if __name__ == "__main__":
    main()
