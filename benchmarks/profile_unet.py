"""Where a full-size ConsistI2V UNet call spends its GPU time: per-kernel totals and per-variant timings.

    python benchmarks/profile_unet.py --videos 4            # bf16, 2 CFG branches per video
    python benchmarks/profile_unet.py --videos 4 --compile default  # also time torch.compile modes
    python benchmarks/profile_unet.py --videos 8 --attention --temporal-conv --projections --sdpa-backends --skip-eager
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch
import torch.nn.attention

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


#: (channels, latent side) of the UNet's levels at 256x256 (the mid block's 4x4 included)
LAYER_SIZES = ((320, 32), (640, 16), (1280, 8), (1280, 4))
#: scaled-dot-product-attention backends that can be asked for by name
SDPA_BACKENDS = {name: getattr(torch.nn.attention.SDPBackend, member) for name, member in
                 (("flash", "FLASH_ATTENTION"), ("efficient", "EFFICIENT_ATTENTION"), ("cudnn", "CUDNN_ATTENTION"))}


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


#: inductor names a kernel after the operations it fuses: one made of these alone only moves data
_DATA_MOVEMENT_OPS = {"cat", "clone", "copy", "to", "permute", "transpose", "view", "unsafe", "expand", "index",
                      "stack", "constant", "pad", "nd", "slice", "select", "repeat", "interleave", "self", "int",
                      "gather", "unbind", "split", "with", "sizes", "squeeze", "unsqueeze", "t"}


def kernel_category(name: str) -> str:
    """The category of a GPU kernel by its name. Inductor's fused kernels (``triton_{poi,red,per}_fused_<ops>_N``)
    are judged by the operations in their names: a norm if one is among them, a layout copy if they only move
    data (so that a rotary or GEGLU kernel that also concatenates is not counted as a copy), else fused
    elementwise work."""
    lower = name.lower()
    if lower.startswith("triton_") and "_fused_" in lower:
        ops = set(filter(None, lower.split("_fused_", 1)[1].rstrip("0123456789").split("_")))
        if lower.startswith("triton_tem_"):  # max-autotune's templates: a convolution or matmul with its epilogue
            return "convolution" if "convolution" in ops else "matmul" if ops & {"mm", "addmm", "bmm", "baddbmm"} \
                else "fused (triton)"
        if any("norm" in op for op in ops):
            return "norm"
        return "layout copy" if ops and ops <= _DATA_MOVEMENT_OPS else "fused (triton)"
    return next((c for c, parts in _CATEGORIES if any(p in lower for p in parts)), "other elementwise")


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
        category = kernel_category(e.key)
        by_category[category] = by_category.get(category, 0.0) + e.self_device_time_total
    lines = [f"GPU kernel time {total / 1e3:.1f} ms in {sum(e.count for e in kernels)} launches"]
    lines += [f"  {c:<20}{t / 1e3:>9.1f} ms {t / total:>7.1%}" for c, t in sorted(by_category.items(), key=lambda kv: -kv[1])]
    lines.append("top kernels:")
    for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:top]:
        lines.append(f"  {e.self_device_time_total / 1e3:>8.2f} ms {e.count:>5}x  {e.key[:110]}")
    return "\n".join(lines)


def temporal_attention_timings(rows: int) -> None:
    """Temporal self-attention at the UNet's four sizes (8 heads): the fused kernel with rotary positions
    applied before it or inside it, at 2 and 4 warps, against the SDPA path; then the whole module compiled
    as the pipeline compiles it, rotating in a pass of its own or in the kernel."""
    from i2vbench.consisti2v.attention import TemporalSelfAttention, VideoGeometry

    bf16 = torch.bfloat16
    for channels, latent in LAYER_SIZES:
        with torch.device("cuda"):
            attn = TemporalSelfAttention(channels, 8).to(bf16).eval()
            x = torch.randn(rows, latent * latent, channels, dtype=bf16)
            q, k, v = (torch.randn(rows, latent * latent, channels, dtype=bf16) for _ in range(3))
        geometry = VideoGeometry(16, latent, latent)
        tables = attn.rotary_emb.pair_tables(16, channels, q.device)
        rows_frame = torch.arange(16, device="cuda").repeat(rows // 16)[:, None]
        q_rot, k_rot = (attn.rotary_emb.rotate(t, rows_frame) for t in (q, k))
        line = [f"temporal attention {channels} ch at {latent}x{latent}, {rows} frames:"]
        for warps in (2, 4):
            kernels.NUM_WARPS = warps
            pre = timed(lambda: kernels.temporal_window_attention(q_rot, k_rot, v, 16, latent, latent, 8), ())
            inside = timed(lambda: kernels.temporal_window_attention(q, k, v, 16, latent, latent, 8, tables), ())
            line.append(f"kernel {warps} warps: {pre * 1e3:.3f} ms on rotated q/k, {inside * 1e3:.3f} ms rotating;")
        kernels.NUM_WARPS = 2
        sdpa = timed(lambda: attn._attend_per_position(q_rot, k_rot, v, geometry), ())
        with torch.no_grad():
            a = kernels.temporal_window_attention(q_rot, k_rot, v, 16, latent, latent, 8).float()
            b = kernels.temporal_window_attention(q, k, v, 16, latent, latent, 8, tables).float()
            c = attn._attend_per_position(q_rot, k_rot, v, geometry).float()
        line.append(f"SDPA path {sdpa * 1e3:.3f} ms (relative difference to it: {((a - c).norm() / c.norm()).item():.1e}"
                    f" rotated before, {((b - c).norm() / c.norm()).item():.1e} rotating)")
        print(" ".join(line), flush=True)
        compiled = torch.compile(attn, dynamic=False)
        modules = []
        for inside in (False, True):
            attn.rotate_in_kernel = inside
            torch._dynamo.reset()
            modules.append(timed(compiled, (x, geometry)))
        print(f"  compiled module: rotary pass + kernel {modules[0] * 1e3:.3f} ms, rotary in kernel {modules[1] * 1e3:.3f} ms",
              flush=True)


def temporal_conv_timings(rows: int) -> None:
    """The temporal convolutions at the UNet's four sizes, channels-last bf16, in each of the forms
    :func:`~i2vbench.consisti2v.resnets.temporal_conv` can take (``TemporalResnetBlock.conv_form``), and the
    ``matmul`` form compiled too (its shifted sums then fuse into one pass, as in a compiled UNet)."""
    from i2vbench.consisti2v.resnets import TEMPORAL_CONV_FORMS, temporal_conv

    for channels, latent in LAYER_SIZES:
        with torch.device("cuda"):
            conv = torch.nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)).to(torch.bfloat16)
            x = torch.randn(rows, channels, latent, latent, dtype=torch.bfloat16).to(memory_format=torch.channels_last)
        conv.to(memory_format=torch.channels_last_3d)
        variants = {form: functools.partial(temporal_conv, conv, x, 16, form) for form in TEMPORAL_CONV_FORMS}
        variants["matmul, compiled"] = functools.partial(torch.compile(temporal_conv, dynamic=False), conv, x, 16, "matmul")
        flops = 2 * rows * latent * latent * channels * channels * 3
        line = [f"temporal conv {channels} ch at {latent}x{latent}, {rows} frames:"]
        with torch.no_grad():
            reference = variants["conv3d"]().float()
            for name, fn in variants.items():
                seconds = timed(fn, ())
                difference = (fn().float() - reference).abs().max().item()
                line.append(f"{name} {seconds * 1e3:.3f} ms ({flops / seconds / 1e12:.0f} TFLOP/s, largest difference "
                            f"{difference:.1e});")
        print(" ".join(line), flush=True)


def sdpa_backend_timings(rows: int) -> None:
    """The spatial attentions' SDPA calls at the UNet's four sizes (64-channel heads, bf16) under each backend:
    first-frame self-attention (every frame's tokens against its own and frame 0's, ``2*H*W`` keys) and text
    cross-attention (a video's 16 frames of queries against 77 text tokens)."""
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    for channels, latent in LAYER_SIZES:
        heads, tokens = channels // 64, latent * latent
        def heads_of(n: int, length: int) -> torch.Tensor:  # as the UNet passes them: (n, L, C) viewed per head
            return torch.randn(n, length, channels, dtype=torch.bfloat16).view(n, length, heads, 64).transpose(1, 2)

        with torch.device("cuda"):
            self_qkv = [heads_of(rows, n) for n in (tokens, 2 * tokens, 2 * tokens)]
            text_qkv = [heads_of(rows // 16, n) for n in (16 * tokens, 77, 77)]
        for what, (q, k, v) in (("first-frame self", self_qkv), ("text cross", text_qkv)):
            line, first = [f"{what}-attention {channels} ch at {latent}x{latent}, {rows} frames:"], None
            for name, backend in SDPA_BACKENDS.items():
                try:
                    with sdpa_kernel(backend):
                        seconds = timed(F.scaled_dot_product_attention, (q, k, v))
                        out = F.scaled_dot_product_attention(q, k, v).float()
                except RuntimeError as error:  # the backend does not take these inputs on this GPU
                    line.append(f"{name} unavailable ({str(error).splitlines()[0][:60]});")
                    continue
                first = out if first is None else first
                difference = ((out - first).norm() / first.norm()).item()
                line.append(f"{name} {seconds * 1e3:.3f} ms (relative difference {difference:.1e});")
            print(" ".join(line), flush=True)


def projection_timings(rows: int) -> None:
    """Self-attention projections at the UNet's four sizes, bf16: ``to_q``, ``to_k``, ``to_v`` as three matrix
    products (what the UNet runs) against one product with the three weights stacked, split afterwards."""
    import torch.nn.functional as F

    for channels, latent in LAYER_SIZES:
        with torch.device("cuda"):
            x = torch.randn(rows * latent * latent, channels, dtype=torch.bfloat16)
            weights = [torch.randn(channels, channels, dtype=torch.bfloat16) / channels**0.5 for _ in range(3)]
        stacked = torch.cat(weights)
        separate = timed(lambda: [F.linear(x, w) for w in weights], ())
        fused = timed(lambda: F.linear(x, stacked).split(channels, dim=-1), ())
        flops = 2 * x.shape[0] * channels * channels * 3
        print(f"q/k/v projections {channels} ch at {latent}x{latent}, {rows} frames: three {separate * 1e3:.3f} ms "
              f"({flops / separate / 1e12:.0f} TFLOP/s), stacked {fused * 1e3:.3f} ms ({flops / fused / 1e12:.0f} TFLOP/s)",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--compile", default="", help="comma-separated torch.compile modes to time, e.g. default")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--channels-last", action="store_true", help="NHWC weights and activations")
    parser.add_argument("--inductor", default="", help="inductor settings for the compiled calls, e.g. freezing=1")
    parser.add_argument("--skip-eager", action="store_true", help="time and profile only the compiled calls")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="let cuDNN time its convolution algorithms per shape (the choice may differ between runs)")
    parser.add_argument("--attention", action="store_true", help="first time the temporal self-attention alone")
    parser.add_argument("--temporal-conv", action="store_true", help="first time the temporal convolutions alone")
    parser.add_argument("--projections", action="store_true", help="first time the q/k/v projections alone")
    parser.add_argument("--sdpa-backends", action="store_true",
                        help="first time the spatial attentions' SDPA calls under each backend (flash, efficient, cudnn)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.exit(2, "profile_unet.py times CUDA kernels: it needs a CUDA GPU that this Python's torch can use\n")
    import torch._inductor.config as inductor_config

    for setting in filter(None, args.inductor.split(",")):
        key, value = setting.split("=")
        setattr(inductor_config, key, type(getattr(inductor_config, key))(int(value) if value.isdigit() else value))
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.attention:
        temporal_attention_timings(32 * args.videos)
    if args.temporal_conv:
        temporal_conv_timings(32 * args.videos)
    if args.projections:
        projection_timings(32 * args.videos)
    if args.sdpa_backends:
        sdpa_backend_timings(32 * args.videos)
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
