"""Learned metrics: formulas on constructed features, VBench preprocessing, networks loaded by key from the
cache, features shared between metrics, and metrics skipped (never zero) when their weights are missing."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import hf_snapshot, url_weight_path
from PIL import Image

from i2vbench.errors import NetworkLoadError
from i2vbench.metrics import (
    EvalItem,
    FeatureCache,
    aesthetic_quality,
    backbones,
    clip_score,
    get_metric,
    i2v_consistency,
    subject_consistency,
)
from i2vbench.metrics.backbones import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from i2vbench.report.aggregate import load_run
from i2vbench.store import RunStore
from i2vbench.suite import Case
from i2vbench.video import Video

LEARNED = ["subject_consistency", "background_consistency", "i2v_subject", "i2v_background",
           "i2v_background_clip", "clip_score", "aesthetic_quality"]


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def features(*degrees: float, scale: float = 3.0) -> torch.Tensor:
    """2-D features at the given angles (not normalised: the metrics normalise)."""
    return torch.tensor([unit(d) for d in degrees]) * scale


def make_item(tmp_path: Path, name: str, frames: np.ndarray, image_hw=(96, 160), prompt="a red ball") -> EvalItem:
    rng = np.random.default_rng(len(name))
    path = tmp_path / f"{name}.png"
    Image.fromarray(rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8)).save(path)
    return EvalItem(Case(id=name, image=path, prompt=prompt, category="test"), Video(frames, fps=8))


def random_frames(t: int, h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def put_url_weight(cache: Path, name: str, filename: str, state: dict) -> Path:
    """Lay out a URL weight as ``i2vbench weights fetch`` does: $I2VBENCH_CACHE/<name>/<file>."""
    path = url_weight_path(cache, name, filename)
    torch.save(state, path)
    return path


def put_hf_weight(cache: Path, repo_id: str, filename: str, state: dict) -> Path:
    """Lay out a Hugging Face snapshot as huggingface_hub does: models--org--name/{snapshots/<rev>,refs/main}."""
    from safetensors.torch import save_file

    snapshot = hf_snapshot(cache, repo_id)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / filename))
    return snapshot / filename


# ---------------------------------------------------------------------------------------------------- formulas

def test_consistency_terms_of_known_cosines():
    # frames at 0, 60 and 90 degrees: s_1 = (cos60 + cos60)/2, s_2 = (cos30 + max(0, cos90))/2
    terms = subject_consistency.consistency_terms(features(0, 60, 90))
    assert terms.tolist() == pytest.approx([0.5, math.sqrt(3) / 4])


def test_negative_cosines_count_as_zero():
    terms = subject_consistency.consistency_terms(features(0, 180, 180))
    assert terms.tolist() == pytest.approx([0.0, 0.5])  # s_2: previous frame identical (1), first opposite (0)


def test_subject_consistency_stores_frame_terms_and_pools_them_over_the_dataset(tmp_path, monkeypatch):
    a = make_item(tmp_path, "a", random_frames(3))
    b = make_item(tmp_path, "b", random_frames(2))
    constructed = {"a": features(0, 0, 0), "b": features(0, 60)}  # terms a: [1, 1]; b: [0.5]
    monkeypatch.setattr(subject_consistency, "dino_frame_features",
                        lambda items, cache, device: [constructed[it.case.id] for it in items])
    metric = get_metric("subject_consistency")()
    results = metric.score([a, b], FeatureCache())
    assert [r.values["subject_consistency"] for r in results] == pytest.approx([1.0, 0.5])
    assert [list(r.frame_values["subject_consistency"]) for r in results] == [pytest.approx([1, 1]), pytest.approx([0.5])]
    assert metric.scores[0].frame_weighted

    store = RunStore(tmp_path / "run")
    store.set_metric_status(metric.name, metric.group, "ran", [s.__dict__ for s in metric.scores])
    for item, result in zip((a, b), results):
        store.record_scores(metric.name, item.case.id, result.values, result.frame_values)
    pooled = load_run(tmp_path / "run").dataset_score("subject_consistency")
    assert pooled == pytest.approx(100 * 2.5 / 3)  # all terms pooled, as VBench's sim / cnt
    assert pooled != pytest.approx(100 * 0.75)  # the mean of the video scores would be 75


def test_one_frame_video_is_an_error_not_a_number(tmp_path, monkeypatch):
    item = make_item(tmp_path, "one", random_frames(1))
    monkeypatch.setattr(subject_consistency, "dino_frame_features", lambda items, cache, device: [features(0)])
    (result,) = get_metric("subject_consistency")().score([item], FeatureCache())
    assert result.error and not result.values


def test_i2v_scores_of_known_cosines():
    image, frames = features(0)[0], features(0, 60, 90)
    # to image: [1, 0.5, 0] -> max 1; consecutive: [cos60, cos30] -> mean 0.6830, min 0.5
    mean_consecutive = (0.5 + math.sqrt(3) / 2) / 2
    assert i2v_consistency.i2v_score(image, frames, i2v_consistency.SUBJECT) == pytest.approx(0.5 + 0.5 * mean_consecutive)
    assert i2v_consistency.i2v_score(image, frames, i2v_consistency.BACKGROUND) == pytest.approx(
        0.4 + 0.3 * mean_consecutive + 0.3 * 0.5)


def test_i2v_max_term_includes_frame_zero_and_ignores_negative_cosines():
    image = features(180)[0]
    frames = features(0, 0, 0)  # every frame opposite to the image, all consecutive pairs identical
    assert i2v_consistency.i2v_score(image, frames, i2v_consistency.SUBJECT) == pytest.approx(0.5)
    assert i2v_consistency.i2v_score(features(0)[0], features(0, 180, 180), i2v_consistency.SUBJECT) == pytest.approx(
        0.5 * 1 + 0.5 * 0.5)


def test_clip_score_is_the_raw_frame_averaged_cosine(tmp_path, monkeypatch):
    item = make_item(tmp_path, "c", random_frames(3))
    monkeypatch.setattr(clip_score, "frame_features", lambda name, items, cache, device: [
        torch.nn.functional.normalize(features(0, 60, 120), dim=-1)])
    monkeypatch.setattr(clip_score, "clip_text_features", lambda name, items, cache, device: [torch.tensor(unit(0))])
    (result,) = get_metric("clip_score")().score([item], FeatureCache())
    assert result.values["clip_score"] == pytest.approx((1 + 0.5 - 0.5) / 3)  # not x100, not clamped


def test_aesthetic_quality_is_the_frame_mean_of_the_head_over_ten(tmp_path, monkeypatch):
    item = make_item(tmp_path, "aes", random_frames(2))
    feats = torch.nn.functional.normalize(torch.randn(2, 768), dim=-1)
    head = torch.nn.Linear(768, 1)
    monkeypatch.setattr(aesthetic_quality, "frame_features", lambda name, items, cache, device: [feats])
    monkeypatch.setattr(aesthetic_quality, "get_model", lambda name, device: head)
    (result,) = get_metric("aesthetic_quality")().score([item], FeatureCache())
    expected = float((feats @ head.weight[0] + head.bias[0]).mean().detach() / 10)
    assert result.values["aesthetic_quality"] == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------------------------- preprocessing

def constant_frames(value: int, t: int, h: int, w: int) -> torch.Tensor:
    return torch.full((t, 3, h, w), value, dtype=torch.uint8)


def expected_constant(value: int, mean, std) -> torch.Tensor:
    return (value / 255.0 - torch.tensor(mean)) / torch.tensor(std)


def test_dino_frames_resize_the_short_side_to_224_without_crop_and_use_imagenet_statistics():
    out = backbones.dino_frames(constant_frames(200, 2, 256, 448))
    assert out.shape == (2, 3, 224, 392)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), expected_constant(200, IMAGENET_MEAN, IMAGENET_STD), atol=1e-5)


def test_dino_frames_use_bilinear_without_antialias():
    frames = torch.from_numpy(random_frames(1, 64, 96)).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(frames.float(), size=(224, 336), mode="bilinear", align_corners=False,
                                              antialias=False)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    # float frames (VBench's load_video) are not rounded after resizing; uint8 frames are
    assert torch.allclose(backbones.dino_frames(frames.float()), (resized / 255 - mean) / std, atol=1e-5)
    assert torch.allclose(backbones.dino_frames(frames), (resized.round() / 255 - mean) / std, atol=1e-5)


def test_float_frames_keep_the_bicubic_overshoot_as_vbench_does():
    frames = constant_frames(0, 1, 64, 64)
    frames[..., 32:] = 255  # a hard edge: bicubic overshoots past 255 and under 0 beside it
    high = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    unclamped, clamped = backbones.clip_frames(frames.float()), backbones.clip_frames(frames)
    assert (unclamped.amax(dim=(0, 2, 3)) > high + 0.02).all()
    assert (clamped.amax(dim=(0, 2, 3)) <= high + 1e-5).all()


def test_dino_reference_image_keeps_its_aspect_with_torchvision_size_rule():
    out = backbones.dino_image(np.full((300, 500, 3), 90, np.uint8))
    assert out.shape == (3, 224, 373)  # long side int(224 * 500 / 300)
    assert torch.allclose(out.mean(dim=(1, 2)), expected_constant(90, IMAGENET_MEAN, IMAGENET_STD), atol=1e-5)


def test_clip_frames_resize_then_center_crop_224_with_clip_statistics():
    frames = constant_frames(0, 1, 224, 448)
    frames[..., 112:336] = 128  # only the centre survives the crop
    out = backbones.clip_frames(frames)
    assert out.shape == (1, 3, 224, 224)
    assert torch.allclose(out, expected_constant(128, CLIP_MEAN, CLIP_STD).view(1, 3, 1, 1).expand_as(out), atol=1e-5)
    assert backbones.clip_image(np.full((100, 300, 3), 7, np.uint8)).shape == (3, 224, 224)


def test_dreamsim_inputs_are_squashed_to_224_in_unit_range():
    out = backbones.dreamsim_frames(constant_frames(255, 1, 64, 128))
    assert out.shape == (1, 3, 224, 224) and torch.allclose(out, torch.ones_like(out))
    assert backbones.dreamsim_image(np.zeros((50, 80, 3), np.uint8)).shape == (3, 224, 224)


def test_reference_image_is_center_cropped_to_the_video_aspect_at_full_resolution():
    image = np.arange(300 * 600).reshape(300, 600, 1).repeat(3, -1)
    square = backbones.crop_to_aspect(image, 256, 256)
    assert square.shape[:2] == (300, 300) and square[0, 0, 0] == image[0, 150, 0]
    tall = backbones.crop_to_aspect(image, 320, 512)  # 8:5 from 2:1 -> width 480
    assert tall.shape[:2] == (300, 480) and tall[0, 0, 0] == image[0, 60, 0]
    wide = backbones.crop_to_aspect(image.transpose(1, 0, 2), 256, 256)
    assert wide.shape[:2] == (300, 300)


# ------------------------------------------------------------------------------------------------ the networks

@pytest.fixture(scope="module")
def dino() -> backbones.DinoViT:
    torch.manual_seed(0)
    return backbones.build_dino_vitb16().eval()


def original_dino_state(model: backbones.DinoViT) -> dict[str, torch.Tensor]:
    """The state dict as facebookresearch/dino saves it (its ViT's own key names)."""
    return {k.removeprefix("vit."): v.clone() for k, v in model.state_dict().items()}


def test_dino_architecture_has_the_checkpoint_keys_of_dino_vitb16(dino):
    state = original_dino_state(dino)
    assert len(state) == 4 + 12 * 12 + 2
    assert state["pos_embed"].shape == (1, 197, 768) and state["cls_token"].shape == (1, 1, 768)
    assert state["patch_embed.proj.weight"].shape == (768, 3, 16, 16)
    assert state["blocks.11.attn.qkv.weight"].shape == (2304, 768) and state["blocks.11.mlp.fc1.weight"].shape == (3072, 768)
    assert {"norm.weight", "norm.bias", "blocks.0.norm1.weight", "blocks.0.attn.proj.bias", "blocks.0.mlp.fc2.bias"} <= set(state)


def test_dino_key_mapping_strips_wrappers_and_the_head():
    mapped = backbones.dino_keys({"module.backbone.cls_token": 1, "backbone.norm.weight": 2, "head.mlp.0.weight": 3})
    assert mapped == {"vit.cls_token": 1, "vit.norm.weight": 2}


def test_dino_positional_embedding_is_interpolated_as_dino_does(dino):
    assert dino.pos_embed(14, 14, square=True) is dino.vit.pos_embed
    assert dino.pos_embed(14, 24, square=False).shape == (1, 1 + 14 * 24, 768)
    # a 224 x 230 input has a 14 x 14 grid but is not square: DINO interpolates (scale 14.1/14) anyway
    nearly = dino.pos_embed(14, 14, square=False)
    assert nearly.shape == dino.vit.pos_embed.shape and not torch.equal(nearly, dino.vit.pos_embed)
    assert torch.equal(nearly[:, 0], dino.vit.pos_embed[:, 0])  # the CLS position is never interpolated


def test_dino_checkpoint_loads_by_key_through_the_weights_cache(dino, weight_cache):
    put_url_weight(weight_cache, "dino_vitb16", "dino_vitbase16_pretrain.pth", original_dino_state(dino))
    assert get_metric("subject_consistency")().unavailable_reason() is None
    loaded = backbones.get_model("dino_vitb16", "cpu")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in dino.state_dict().items())
    assert backbones.get_model("dino_vitb16", "cpu") is loaded  # once per process and device
    x = backbones.dino_frames(torch.from_numpy(random_frames(1, 40, 60)).permute(0, 3, 1, 2))
    with torch.inference_mode():
        assert torch.allclose(loaded(x), dino(x), atol=1e-5)


def test_checkpoints_that_would_run_code_are_refused(weight_cache):
    put_url_weight(weight_cache, "laion_aesthetic_l14", "sa_0_4_vit_l_14_linear.pth",
                   {"weight": torch.zeros(1, 768), "bias": torch.zeros(1), "payload": os.system})
    with pytest.raises(NetworkLoadError, match="holds posix.system besides tensors, and i2vbench never runs code") as caught:
        backbones.get_model("laion_aesthetic_l14", "cpu")
    assert isinstance(caught.value.__cause__, pickle.UnpicklingError)


def test_aesthetic_head_loads_by_key(weight_cache):
    head = backbones.build_aesthetic_head()
    put_url_weight(weight_cache, "laion_aesthetic_l14", "sa_0_4_vit_l_14_linear.pth", head.state_dict())
    loaded = backbones.get_model("laion_aesthetic_l14", "cpu")
    assert torch.equal(loaded.weight, head.weight) and torch.equal(loaded.bias, head.bias)


def test_clip_vit_b32_loads_from_the_hf_snapshot_and_embeds_images_and_text(weight_cache, tmp_path):
    torch.manual_seed(0)
    clip = backbones.build_clip("ViT-B-32").eval()
    put_hf_weight(weight_cache, "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors", clip.state_dict())
    assert get_metric("background_consistency")().unavailable_reason() is None
    loaded = backbones.get_model("clip_vit_b32", "cpu")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in clip.state_dict().items())
    assert type(loaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"  # as OpenAI's CLIP

    item = make_item(tmp_path, "clip", random_frames(3, 48, 64))
    cache = FeatureCache()
    (frames,) = backbones.frame_features("clip_vit_b32", [item], cache, "cpu")
    (text,) = backbones.clip_text_features("clip_vit_b32", [item], cache, "cpu")
    assert frames.shape == (3, 512) and text.shape == (512,)
    assert torch.allclose(frames.norm(dim=-1), torch.ones(3)) and torch.isclose(text.norm(), torch.tensor(1.0))
    with torch.inference_mode():
        direct = clip.encode_image(backbones.clip_frames(torch.from_numpy(item.video.frames).permute(0, 3, 1, 2).float()))
    assert torch.allclose(frames, torch.nn.functional.normalize(direct, dim=-1), atol=1e-6)
    (result,) = get_metric("i2v_background_clip")().score([item], cache)
    assert 0 <= result.values["i2v_background_clip"] <= 1


def test_clip_vit_l14_architecture_matches_the_openai_checkpoint_layout():
    import open_clip

    model = open_clip.create_model("ViT-L-14", pretrained=None, force_quick_gelu=True, device="meta")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["visual.conv1.weight"] == (1024, 3, 14, 14)
    assert shapes["visual.positional_embedding"] == (257, 1024) and shapes["visual.proj"] == (1024, 768)
    assert shapes["token_embedding.weight"] == (49408, 768) and shapes["text_projection"] == (768, 768)
    assert shapes["positional_embedding"] == (77, 768)
    assert "visual.transformer.resblocks.23.mlp.c_fc.weight" in shapes and "visual.transformer.resblocks.24.ln_1.weight" not in shapes
    assert "transformer.resblocks.11.attn.in_proj_weight" in shapes and "transformer.resblocks.12.ln_1.weight" not in shapes


# ------------------------------------------------------------------------------------------- shared features

class Counting(torch.nn.Module):
    """Counts the images that go through the wrapped network."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.images, self.calls = model, 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        self.calls += 1
        return self.model(x)


def test_dino_runs_once_per_batch_for_subject_consistency_and_i2v_subject(dino, tmp_path, monkeypatch):
    counting = Counting(dino)
    monkeypatch.setattr(backbones, "get_model", lambda name, device: counting)
    items = [make_item(tmp_path, f"v{i}", random_frames(3, 32, 32, seed=i), image_hw=(64, 64)) for i in range(2)]
    cache = FeatureCache()
    subject = get_metric("subject_consistency")().score(items, cache)
    assert (counting.images, counting.calls) == (6, 1)  # all frames of the batch in one forward
    first_frame = get_metric("i2v_subject")().score(items[1:], cache)
    assert (counting.images, counting.calls) == (7, 2)  # its frames were cached: only its reference image is new
    assert all(0 <= r.values[k] <= 1 for r, k in [(subject[0], "subject_consistency"), (first_frame[0], "i2v_subject")])

    get_metric("subject_consistency")().score(items, FeatureCache())  # a new batch computes again
    assert counting.images == 13


# ------------------------------------------------------------------------------------------- missing weights

@pytest.mark.parametrize("name", LEARNED)
def test_missing_weights_make_the_metric_unavailable_with_the_fetch_command(name, weight_cache):
    reason = get_metric(name)().unavailable_reason()
    assert reason and "i2vbench weights fetch " in reason


def test_i2v_background_without_dreamsim_points_to_its_clip_stand_in(weight_cache):
    reason = get_metric("i2v_background")().unavailable_reason()
    assert "dreamsim" in reason and "i2v_background_clip" in reason and "i2vbench weights fetch dreamsim_ensemble" in reason


def test_runner_records_learned_metrics_without_weights_as_skipped_not_zero(cli, tmp_path, tiny_suite, weight_cache):
    run = tmp_path / "run"
    code, out, err = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run,
                         "--set", "num_frames=4", "--set", "height=32", "--set", "width=32")
    assert code == 0, err
    assert "subject_consistency: skipped (weights 'dino_vitb16' not cached)" in out
    fetch = next(line for line in out.splitlines() if "fetch what they need with 'i2vbench weights fetch --metrics " in line)
    assert "subject_consistency" in fetch and "clip_score" in fetch and "temporal_flickering" not in fetch
    with RunStore.open_existing(run) as store:
        info = store.metric_info()
        assert "i2vbench weights fetch dino_vitb16" in info["subject_consistency"]["reason"]  # the whole reason kept
        assert info["subject_consistency"]["status"] == "skipped" and info["clip_score"]["status"] == "skipped"
        assert {"subject_consistency", "clip_score"}.isdisjoint(store.table("scores")["metric"])
    board = pd.read_csv(run / "leaderboard.csv").loc[0]
    assert pd.isna(board["subject_consistency"]) and pd.isna(board["clip_score"])
    assert board["temporal_flickering"] > 99
    assert {"subject_consistency", "clip_score"} <= set(board["skipped_metrics"].split(";"))


def test_metrics_named_in_the_command_that_cannot_run_stop_it_before_any_video(cli, tmp_path, tiny_suite, weight_cache):
    run = tmp_path / "run"
    code, out, err = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run,
                         "--metrics", "temporal_flickering,subject_consistency,clip_score")
    assert code == 2 and not run.exists()
    assert "2 metric(s) named in --metrics cannot run here" in err and "subject_consistency: " in err
    assert "i2vbench weights fetch --metrics subject_consistency,clip_score" in err


def test_runner_scores_dino_metrics_end_to_end_from_the_cache(cli, tmp_path, tiny_suite, weight_cache, dino):
    put_url_weight(weight_cache, "dino_vitb16", "dino_vitbase16_pretrain.pth", original_dino_state(dino))
    run = tmp_path / "run"
    code, out, err = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run,
                         "--metrics", "subject_consistency,i2v_subject", "--device", "cpu",
                         "--set", "num_frames=4", "--set", "height=32", "--set", "width=48")
    assert code == 0, err
    with RunStore.open_existing(run) as store:
        assert len(store.table("frame_scores").query("score == 'subject_consistency'")) == 3 * 3
        assert len(store.table("scores")) == 3 * 2 and store.table("metric_errors").empty
    board = pd.read_csv(run / "leaderboard.csv").loc[0]
    assert board["subject_consistency"] > 99  # a still video: every frame has the same features
    assert 0 < board["i2v_subject"] <= 100


def test_a_damaged_checkpoint_is_loaded_once_and_reported_once_for_every_video(cli, tmp_path, tiny_suite, weight_cache,
                                                                             monkeypatch):
    put_url_weight(weight_cache, "dino_vitb16", "dino_vitbase16_pretrain.pth", {"pos_embed": torch.zeros(1)})
    loads = []
    monkeypatch.setitem(backbones.LOADERS, "dino_vitb16", lambda device: loads.append(device) or backbones._load_dino(device))
    run = tmp_path / "run"
    code, out, err = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run,
                         "--metrics", "subject_consistency,i2v_subject", "--device", "cpu", "--eval-batch-size", "1",
                         "--set", "num_frames=4", "--set", "height=32", "--set", "width=48")
    assert code == 1 and loads == ["cpu"]  # three batches, two metrics on the network: one load
    assert out.count("cannot load the dino_vitb16 network: RuntimeError") == 2  # a note per metric, not per video
    assert "'i2vbench weights fetch dino_vitb16 --force'" in out and out.count("could not be loaded (see above)") == 3
    with RunStore.open_existing(run) as store:
        errors = store.table("metric_errors")
        assert len(errors) == 2 * 3 and errors["error"].str.contains("Missing key").all()
        assert store.table("scores").empty


def test_a_metric_network_that_fails_to_load_is_not_loaded_again():
    metric = get_metric("aesthetic_quality")()
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("CUDA out of memory")

    metric.load = broken
    for _ in range(2):
        with pytest.raises(NetworkLoadError, match="cannot load the network of metric aesthetic_quality: RuntimeError: "
                                                   "CUDA out of memory; .*'i2vbench weights fetch clip_vit_l14 --force'"):
            metric.network()
    assert calls == [1]


def test_dreamsim_loads_from_the_unpacked_release_archive_without_downloading(tmp_path, monkeypatch):
    import sys
    import types
    import zipfile

    from i2vbench.errors import WeightsError

    calls = []

    def fake_dreamsim(pretrained, device, cache_dir):  # the package's entry point, as VBench-I2V calls it
        calls.append((pretrained, device, cache_dir))
        return torch.nn.Identity(), None

    monkeypatch.setitem(sys.modules, "dreamsim", types.SimpleNamespace(dreamsim=fake_dreamsim))
    archive = tmp_path / "dreamsim_ensemble_checkpoint.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("models/ensemble_lora/adapter_config.json", "{}")
        zf.writestr("models/ensemble_lora/adapter_model.bin", b"weights")
    backbones._load_dreamsim(archive, "cpu")
    backbones._load_dreamsim(archive, "cpu")  # the second load finds the unpacked folder
    root = tmp_path / "unpacked" / "models"
    assert calls == [(True, "cpu", str(root))] * 2
    assert (root / "ensemble_lora" / "adapter_model.bin").read_bytes() == b"weights"

    unsafe = tmp_path / "bad" / "dreamsim_ensemble_checkpoint.zip"
    unsafe.parent.mkdir()
    with zipfile.ZipFile(unsafe, "w") as zf:
        zf.writestr("../escape/ensemble_lora/x", "")
    with pytest.raises(WeightsError, match="unsafe path"):
        backbones._load_dreamsim(unsafe, "cpu")
    assert not (tmp_path / "escape").exists()


def test_a_checkpoint_cut_short_is_called_damaged_with_the_command_that_replaces_it(weight_cache):
    path = put_url_weight(weight_cache, "laion_aesthetic_l14", "sa_0_4_vit_l_14_linear.pth", {})
    path.write_bytes(b"<html>503 Service Unavailable</html>")  # what a proxy's error page saved as the file
    with pytest.raises(NetworkLoadError, match=r"its checkpoint is no readable torch file \(damaged or cut short: .*"
                                               r"download them again with 'i2vbench weights fetch laion_aesthetic_l14 "
                                               "--force'"):
        backbones.get_model("laion_aesthetic_l14", "cpu")
