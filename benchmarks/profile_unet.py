"""Where a full-size ConsistI2V UNet call spends its GPU time: per-kernel totals and per-variant timings.

    python benchmarks/profile_unet.py --videos 4            # bf16, 2 CFG branches per video
    python benchmarks/profile_unet.py --videos 4 --compile default  # also time torch.compile modes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig  # noqa: E402


def inputs(unet: ConsistI2VUNet, rows: int, latent: int):
    cfg, kw = unet.config, {"device": unet.device, "dtype": unet.dtype}
    return (torch.randn(rows, 4, cfg.n_frames - 1, latent, latent, **kw), 981,
            torch.randn(rows, 77, cfg.cross_attention_dim, **kw), torch.randn(rows, 4, 1, latent, latent, **kw), 3)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--compile", default="", help="comma-separated torch.compile modes to time, e.g. default")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    with torch.device("cuda"):
        unet = ConsistI2VUNet(UNetConfig.consisti2v()).to(torch.bfloat16).eval()
    x = inputs(unet, 2 * args.videos, args.latent)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: {args.videos} videos x 2 branches, "
          f"latent {args.latent}x{args.latent}")
    print(f"eager bf16: {timed(unet, x) * 1e3:.1f} ms per call")

    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        unet(*x)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.top, max_name_column_width=70))

    if args.compile:
        for mode in args.compile.split(","):
            compiled = torch.compile(unet, mode=mode)
            start = time.perf_counter()
            with torch.no_grad():
                compiled(*x)
            torch.cuda.synchronize()
            print(f"compile {mode}: first call {time.perf_counter() - start:.0f} s, "
                  f"then {timed(compiled, x) * 1e3:.1f} ms per call")


if __name__ == "__main__":
    main()
