"""The fused temporal self-attention kernel computes the same function as the SDPA path.

On CPUs the kernel runs in Triton's interpreter (float16: the interpreter's bfloat16 matrix product is
not usable); on a CUDA machine the bfloat16 kernel itself is compared as well.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from i2vbench.consisti2v import kernels
from i2vbench.consisti2v.attention import TemporalSelfAttention, VideoGeometry

ROOT = Path(__file__).resolve().parents[2]

#: (channels, heads, height, width, videos): head dims 4 and 20 are padded inside the kernel; 5x7 = 35
#: positions takes one position per program, 4x6 four
CASES = [(32, 8, 5, 7, 2), (40, 2, 4, 6, 1)]

_COMPARE = """
import sys, torch
from i2vbench.consisti2v import kernels
from i2vbench.consisti2v.attention import TemporalSelfAttention, VideoGeometry
torch.manual_seed(int(sys.argv[1]))
for c, heads, h, w, b in {cases}:
    attn = TemporalSelfAttention(c, heads)
    geometry = VideoGeometry(16, h, w)
    frame_of_row = torch.arange(16).repeat(b)[:, None]
    rot = lambda t: attn.rotary_emb.rotate(t, frame_of_row)
    q, k, v = (torch.randn(b * 16, h * w, c) for _ in range(3))
    with torch.no_grad():
        ref = attn._attend_per_position(rot(q.double()), rot(k.double()), v.double(), geometry)
        half = [t.half() for t in (q, k, v)]
        assert kernels.fused_available(half[0], 16)
        out = kernels.temporal_window_attention(rot(half[0]), rot(half[1]), half[2], 16, h, w, heads).double()
        sdpa = attn._attend_per_position(rot(half[0]), rot(half[1]), half[2], geometry).double()
        x = torch.randn(b * 16, h * w, c)
        module_ref = attn.double()(x.double(), geometry)
        module_fused = attn.half()(x.half(), geometry).double()
    fused_err = ((out - ref).norm() / ref.norm()).item()
    sdpa_err = ((sdpa - ref).norm() / ref.norm()).item()
    module_err = ((module_fused - module_ref).norm() / module_ref.norm()).item()
    print(c, heads, h, w, fused_err, sdpa_err, module_err)
    assert torch.isfinite(out).all() and torch.isfinite(module_fused).all()
    assert fused_err < 2e-3 and fused_err < 3 * sdpa_err, (fused_err, sdpa_err)
    assert module_err < 5e-3, module_err
"""


def test_fused_kernel_matches_sdpa_path_in_triton_interpreter():
    if kernels.triton is None:
        pytest.skip("Triton is not installed (a CPU-only torch): the fused kernel cannot run at all")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", _COMPARE.format(cases=CASES), "3"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) == len(CASES)


def test_fused_path_is_only_taken_in_half_precision_on_gpu():
    assert not kernels.fused_available(torch.zeros(2, 3, 8, dtype=torch.float32), 16)
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        assert not kernels.fused_available(torch.zeros(2, 3, 8, dtype=torch.bfloat16), 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the bfloat16 kernel itself)")
@pytest.mark.parametrize("channels,latent", [(320, 32), (640, 16), (1280, 8)])
def test_fused_kernel_bf16_on_cuda(channels, latent):
    torch.manual_seed(channels)
    attn = TemporalSelfAttention(channels, 8).cuda()
    geometry = VideoGeometry(16, latent, latent)
    frame_of_row = torch.arange(16, device="cuda").repeat(2)[:, None]

    def rot(t):
        return attn.rotary_emb.rotate(t, frame_of_row)

    q, k, v = (torch.randn(2 * 16, latent * latent, channels, device="cuda") for _ in range(3))
    with torch.no_grad():
        ref = attn._attend_per_position(rot(q.double()), rot(k.double()), v.double(), geometry)
        bf16 = [t.bfloat16() for t in (q, k, v)]
        out = kernels.temporal_window_attention(rot(bf16[0]), rot(bf16[1]), bf16[2], 16, latent, latent, 8).double()
        sdpa = attn._attend_per_position(rot(bf16[0]), rot(bf16[1]), bf16[2], geometry).double()
    fused_err = ((out - ref).norm() / ref.norm()).item()
    sdpa_err = ((sdpa - ref).norm() / ref.norm()).item()
    assert torch.isfinite(out).all()
    assert fused_err < 1e-2 and fused_err < 3 * sdpa_err, (fused_err, sdpa_err)
    # the whole module (projections, rotary, fused attention) against its float32 self
    x = torch.randn(2 * 16, latent * latent, channels, device="cuda")
    with torch.no_grad():
        full = attn(x, geometry).double()
        fast = attn.bfloat16()(x.bfloat16(), geometry).double()
    assert ((fast - full).norm() / full.norm()).item() < 2e-2
