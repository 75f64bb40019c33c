"""Metric numerics: which metrics run under bf16 autocast, that the bf16 paths of the networks run and agree
with fp32 (on the CPU, where autocast to bf16 is the same code path as on CUDA), and that a run folder records
the precision of every metric and never mixes two within one metric."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from test_metrics_learned import original_dino_state, put_url_weight
from test_metrics_text import (
    TINY_VICLIP,
    make_item,
    random_frames,
    save_tiny_blip,
    save_tiny_owlv2,
)

from helpers import hf_snapshot
from i2vbench.metrics import FeatureCache, backbones, get_metric, overall_consistency
from i2vbench.metrics.base import resolve_precision
from i2vbench.metrics.viclip import ViCLIP
from i2vbench.store import RunStore


@pytest.mark.parametrize("precision, device, bf16_ok, expected", [
    ("auto", "cpu", True, "fp32"),
    ("auto", "cuda", True, "bf16"),
    ("auto", "cuda:1", True, "bf16"),
    ("auto", "cuda", False, "fp32"),
    ("fp32", "cuda", True, "fp32"),
    ("bf16", "cpu", True, "bf16"),
    ("bf16", "cuda", False, "fp32"),
])
def test_precision_resolution(precision, device, bf16_ok, expected):
    assert resolve_precision(precision, device, bf16_ok) == expected


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        resolve_precision("fp16", "cuda", True)


def test_flow_interpolation_and_perceptual_metrics_stay_fp32_when_bf16_is_asked_for():
    for name in ("dynamic_degree", "motion_smoothness", "imaging_quality", "frame0_fidelity", "temporal_flickering"):
        metric = get_metric(name)(precision="bf16")
        with torch.autocast("cpu", dtype=torch.bfloat16), metric.numerics():  # even inside an outer autocast
            assert metric.precision == "fp32" and not torch.is_autocast_enabled("cpu"), name
    for name in ("subject_consistency", "clip_score", "overall_consistency", "object_consistency", "scene_consistency"):
        metric = get_metric(name)(precision="bf16")
        with metric.numerics():
            assert metric.precision == "bf16" and torch.is_autocast_enabled("cpu"), name


def autocast_seen(*modules: torch.nn.Module) -> list[bool]:
    """Whether CPU autocast was on at each forward call of ``modules`` (filled as they run)."""
    seen: list[bool] = []
    for module in modules:
        module.register_forward_pre_hook(lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    return seen


class AutocastProbe(torch.nn.Module):
    """Records whether CPU autocast was on at each call."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.is_autocast_enabled("cpu"))
        return self.model(x)


@pytest.fixture(scope="module")
def dino() -> backbones.DinoViT:
    torch.manual_seed(0)
    return backbones.build_dino_vitb16().eval()


def test_bf16_dino_features_agree_with_fp32_and_are_cached_apart(dino, tmp_path, monkeypatch):
    probe = AutocastProbe(dino)
    monkeypatch.setattr(backbones, "get_model", lambda name, device: probe)
    items = [make_item(tmp_path, f"v{i}", random_frames(3, 48, 64, seed=i)) for i in range(2)]
    cache = FeatureCache()
    low = get_metric("subject_consistency")(precision="bf16").run(items, cache)
    high = get_metric("subject_consistency")(precision="fp32").run(items, cache)
    assert probe.seen == [True, False]  # one forward each: the fp32 metric did not reuse bf16 features
    for a, b in zip(low, high):
        assert a.values["subject_consistency"] == pytest.approx(b.values["subject_consistency"], abs=2e-2)


def test_bf16_viclip_runs_and_agrees_with_fp32(weight_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(overall_consistency, "VICLIP_CONFIG", TINY_VICLIP)
    torch.manual_seed(1)
    snapshot = hf_snapshot(weight_cache, "OpenGVLab/ViCLIP")
    torch.save({"model": ViCLIP(TINY_VICLIP).state_dict()}, snapshot / "ViClip-InternVid-10M-FLT.pth")
    items = [make_item(tmp_path, "a", random_frames(16, seed=1), prompt="a dog runs"),
             make_item(tmp_path, "b", random_frames(5, seed=2), prompt="waves on a beach")]
    high = get_metric("overall_consistency")(precision="fp32").run(items, FeatureCache())
    metric = get_metric("overall_consistency")(precision="bf16")
    seen = autocast_seen(metric.network().vision_encoder, metric.network().text_encoder)
    low = metric.run(items, FeatureCache())
    assert seen and all(seen)
    for a, b in zip(low, high):
        assert a.error is None and a.values["overall_consistency"] == pytest.approx(b.values["overall_consistency"], abs=5e-2)


def test_bf16_owlv2_and_blip_run_through_transformers(weight_cache, tmp_path):
    save_tiny_owlv2(hf_snapshot(weight_cache, "google/owlv2-base-patch16-ensemble"))
    save_tiny_blip(hf_snapshot(weight_cache, "Salesforce/blip-image-captioning-base"))
    item = make_item(tmp_path, "a", random_frames(16, seed=3), object="dog", scene="beach")
    for name in ("object_consistency", "scene_consistency"):
        metric = get_metric(name)(precision="bf16")
        model = metric.network()[0]
        seen = autocast_seen(model.vision_model if name == "scene_consistency" else model)  # BLIP: generate()
        (result,) = metric.run([item], FeatureCache())
        assert seen and all(seen), name
        assert result.error is None and len(result.frame_values[name]) == 16, name
        assert set(result.frame_values[name]) <= {0.0, 1.0}


def test_bf16_clip_features_agree_with_fp32(weight_cache, tmp_path):
    torch.manual_seed(0)
    clip = backbones.build_clip("ViT-B-32").eval()
    snapshot = hf_snapshot(weight_cache, "timm/vit_base_patch32_clip_224.openai")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(snapshot / "open_clip_model.safetensors"))
    item = make_item(tmp_path, "c", random_frames(3, 48, 64))
    loaded = backbones.get_model("clip_vit_b32", "cpu")
    seen = autocast_seen(loaded.visual, loaded.transformer)
    low = get_metric("i2v_background_clip")(precision="bf16").run([item], FeatureCache())[0]
    assert seen == [True, True]  # the image tower ran under autocast (frames, then the reference image)
    with get_metric("clip_score")(precision="bf16").numerics():
        backbones.clip_text_features("clip_vit_b32", [item], FeatureCache(), "cpu")
    assert seen == [True, True, True]  # and so did the text tower
    high = get_metric("i2v_background_clip")(precision="fp32").run([item], FeatureCache())[0]
    assert low.values["i2v_background_clip"] == pytest.approx(high.values["i2v_background_clip"], abs=2e-2)
    cache = FeatureCache()
    with get_metric("clip_score")(precision="bf16").numerics():
        (frames,) = backbones.frame_features("clip_vit_b32", [item], cache, "cpu")
    with torch.inference_mode():
        direct = F.normalize(clip.encode_image(backbones.clip_frames(torch.from_numpy(item.video.frames).permute(0, 3, 1, 2).float())), dim=-1)
    assert frames.dtype == torch.float32 and (frames * direct).sum(-1).min() > 0.99


# ------------------------------------------------------------------------------------------- the run store

def _run(cli, tiny_suite, run, *extra):
    return cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, "--device", "cpu",
               "--metrics", "temporal_flickering,subject_consistency,i2v_subject",
               "--set", "num_frames=4", "--set", "height=32", "--set", "width=48", *extra)


def test_a_run_records_each_metrics_precision_and_refuses_to_mix_them(cli, tmp_path, tiny_suite, weight_cache, dino):
    put_url_weight(weight_cache, "dino_vitb16", "dino_vitbase16_pretrain.pth", original_dino_state(dino))
    run = tmp_path / "run"
    code, out, err = _run(cli, tiny_suite, run, "--precision", "bf16")
    assert code == 0, err
    with RunStore.open_existing(run) as store:
        precisions = {m: i["precision"] for m, i in store.metric_info().items()}
    assert precisions == {"temporal_flickering": "fp32", "subject_consistency": "bf16", "i2v_subject": "bf16"}
    bf16_board = pd.read_csv(run / "leaderboard.csv").loc[0]
    assert bf16_board["bf16_metrics"] == "i2v_subject;subject_consistency"

    code, out, err = _run(cli, tiny_suite, run, "--precision", "fp32")
    assert code != 0
    assert "subject_consistency (scored in bf16 precision, now fp32)" in err and "i2v_subject" in err and "--recompute" in err

    code, out, err = _run(cli, tiny_suite, run, "--precision", "fp32", "--recompute")
    assert code == 0, err
    fp32_board = pd.read_csv(run / "leaderboard.csv").loc[0]
    assert pd.isna(fp32_board["bf16_metrics"])
    for score in ("subject_consistency", "i2v_subject"):
        assert bf16_board[score] == pytest.approx(fp32_board[score], abs=2.0)  # percent

    with sqlite3.connect(run / "run.sqlite") as conn:  # as a store from before precisions were recorded
        conn.execute("UPDATE metrics SET precision = NULL")
    code, out, err = _run(cli, tiny_suite, run, "--precision", "fp32")
    assert code != 0 and "subject_consistency (scored in unknown precision, now fp32)" in err
    assert "temporal_flickering" not in err  # never ran in bf16: its old scores are fp32


def test_a_store_from_before_precisions_were_recorded_opens_and_accepts_new_scores(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    conn = sqlite3.connect(run / "run.sqlite")
    conn.execute("CREATE TABLE metrics (metric TEXT PRIMARY KEY, metric_group TEXT, status TEXT NOT NULL, "
                 "reason TEXT, specs TEXT NOT NULL, updated_at REAL NOT NULL)")
    conn.execute("INSERT INTO metrics VALUES ('clip_score', 'text_alignment', 'ran', NULL, '[]', 0)")
    conn.commit()
    conn.close()
    with RunStore(run) as store:
        assert store.metric_info()["clip_score"]["precision"] is None
        store.set_metric_status("clip_score", "text_alignment", "ran", [], precision="bf16")
        assert store.metric_info()["clip_score"]["precision"] == "bf16"
