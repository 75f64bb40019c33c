"""Metric throughput: batched, shared-feature evaluation against a one-video, one-frame-at-a-time path.

Every learned network runs at its full architecture with random weights (speed does not depend on the
values), on synthetic 16x256x256 videos held in memory (decoding is not timed). For each metric, and for
all of them together, it prints videos per second at batch 1 and batch 16, next to the reference path that
VBench's scripts follow: one video per call, one frame per network call, no features shared between metrics.

    python benchmarks/metrics_speed.py                 # GPU if there is one
    python benchmarks/metrics_speed.py --videos 4 --device cpu --batches 1,4
    python benchmarks/metrics_speed.py --precision fp32  # the reference numerics everywhere
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2vbench.metrics import (  # noqa: E402  # noqa: E402
    EvalItem,
    FeatureCache,
    Metric,
    backbones,
    dynamic_degree,
    get_metric,
    motion_smoothness,
    object_consistency,
    raft,
)
from i2vbench.suite import Case  # noqa: E402
from i2vbench.video import Video  # noqa: E402

#: metrics that run here with random weights; object/scene consistency need their processors' vocabulary
#: files and imaging quality needs pyiqa, so they are timed only where their weights are cached
RANDOM_WEIGHT_METRICS = ("temporal_flickering", "frame0_fidelity", "subject_consistency", "background_consistency",
                         "i2v_subject", "i2v_background_clip", "aesthetic_quality", "clip_score", "dynamic_degree",
                         "motion_smoothness", "overall_consistency")


def random_networks() -> None:
    """Make every backbone loader build its network with random weights instead of reading the cache."""
    from torchvision.models.optical_flow import raft_large

    from i2vbench.metrics.amt import AMTS

    backbones.LOADERS.update({
        "dino_vitb16": lambda device: backbones.build_dino_vitb16(),
        "clip_vit_b32": lambda device: backbones.build_clip("ViT-B-32"),
        "clip_vit_l14": lambda device: backbones.build_clip("ViT-L-14"),
        "laion_aesthetic_l14": lambda device: backbones.build_aesthetic_head(),
    })
    dynamic_degree.load_raft = lambda device: raft_large(weights=None, progress=False).eval().to(device)
    motion_smoothness.load_amt = lambda device: AMTS().eval().to(device)


def make_metric(name: str, device: str, precision: str) -> Metric:
    metric = get_metric(name)(device=device, precision=precision)
    metric.unavailable_reason = lambda: None  # random weights stand in for the cached ones
    if name == "overall_consistency":
        from i2vbench.metrics.overall_consistency import VICLIP_CONFIG
        from i2vbench.metrics.viclip import ViCLIP

        metric._network = ViCLIP(VICLIP_CONFIG).eval().requires_grad_(False).to(device)
    return metric


def synthetic_items(n: int, folder: Path, frames: int = 16, size: int = 256) -> list[EvalItem]:
    """Videos of a textured image drifting to the right, with its first frame as the input image."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        base = rng.integers(0, 256, (size, size + frames * 4, 3)).astype(np.float32)
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3
        video = np.stack([base[:, 4 * t : 4 * t + size] for t in range(frames)]).astype(np.uint8)
        path = folder / f"ref{i}.png"
        Image.fromarray(video[0]).save(path)
        case = Case(id=f"v{i}", image=path, prompt="a textured wall slides to the right", category="test",
                    object="wall", scene="room")
        items.append(EvalItem(case, Video(video, 8.0)))
    return items


@contextmanager
def one_frame_at_a_time() -> Iterator[None]:
    """The reference path: every network sees one frame (or one frame pair) per call."""
    saved = dict(backbones.CHUNK), raft.MAX_CHUNK_PIXELS, dict(object_consistency.FRAME_CHUNK)
    backbones.CHUNK.update({"cuda": 1, "cpu": 1})
    raft.MAX_CHUNK_PIXELS = 1
    object_consistency.FRAME_CHUNK.update({"cuda": 1, "cpu": 1})
    try:
        yield
    finally:
        backbones.CHUNK.update(saved[0])
        raft.MAX_CHUNK_PIXELS = saved[1]
        object_consistency.FRAME_CHUNK.update(saved[2])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def throughput(metrics: list[Metric], items: list[EvalItem], batch: int, shared: bool, device: str) -> float:
    """Videos per second scoring ``items`` in batches, one FeatureCache per batch (shared by all metrics)
    or one per metric and batch (nothing shared)."""
    for metric in metrics:  # warm-up: load networks, pick kernels
        metric.run(items[:1], FeatureCache())
    _sync(device)
    start = time.perf_counter()
    for s in range(0, len(items), batch):
        chunk, cache = items[s : s + batch], FeatureCache()
        for metric in metrics:
            results = metric.run(chunk, cache if shared else FeatureCache())
            errors = [r.error for r in results if r.error]
            if errors:
                raise RuntimeError(f"{metric.name}: {errors[0]}")
    _sync(device)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--videos", type=int, default=32, help="videos per measurement")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="as 'i2vbench evaluate'")
    parser.add_argument("--metrics", default=",".join(RANDOM_WEIGHT_METRICS))
    parser.add_argument("--reference-videos", type=int, default=0,
                        help="videos for the one-frame-at-a-time path (default: --videos)")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    random_networks()
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="metrics_speed_"))
    items = synthetic_items(args.videos, folder)
    ref_items = items[: args.reference_videos or args.videos]
    names = [n for n in args.metrics.split(",") if n]
    metrics = {n: make_metric(n, args.device, args.precision) for n in names}
    batches = [int(b) for b in args.batches.split(",")]
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device: {name}; torch {torch.__version__}; {len(items)} videos of 16x256x256; random weights")

    print("bf16 metrics: " + (", ".join(n for n, m in metrics.items() if m.precision == "bf16") or "none"))
    header = f"{'metric':<24}" + "".join(f"{f'batch {b} v/s':>15}" for b in batches) + f"{'1-by-1 v/s':>13}{'speed-up':>10}"
    print(header)
    rows = [(n, [metrics[n]]) for n in names] + [("all (shared features)", list(metrics.values()))]
    for label, group in rows:
        shared = len(group) > 1
        rates = [throughput(group, items, b, shared, args.device) for b in batches]
        with one_frame_at_a_time():
            reference = throughput(group, ref_items, 1, False, args.device)
        print(f"{label:<24}" + "".join(f"{r:>15.2f}" for r in rates) + f"{reference:>13.2f}{max(rates) / reference:>9.1f}x",
              flush=True)
    print(f"all metrics: {1 / max(rates):.3f} s per video amortised at the best batch (target on one H100: 0.1 s)")


if __name__ == "__main__":
    main()
