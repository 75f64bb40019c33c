"""The fused temporal self-attention kernel computes the same function as the SDPA path, with the rotary
positions applied before it or inside it.

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

#: (channels, heads, height, width, videos): head dims 4, 20 and 16 are padded inside the kernel; 5x7 = 35
#: positions takes one position per program, 4x6 four; with 3 heads of 16 the rotated channels (the first
#: C/2 = 24) end inside head 1
CASES = [(32, 8, 5, 7, 2), (40, 2, 4, 6, 1), (48, 3, 3, 3, 1)]

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
        tables = attn.rotary_emb.pair_tables(16, c, q.device)
        inside = kernels.temporal_window_attention(*half, 16, h, w, heads, tables).double()
        sdpa = attn._attend_per_position(rot(half[0]), rot(half[1]), half[2], geometry).double()
        x = torch.randn(b * 16, h * w, c)
        module_ref = attn.double()(x.double(), geometry)
        module_fused = attn.half()(x.half(), geometry).double()
        attn.rotate_in_kernel = True
        module_inside = attn(x.half(), geometry).double()
    err = lambda a, b: ((a - b).norm() / b.norm()).item()
    fused_err, inside_err, sdpa_err = err(out, ref), err(inside, ref), err(sdpa, ref)
    module_err, module_inside_err = err(module_fused, module_ref), err(module_inside, module_ref)
    print(c, heads, h, w, fused_err, inside_err, sdpa_err, module_err, module_inside_err)
    assert torch.isfinite(out).all() and torch.isfinite(inside).all() and torch.isfinite(module_inside).all()
    for e in (fused_err, inside_err):
        assert e < 2e-3 and e < 3 * sdpa_err, (fused_err, inside_err, sdpa_err)
    assert module_err < 5e-3 and module_inside_err < 5e-3, (module_err, module_inside_err)
"""


def test_fused_kernel_matches_sdpa_path_in_triton_interpreter():
    if kernels.triton is None:
        pytest.skip("Triton is not installed (a CPU-only torch): the fused kernel cannot run at all")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", _COMPARE.format(cases=CASES), "3"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) == len(CASES)


def test_pair_tables_rotate_as_the_rotary_embedding_does():
    rotary = TemporalSelfAttention(48, 3).rotary_emb.double()
    t = torch.randn(16, 5, 48, dtype=torch.float64)
    cos, sin = (a.double() for a in rotary.pair_tables(16, 48, t.device))
    even, odd = t[..., 0::2], t[..., 1::2]
    rotated = torch.stack([even * cos[:, None] - odd * sin[:, None], odd * cos[:, None] + even * sin[:, None]], -1)
    expected = rotary.rotate(t, torch.arange(16)[:, None])
    torch.testing.assert_close(rotated.flatten(-2), expected, rtol=0, atol=1e-6)  # tables are float32
    assert (cos[:, 12:] == 1).all() and (sin[:, 12:] == 0).all()  # the second half of the channels: unrotated


def test_rotary_inside_the_kernel_needs_pairs_within_heads_and_fitting_tables():
    if kernels.triton is None:
        pytest.skip("Triton is not installed (a CPU-only torch)")
    q = torch.zeros(16, 9, 6)
    with pytest.raises(ValueError, match="straddle heads of 3 channels"):
        kernels.temporal_window_attention(q, q, q, 16, 3, 3, 2, (torch.ones(16, 3), torch.zeros(16, 3)))
    q = torch.zeros(16, 9, 8)
    with pytest.raises(ValueError, match=r"rotary tables must be \(16, 4\)"):
        kernels.temporal_window_attention(q, q, q, 16, 3, 3, 2, (torch.ones(15, 4), torch.zeros(15, 4)))


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
        tables = attn.rotary_emb.pair_tables(16, channels, q.device)
        inside = kernels.temporal_window_attention(*bf16, 16, latent, latent, 8, tables).double()
        sdpa = attn._attend_per_position(rot(bf16[0]), rot(bf16[1]), bf16[2], geometry).double()
    fused_err, inside_err, sdpa_err = (((a - ref).norm() / ref.norm()).item() for a in (out, inside, sdpa))
    assert torch.isfinite(out).all() and torch.isfinite(inside).all()
    for e in (fused_err, inside_err):
        assert e < 1e-2 and e < 3 * sdpa_err, (fused_err, inside_err, sdpa_err)
    # the whole module (projections, rotary, fused attention) against its float32 self
    x = torch.randn(2 * 16, latent * latent, channels, device="cuda")
    with torch.no_grad():
        full = attn(x, geometry).double()
        fast = attn.bfloat16()(x.bfloat16(), geometry).double()
        attn.rotate_in_kernel = True
        fast_inside = attn(x.bfloat16(), geometry).double()
    assert ((fast - full).norm() / full.norm()).item() < 2e-2
    assert ((fast_inside - full).norm() / full.norm()).item() < 2e-2


def test_the_kernel_launches_on_the_device_of_its_tensors(monkeypatch):
    """Triton launches on the current CUDA device; a model on cuda:1 must make that its tensors' device first."""
    if kernels.triton is None:
        pytest.skip("Triton is not installed (a CPU-only torch)")
    from torch._subclasses.fake_tensor import FakeTensorMode

    current = ["cuda:0"]
    launched_on: list[str] = []

    class _Device:  # stands in for torch.cuda.device, which needs a real GPU
        def __init__(self, device):
            self.device, self.before = str(device), None

        def __enter__(self):
            self.before, current[0] = current[0], self.device

        def __exit__(self, *exc):
            current[0] = self.before

    class _Kernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launched_on.append(current[0])

    monkeypatch.setattr(torch.cuda, "device", _Device)
    monkeypatch.setattr(kernels, "_window_attention_kernel", _Kernel())
    with FakeTensorMode(allow_non_fake_inputs=True):
        q = torch.empty(16, 9, 8, dtype=torch.bfloat16, device="cuda:1")
        kernels._launch(q, q, q, None, None, 16, 3, 3, 2)
    assert launched_on == ["cuda:1"] and current == ["cuda:0"]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (the kernel on the second one)")
def test_fused_kernel_runs_on_a_second_gpu():
    device = torch.device("cuda", torch.cuda.device_count() - 1)
    attn = TemporalSelfAttention(64, 8).to(device)
    geometry = VideoGeometry(16, 4, 4)
    x = torch.randn(16, 16, 64, device=device)
    with torch.no_grad():
        full = attn(x, geometry).double()
        fast = attn.bfloat16()(x.bfloat16(), geometry).double()
    torch.cuda.synchronize(device)
    assert torch.cuda.current_device() != device.index
    assert ((fast - full).norm() / full.norm()).item() < 1e-2
