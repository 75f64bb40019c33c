"""Motion metrics (VBench's dynamic degree and motion smoothness): sampling, thresholds and formulas on
constructed inputs, and the RAFT / AMT-S networks at full size with random weights through the loading path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import hf_snapshot, url_weight_path

from i2vbench.errors import WeightsError
from i2vbench.metrics import FeatureCache
from i2vbench.metrics.amt import AMTS
from i2vbench.metrics.base import EvalItem
from i2vbench.metrics.dynamic_degree import (
    DynamicDegree,
    frame_interval,
    is_dynamic,
    motion_threshold,
    required_moving_pairs,
    sampled_indices,
    top_fraction_mean,
)
from i2vbench.metrics.motion_smoothness import (
    AMT_WEIGHTS,
    MotionSmoothness,
    interpolate_midpoints,
    load_amt,
    smoothness_score,
    to_uint8,
)
from i2vbench.metrics.raft import RAFT_WEIGHTS, flow_magnitude, load_raft, pad_to_multiple
from i2vbench.suite import Case
from i2vbench.video import Video


def _item(frames: np.ndarray, fps: float = 8) -> EvalItem:
    return EvalItem(Case(id="c", image="unused.png", prompt="p", category="x"), Video(frames, fps))


def _gray_video(values, height: int = 128, width: int = 128) -> np.ndarray:
    """One uniform gray frame per value."""
    return np.stack([np.full((height, width, 3), v, np.uint8) for v in values])


# --- dynamic degree: sampling and thresholds ------------------------------------------------------------

@pytest.mark.parametrize("fps, interval", [(8, 1), (4, 1), (1, 1), (10, 1), (12, 2), (16, 2), (20, 2),
                                           (24, 3), (25, 3), (28, 4), (30, 4), (60, 8)])
def test_frames_are_sampled_at_about_8_fps_with_python_rounding(fps, interval):
    # round(1.5) = 2, round(2.5) = 2, round(3.5) = 4: Python rounds halves to even, as VBench does
    assert frame_interval(fps) == interval


def test_sampled_indices():
    assert sampled_indices(16, 8) == list(range(16))
    assert sampled_indices(16, 24) == [0, 3, 6, 9, 12, 15]
    assert sampled_indices(10, 30) == [0, 4, 8]
    assert sampled_indices(49, 24) == list(range(0, 49, 3))


def test_threshold_scales_with_the_short_side():
    assert motion_threshold(256, 256) == 6.0
    assert motion_threshold(320, 512) == 7.5
    assert motion_threshold(576, 1024) == 13.5
    assert motion_threshold(512, 128) == 3.0


@pytest.mark.parametrize("n, required", [(16, 4), (8, 2), (6, 2), (10, 2), (14, 4), (25, 6), (2, 0), (3, 1)])
def test_required_moving_pairs_is_a_quarter_of_the_sampled_frames(n, required):
    assert required_moving_pairs(n) == required


def test_dynamic_needs_enough_pairs_strictly_above_the_threshold():
    assert is_dynamic([7, 7, 7, 7, 0, 0], threshold=6, required=4)
    assert not is_dynamic([7, 7, 7, 6, 6, 0], threshold=6, required=4)  # equal to the threshold is not above
    assert is_dynamic([0.1], threshold=6, required=0)  # VBench: with nothing required any pair suffices
    assert not is_dynamic([], threshold=6, required=0)


def test_top_five_percent_mean_of_constructed_flow():
    flow = torch.zeros(2, 2, 20, 20)  # 400 pixels -> the 20 largest magnitudes
    flow[0, 0], flow[0, 1] = 0.3, 0.4  # 0.5 px everywhere ...
    flow[0, 0, :2, :10], flow[0, 1, :2, :10] = 6.0, 8.0  # ... but 10 px on 20 pixels
    flow[1, 0, 0, :10] = 4.0  # 4 px on 10 pixels, 0 elsewhere: top 20 average to 2
    magnitude = torch.linalg.vector_norm(flow, dim=1)
    assert top_fraction_mean(magnitude).tolist() == pytest.approx([10.0, 2.0])


class _ScriptedRaft(torch.nn.Module):
    """Stands in for RAFT: a uniform flow of (value of the first frame) / 10 px, value read from pixel 0."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[int, ...], int]] = []

    def forward(self, first, second, num_flow_updates):
        assert -1.0 <= first.min() and first.max() <= 1.0  # RAFT's input range
        self.calls.append((tuple(first.shape), num_flow_updates))
        value = torch.round((first[:, 0, 0, 0] + 1) / 2 * 255)
        flow = torch.zeros(first.shape[0], 2, *first.shape[2:])
        flow[:, 0] = (value / 10)[:, None, None]
        return [torch.zeros_like(flow), flow]


def test_flow_magnitude_pads_to_multiples_of_8_and_runs_20_iterations():
    raft = _ScriptedRaft()
    frames = torch.full((3, 3, 130, 131), 50.0)
    magnitude = flow_magnitude(raft, frames, frames)
    assert raft.calls == [((3, 3, 136, 136), 20)]
    assert magnitude.shape == (3, 136, 136) and torch.allclose(magnitude, torch.tensor(5.0))


def test_pad_to_multiple_replicates_borders_and_puts_the_odd_pixel_last():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    padded, pads = pad_to_multiple(x, 4)
    assert pads == (0, 1, 1, 1) and padded.shape == (1, 1, 4, 4)
    assert padded[0, 0].tolist() == [[0, 1, 2, 2], [0, 1, 2, 2], [3, 4, 5, 5], [3, 4, 5, 5]]
    assert pad_to_multiple(x, 1)[0] is x


def test_dynamic_degree_counts_moving_pairs_per_video():
    # 128x128: threshold 6 * 128 / 256 = 3 px; 16 sampled frames -> 4 moving pairs needed.
    # The scripted flow is value / 10 px: 31 -> 3.1 px moves, 30 -> 3.0 px does not.
    four = _gray_video([31] * 4 + [30] * 12)
    three = _gray_video([31] * 3 + [30] * 13)
    # 24 fps: every 3rd frame is kept; only kept frames are high, so all 4 of 16 pairs... just 4 move
    kept = np.full(48, 0, np.uint8)
    kept[[0, 3, 6, 9]] = 31
    wide = _gray_video(kept, 128, 192)
    single = _gray_video([31])
    metric = DynamicDegree()
    metric._network = _ScriptedRaft()
    items = [_item(four), _item(three), _item(wide, fps=24), _item(single)]
    results = metric.score(items, FeatureCache())
    assert [r.values.get("dynamic_degree") for r in results[:3]] == [1.0, 0.0, 1.0]
    assert results[0].values["dynamic_magnitude"] == pytest.approx((4 * 3.1 + 11 * 3.0) / 15)
    assert results[2].values["dynamic_magnitude"] == pytest.approx(4 * 3.1 / 15)
    assert results[3].error and not results[3].values
    # 128x128 videos share batches; the 128x192 one is batched separately
    assert sorted(shape[2:] for shape, _ in metric._network.calls) == [(128, 128), (128, 192)]


def test_dynamic_degree_refuses_frames_too_small_for_raft():
    result = DynamicDegree().score([_item(_gray_video([0, 9, 0], 64, 256))], FeatureCache())[0]
    assert "at least 128x128" in result.error


# --- motion smoothness ----------------------------------------------------------------------------------

def _blend(first, second):
    return (first + second) / 2


def _hold(first, second):
    return first


def test_linear_motion_is_perfectly_smooth_for_a_linear_interpolator():
    ramp = _gray_video([10 * t for t in range(15)] + [255], 20, 24)  # the last (odd) frame is never compared
    (predicted,) = interpolate_midpoints([ramp], _blend)
    assert predicted.shape == (7, 20, 24, 3)
    assert smoothness_score(ramp[1::2][:7], predicted) == 1.0


def test_each_pixel_off_by_ten_scores_245_of_255():
    ramp = _gray_video([10 * t for t in range(9)], 20, 24)
    (predicted,) = interpolate_midpoints([ramp], _hold)  # predicts frame 2k where frame 2k+1 is 10 brighter
    assert smoothness_score(ramp[1::2][:4], predicted) == pytest.approx(245 / 255)


def test_interpolated_frames_are_truncated_to_uint8():
    video = _gray_video([0, 128, 255], 16, 16)
    (predicted,) = interpolate_midpoints([video], _blend)  # 127.5 -> 127, as VBench's astype(uint8)
    assert predicted.max() == predicted.min() == 127
    assert to_uint8(torch.tensor([0.999, 1.5, -0.2])).tolist() == [254, 255, 0]


def test_smoothness_score_averages_per_frame_mean_differences():
    real = np.zeros((2, 2, 2, 3), np.uint8)
    predicted = real.copy()
    predicted[0] = 30  # frame 0 off by 30, frame 1 exact -> mean 15
    predicted[1, 0, 0, 0] = 12  # plus 12 on 1 of 12 values of frame 1 -> 1
    assert smoothness_score(real, predicted) == pytest.approx((255 - (30 + 1) / 2) / 255)
    assert smoothness_score(predicted, real) == smoothness_score(real, predicted)


def test_interpolation_pads_to_multiples_of_16_and_batches_videos_by_size():
    seen = []

    def recording(first, second):
        seen.append(tuple(first.shape))
        return _blend(first, second)

    videos = [_gray_video(range(0, 50, 10), 20, 24), _gray_video(range(7), 20, 24), _gray_video(range(4), 40, 40)]
    predicted = interpolate_midpoints(videos, recording)
    assert [p.shape for p in predicted] == [(2, 20, 24, 3), (3, 20, 24, 3), (1, 40, 40, 3)]
    assert sorted(seen) == [(1, 3, 48, 48), (5, 3, 32, 32)]
    assert predicted[0][:, 0, 0, 0].tolist() == [10, 30] and predicted[1][:, 0, 0, 0].tolist() == [1, 3, 5]


def test_motion_smoothness_metric_asks_for_the_midpoint():
    def amt_stub(first, second, embt):
        assert embt.shape == (len(first), 1, 1, 1) and torch.all(embt == 0.5)
        return _blend(first, second)

    metric = MotionSmoothness()
    metric._network = amt_stub
    items = [_item(_gray_video([0, 12, 20, 30, 40])), _item(_gray_video([0, 10]))]
    smooth, short = metric.score(items, FeatureCache())
    assert smooth.values["motion_smoothness"] == pytest.approx((255 - (2 + 0) / 2) / 255)
    assert short.error and not short.values


# --- networks through the loading path ------------------------------------------------------------------

def test_missing_weights_make_both_metrics_unavailable_with_the_fetch_command(weight_cache):
    assert "i2vbench weights fetch raft_things" in DynamicDegree().unavailable_reason()
    assert "i2vbench weights fetch amt_s" in MotionSmoothness().unavailable_reason()


def test_raft_large_round_trips_through_the_weight_cache(weight_cache):
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(0)
    model = raft_large(weights=None)
    assert sum(p.numel() for p in model.parameters()) == 5257536  # torchvision's C_T_V1 "num_params"
    state = model.state_dict()
    path = url_weight_path(weight_cache, RAFT_WEIGHTS.name, RAFT_WEIGHTS.filename)
    torch.save({k: v for k, v in state.items() if k != "mask_predictor.convrelu.0.bias"}, path)
    with pytest.raises(RuntimeError, match="Missing key"):
        load_raft()
    torch.save(state, path)
    metric = DynamicDegree()
    assert metric.unavailable_reason() is None
    loaded = load_raft().state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (3, 128, 128, 3)).astype(np.uint8)
    (result,) = metric.score([_item(video)], FeatureCache())
    assert result.values["dynamic_degree"] in (0.0, 1.0) and np.isfinite(result.values["dynamic_magnitude"])


def _conv(name: str, cout: int, cin: int, k: int) -> dict:
    return {f"{name}.weight": (cout, cin, k, k), f"{name}.bias": (cout,)}


def _conv_prelu(name: str, cout: int, cin: int, k: int = 3) -> dict:
    return {**_conv(f"{name}.0", cout, cin, k), f"{name}.1.weight": (cout,)}


def _decoder(name: str, cin: int, mid: int, side: int, cout: int) -> dict:
    """IFRNet-style decoder: conv+PReLU, residual block with side channels, 4x4 stride-2 transposed conv."""
    block = f"{name}.convblock.1"
    return {**_conv_prelu(f"{name}.convblock.0", mid, cin),
            **_conv_prelu(f"{block}.conv1", mid, mid), **_conv_prelu(f"{block}.conv2", side, side),
            **_conv_prelu(f"{block}.conv3", mid, mid), **_conv_prelu(f"{block}.conv4", side, side),
            **_conv(f"{block}.conv5", mid, mid, 3), f"{block}.prelu.weight": (mid,),
            f"{name}.convblock.2.weight": (mid, cout, 4, 4), f"{name}.convblock.2.bias": (cout,)}


def _update(name: str, cdim: int) -> dict:
    """AMT SmallUpdateBlock: hidden 76, flow 20, corr 64, fc 68; correlation 2 x 4 levels x 7 x 7 = 392."""
    return {**_conv(f"{name}.convc1", 64, 392, 1), **_conv(f"{name}.convf1", 40, 4, 7),
            **_conv(f"{name}.convf2", 20, 40, 3), **_conv(f"{name}.conv", 68, 84, 3),
            **_conv(f"{name}.gru.0", 76, 68 + 4 + cdim, 3), **_conv(f"{name}.gru.2", 76, 76, 3),
            **_conv(f"{name}.feat_head.0", 76, 76, 3), **_conv(f"{name}.feat_head.2", cdim, 76, 3),
            **_conv(f"{name}.flow_head.0", 76, 76, 3), **_conv(f"{name}.flow_head.2", 4, 76, 3)}


def _bottleneck(name: str, cin: int, cout: int, downsample: bool) -> dict:
    mid = cout // 4
    keys = {**_conv(f"{name}.conv1", mid, cin, 1), **_conv(f"{name}.conv2", mid, mid, 3),
            **_conv(f"{name}.conv3", cout, mid, 1)}
    return {**keys, **_conv(f"{name}.downsample.0", cout, cin, 1)} if downsample else keys


#: amt-s.pth 'state_dict' as the AMT-S architecture (networks/AMT-S.py, cfgs/AMT-S.yaml) defines it:
#: RAFT small encoder (84 channels, instance norm without parameters), pyramid channels 20/32/44/56,
#: 20 side channels, 3 flow fields.
AMT_S_KEYS = {
    **_conv("feat_encoder.conv1", 32, 3, 7),
    **_bottleneck("feat_encoder.layer1.0", 32, 32, False), **_bottleneck("feat_encoder.layer1.1", 32, 32, False),
    **_bottleneck("feat_encoder.layer2.0", 32, 64, True), **_bottleneck("feat_encoder.layer2.1", 64, 64, False),
    **_bottleneck("feat_encoder.layer3.0", 64, 96, True), **_bottleneck("feat_encoder.layer3.1", 96, 96, False),
    **_conv("feat_encoder.conv2", 84, 96, 1),
    **_conv_prelu("encoder.pyramid1.0", 20, 3), **_conv_prelu("encoder.pyramid1.1", 20, 20),
    **_conv_prelu("encoder.pyramid2.0", 32, 20), **_conv_prelu("encoder.pyramid2.1", 32, 32),
    **_conv_prelu("encoder.pyramid3.0", 44, 32), **_conv_prelu("encoder.pyramid3.1", 44, 44),
    **_conv_prelu("encoder.pyramid4.0", 56, 44), **_conv_prelu("encoder.pyramid4.1", 56, 56),
    **_decoder("decoder4", 2 * 56 + 1, 112, 20, 44 + 4),
    **_decoder("decoder3", 3 * 44 + 4, 132, 20, 32 + 4),
    **_decoder("decoder2", 3 * 32 + 4, 96, 20, 20 + 4),
    **_decoder("decoder1", 3 * 20 + 4, 60, 20, 8 * 3),
    **_update("update4", 44), **_update("update3", 32), **_update("update2", 20),
    **_conv("comb_block.0", 18, 9, 3), "comb_block.1.weight": (18,), **_conv("comb_block.2", 3, 18, 3),
}


def test_amt_s_has_the_released_checkpoint_keys_and_shapes():
    state = AMTS().state_dict()
    assert len(AMT_S_KEYS) == 213
    assert {k: tuple(v.shape) for k, v in state.items()} == AMT_S_KEYS
    assert list(state) == list(AMT_S_KEYS)  # module order as in the released code, too


def test_amt_s_round_trips_through_the_weight_cache_and_interpolates(weight_cache):
    snapshot = hf_snapshot(weight_cache, AMT_WEIGHTS.repo_id)
    metric = MotionSmoothness()
    assert "amt-s.pth is missing" in metric.unavailable_reason()
    torch.manual_seed(0)
    state = AMTS().state_dict()
    torch.save({"epoch": 299, "state_dict": state}, snapshot / "amt-s.pth")
    assert metric.unavailable_reason() is None
    model = load_amt()
    assert all(torch.equal(model.state_dict()[k], state[k]) for k in state)
    img0, img1 = torch.rand(2, 1, 3, 128, 160)
    with torch.no_grad():
        middle = model(img0, img1, torch.full((1, 1, 1, 1), 0.5))
    assert middle.shape == (1, 3, 128, 160) and 0 <= middle.min() and middle.max() <= 1
    video = np.random.default_rng(0).integers(0, 256, (3, 120, 130, 3)).astype(np.uint8)  # padded to 128x144
    (result,) = metric.score([_item(video)], FeatureCache())
    assert 0 <= result.values["motion_smoothness"] <= 1


def test_amt_checkpoint_must_hold_a_state_dict(weight_cache):
    snapshot = hf_snapshot(weight_cache, AMT_WEIGHTS.repo_id)
    torch.save(AMTS().state_dict(), snapshot / "amt-s.pth")
    with pytest.raises(WeightsError, match="state_dict"):
        load_amt()
