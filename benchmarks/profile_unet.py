"""Where a full-size ConsistI2V UNet call spends its GPU time: per-kernel totals and per-variant timings.

    python benchmarks/profile_unet.py --videos 4            # bf16, 2 CFG branches per video
    python benchmarks/profile_unet.py --videos 4 --compile default  # also time torch.compile modes
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig, kernels  # noqa: E402


def inputs(unet: ConsistI2VUNet, videos: int, latent: int):
    """UNet arguments for ``videos`` videos with text CFG, as the sampler passes them (float32 latents, a 0-dim
    tensor timestep, one latent row and two text rows per video), so that a UNet compiled by the pipeline is
    not traced again. Call them through :func:`cfg_call`."""
    cfg, device = unet.config, unet.device
    return (torch.randn(videos, 4, cfg.n_frames - 1, latent, latent, device=device), torch.tensor(981, device=device),
            torch.randn(2 * videos, 77, cfg.cross_attention_dim, device=device, dtype=unet.dtype),
            torch.randn(videos, 4, 1, latent, latent, device=device), 3)


def cfg_call(unet):
    """The UNet called as the sampler calls it for text CFG: two branches sharing latents and first frame."""
    return functools.partial(unet, branches=2)


def timed(fn, args, repeats: int = 5) -> float:
    with torch.no_grad():
        for _ in range(2):
            fn(*args)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn(*args)
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


#: kernel-name fragments -> category, first match wins (cuBLAS/cuDNN/flash names vary by version)
_CATEGORIES = (
    ("attention", ("flash", "fmha", "attention", "sdpa", "cudnn_generated_fort_native_sdpa")),
    ("convolution", ("conv", "fprop", "implicit_gemm", "xmma_fprop", "dgrad", "winograd")),
    ("matmul", ("gemm", "nvjet", "cutlass", "matmul", "xmma", "sm90_")),
    ("layout copy", ("transpose", "copy", "nchwtonhwc", "nhwctonchw", "cat", "permute", "unfold")),
    ("norm", ("norm",)),
    ("fused (triton)", ("triton",)),
)


def kernel_breakdown(fn, args, top: int = 15) -> str:
    """GPU time of one call of ``fn(*args)`` by kernel category, then the ``top`` kernels by total time."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn(*args)
        torch.cuda.synchronize()
    kernels = [e for e in prof.key_averages() if e.device_type.name == "CUDA" and e.self_device_time_total > 0]
    total = sum(e.self_device_time_total for e in kernels) or 1.0
    by_category: dict[str, float] = {}
    for e in kernels:
        name = e.key.lower()
        category = next((c for c, parts in _CATEGORIES if any(p in name for p in parts)), "other elementwise")
        by_category[category] = by_category.get(category, 0.0) + e.self_device_time_total
    lines = [f"GPU kernel time {total / 1e3:.1f} ms in {sum(e.count for e in kernels)} launches"]
    lines += [f"  {c:<20}{t / 1e3:>9.1f} ms {t / total:>7.1%}" for c, t in sorted(by_category.items(), key=lambda kv: -kv[1])]
    lines.append("top kernels:")
    for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:top]:
        lines.append(f"  {e.self_device_time_total / 1e3:>8.2f} ms {e.count:>5}x  {e.key[:110]}")
    return "\n".join(lines)


def temporal_attention_timings(rows: int) -> None:
    """Temporal self-attention modules of the three widths: fused kernel against the SDPA path."""
    from i2vbench.consisti2v.attention import TemporalSelfAttention, VideoGeometry

    for channels, latent in ((320, 32), (640, 16), (1280, 8), (1280, 4)):
        with torch.device("cuda"):
            attn = TemporalSelfAttention(channels, 8).to(torch.bfloat16).eval()
            x = torch.randn(rows, latent * latent, channels, dtype=torch.bfloat16)
        geometry = VideoGeometry(16, latent, latent)
        q, k, v = (torch.randn(rows, latent * latent, channels, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        fused = timed(lambda: kernels.temporal_window_attention(q, k, v, 16, latent, latent, 8), ())
        sdpa = timed(lambda: attn._attend_per_position(q, k, v, geometry), ())
        with torch.no_grad():
            a = kernels.temporal_window_attention(q, k, v, 16, latent, latent, 8).float()
            b = attn._attend_per_position(q, k, v, geometry).float()
        module = timed(attn, (x, geometry))
        print(f"temporal attention {channels} ch at {latent}x{latent}, {rows} frames: fused {fused * 1e3:.2f} ms, "
              f"SDPA path {sdpa * 1e3:.2f} ms (relative difference {((a - b).norm() / b.norm()).item():.1e}); "
              f"whole module {module * 1e3:.2f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--compile", default="", help="comma-separated torch.compile modes to time, e.g. default")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--channels-last", action="store_true", help="NHWC weights and activations")
    parser.add_argument("--inductor", default="", help="inductor settings for the compiled calls, e.g. freezing=1")
    parser.add_argument("--skip-eager", action="store_true", help="time and profile only the compiled calls")
    parser.add_argument("--attention", action="store_true", help="first time the temporal self-attention alone")
    args = parser.parse_args()
    import torch._inductor.config as inductor_config

    for setting in filter(None, args.inductor.split(",")):
        key, value = setting.split("=")
        setattr(inductor_config, key, type(getattr(inductor_config, key))(int(value) if value.isdigit() else value))
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    if args.attention:
        temporal_attention_timings(32 * args.videos)
    with torch.device("cuda"):
        unet = ConsistI2VUNet(UNetConfig.consisti2v()).to(torch.bfloat16).eval()
    if args.channels_last:
        unet.to_channels_last()
    x = inputs(unet, args.videos, args.latent)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: {args.videos} videos x 2 branches, "
          f"latent {args.latent}x{args.latent}, {'channels-last' if args.channels_last else 'contiguous'}, "
          f"inductor: {args.inductor or 'defaults'}", flush=True)
    if not args.skip_eager:
        print(f"eager bf16: {timed(cfg_call(unet), x) * 1e3:.1f} ms per call")
        print(kernel_breakdown(cfg_call(unet), x, args.top), flush=True)

    if args.compile:
        for mode in args.compile.split(","):
            compiled = cfg_call(torch.compile(unet, mode=mode))
            start = time.perf_counter()
            with torch.no_grad():
                compiled(*x)
            torch.cuda.synchronize()
            print(f"compile {mode}: first call {time.perf_counter() - start:.0f} s, "
                  f"then {timed(compiled, x) * 1e3:.1f} ms per call", flush=True)
            print(kernel_breakdown(compiled, x, args.top), flush=True)


if __name__ == "__main__":
    main()
