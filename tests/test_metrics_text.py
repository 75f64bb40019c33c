"""Text-alignment metrics (overall / object / scene consistency), imaging quality and LPIPS: VBench's frame
sampling and success rules on constructed inputs, ViCLIP's key set against the released checkpoint's, tiny
OWLv2 / BLIP models of the real transformers classes loaded from a fake Hugging Face cache, and metrics that
say how to fetch their weights instead of scoring without them."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import hf_snapshot, url_weight_path
from PIL import Image

from i2vbench.metrics import (
    EvalItem,
    FeatureCache,
    get_metric,
    imaging_quality,
    object_consistency,
    overall_consistency,
    scene_consistency,
)
from i2vbench.metrics.backbones import clip_frames
from i2vbench.metrics.lpips import LPIPSAlex, load_lpips, to_lpips_input
from i2vbench.metrics.object_consistency import object_detected
from i2vbench.metrics.overall_consistency import middle_indices
from i2vbench.metrics.scene_consistency import caption_mentions
from i2vbench.metrics.viclip import ViCLIP, ViCLIPConfig, load_viclip
from i2vbench.suite import Case
from i2vbench.video import Video

TINY_VICLIP = ViCLIPConfig(patch_size=56, vision_width=32, vision_layers=1, vision_heads=2, embed_dim=16,
                           text_width=32, text_layers=1, text_heads=2)


def make_item(tmp_path: Path, name: str, frames: np.ndarray, prompt: str = "a cat on a beach",
              object: str | None = "cat", scene: str | None = "beach") -> EvalItem:
    path = tmp_path / f"{name}.png"
    Image.fromarray(frames[0]).save(path)
    case = Case(id=name, image=path, prompt=prompt, category="test", object=object, scene=scene)
    return EvalItem(case, Video(frames, fps=8))


def numbered_frames(t: int, h: int = 40, w: int = 56) -> np.ndarray:
    """Frame i is filled with the value i (so a stub model can tell which frames it was given)."""
    return np.broadcast_to(np.arange(t, dtype=np.uint8)[:, None, None, None], (t, h, w, 3)).copy()


def random_frames(t: int, h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ frame sampling

@pytest.mark.parametrize("samples, length, expected", [
    (16, 16, list(range(16))),
    (8, 16, [0, 2, 4, 6, 8, 10, 12, 14]),
    (8, 17, [0, 2, 4, 6, 8, 10, 12, 15]),  # edges 0,2,4,...,14,17: the last run is 14..16
    (8, 25, [1, 4, 7, 10, 13, 16, 19, 22]),  # edges 0,3,6,9,12,15,18,21,25
    (16, 5, [0, 1, 2, 3, 4] + [4] * 11),  # shorter videos are padded with their last frame
    (8, 1, [0] * 8),
])
def test_middle_sampling_is_vbench_get_frame_indices(samples, length, expected):
    assert middle_indices(samples, length) == expected


# ------------------------------------------------------------------------------------------ ViCLIP network

def released_viclip_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of ``ViClip-InternVid-10M-FLT.pth["model"]``, written from InternVideo's viclip code
    (``ViCLIP`` loads it with ``load_state_dict`` strict): ViT-L/14 vision tower over 8 frames with output 768,
    CLIP-L text tower with a 32-token context, and the temperature."""
    shapes: dict[str, tuple[int, ...]] = {"temp": ()}

    def blocks(prefix: str, width: int, layers: int) -> None:
        for i in range(layers):
            p = f"{prefix}.transformer.resblocks.{i}."
            shapes.update({
                p + "attn.in_proj_weight": (3 * width, width), p + "attn.in_proj_bias": (3 * width,),
                p + "attn.out_proj.weight": (width, width), p + "attn.out_proj.bias": (width,),
                p + "ln_1.weight": (width,), p + "ln_1.bias": (width,),
                p + "mlp.c_fc.weight": (4 * width, width), p + "mlp.c_fc.bias": (4 * width,),
                p + "mlp.c_proj.weight": (width, 4 * width), p + "mlp.c_proj.bias": (width,),
                p + "ln_2.weight": (width,), p + "ln_2.bias": (width,),
            })

    v = "vision_encoder"
    shapes.update({f"{v}.class_embedding": (1024,), f"{v}.positional_embedding": (257, 1024),
                   f"{v}.temporal_positional_embedding": (1, 8, 1024), f"{v}.conv1.weight": (1024, 3, 1, 14, 14),
                   f"{v}.ln_pre.weight": (1024,), f"{v}.ln_pre.bias": (1024,), f"{v}.ln_post.weight": (1024,),
                   f"{v}.ln_post.bias": (1024,), f"{v}.proj": (1024, 768)})
    blocks(v, 1024, 24)
    t = "text_encoder"
    shapes.update({f"{t}.positional_embedding": (32, 768), f"{t}.token_embedding.weight": (49408, 768),
                   f"{t}.ln_final.weight": (768,), f"{t}.ln_final.bias": (768,), f"{t}.text_projection": (768, 768)})
    blocks(t, 768, 12)
    return shapes


def test_viclip_has_the_released_checkpoint_keys_and_shapes():
    with torch.device("meta"):
        model = ViCLIP()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    released = released_viclip_shapes()
    assert set(ours) == set(released), (set(ours) ^ set(released))
    assert ours == released
    assert len(released) == 1 + 9 + 24 * 12 + 5 + 12 * 12 == 447
    # vision 24 x (12 W^2 + 13 W) + 1,665,024 = 303,974,400 (W 1024); text 12 x (12 W^2 + 13 W) + 38,561,280 =
    # 123,615,744 (W 768); temp 1
    assert sum(math.prod(s) for s in released.values()) == 427_590_145


def test_released_size_checkpoint_loads_strictly_through_the_metric(weight_cache):
    snapshot = hf_snapshot(weight_cache, "OpenGVLab/ViCLIP")
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=gen, dtype=torch.float16) for k, s in released_viclip_shapes().items()}
    torch.save({"model": state, "epoch": 9}, snapshot / "ViClip-InternVid-10M-FLT.pth")
    metric = get_metric("overall_consistency")()
    assert metric.unavailable_reason() is None
    model = metric.network()
    loaded = model.state_dict()
    for key in ("temp", "vision_encoder.proj", "text_encoder.token_embedding.weight",
                "vision_encoder.transformer.resblocks.23.mlp.c_proj.bias"):
        assert loaded[key].dtype == torch.float32 and torch.equal(loaded[key], state[key].float())
    del state["vision_encoder.temporal_positional_embedding"]
    with pytest.raises(RuntimeError, match="temporal_positional_embedding"):
        load_viclip({"model": state})


def test_viclip_scores_each_video_of_a_batch_on_its_own_frames_in_order():
    torch.manual_seed(0)
    model = ViCLIP(TINY_VICLIP).eval()
    torch.nn.init.normal_(model.vision_encoder.temporal_positional_embedding)
    videos = torch.randn(3, 8, 3, 224, 224)
    with torch.no_grad():
        batched = model.encode_vision(videos)
        single = torch.cat([model.encode_vision(v[None]) for v in videos])
        reversed_frames = model.encode_vision(videos[:1].flip(1))
    assert batched.shape == (3, 16)
    assert torch.allclose(batched, single, atol=1e-5)  # VBench's class token is taken from video 0: not here
    assert not torch.allclose(batched[:1], reversed_frames, atol=1e-3)  # the temporal embedding sees frame order


def test_viclip_text_reads_the_end_of_text_token():
    torch.manual_seed(0)
    model = ViCLIP(TINY_VICLIP).eval()
    tokens = overall_consistency.tokenize(["a cat", "a cat on a beach"], 32)
    assert tokens.shape == (2, 32) and tokens[0, :4].tolist() == [49406, 320, 2368, 49407]
    with torch.no_grad():
        feats = model.encode_text(tokens)
        padded_differently = model.encode_text(torch.cat([tokens[:1, :4], torch.zeros(1, 28, dtype=torch.long)], 1))
    assert torch.allclose(feats[:1], padded_differently)  # causal: padding after the end token never matters
    long = overall_consistency.tokenize(["word " * 50], 32)[0]
    assert long[-1] == 49407 and long[0] == 49406  # truncated to 32 with the end token kept


# ------------------------------------------------------------------------------------------ overall consistency

def pixel_key(clip: torch.Tensor) -> int:
    """A video's identity for the stub below: its first preprocessed value, rounded."""
    return int(round(float(clip[0, 0, 0, 0]) * 1000))


class StubViCLIP:
    config = ViCLIPConfig()

    def __init__(self, degrees: dict[int, float]) -> None:
        self.degrees, self.seen = degrees, []

    def encode_vision(self, videos: torch.Tensor) -> torch.Tensor:
        self.seen.append(videos.shape)
        angle = torch.tensor([self.degrees[pixel_key(v)] for v in videos])
        return 3 * torch.stack([torch.cos(torch.deg2rad(angle)), torch.sin(torch.deg2rad(angle))], -1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        assert tokens.shape[1] == 32
        return torch.tensor([[2.0, 0.0]]).expand(len(tokens), 2)


def test_overall_consistency_is_the_raw_cosine_of_video_and_prompt(tmp_path, monkeypatch):
    items = [make_item(tmp_path, f"v{i}", numbered_frames(16) + 10 * i) for i in range(3)]
    keys = {pixel_key(clip_frames(torch.from_numpy(it.video.frames[:1]).permute(0, 3, 1, 2))): d
            for it, d in zip(items, (0, 60, 120))}
    stub = StubViCLIP(keys)
    metric = get_metric("overall_consistency")()
    monkeypatch.setattr(metric, "network", lambda: stub)
    results = metric.score(items, FeatureCache())
    assert [r.values["overall_consistency"] for r in results] == pytest.approx([1.0, 0.5, -0.5])  # not clamped
    assert all(tuple(shape[1:]) == (8, 3, 224, 224) for shape in stub.seen) and sum(s[0] for s in stub.seen) == 3


def test_overall_consistency_end_to_end_with_a_tiny_viclip(weight_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(overall_consistency, "VICLIP_CONFIG", TINY_VICLIP)
    torch.manual_seed(1)
    reference = ViCLIP(TINY_VICLIP).eval()
    snapshot = hf_snapshot(weight_cache, "OpenGVLab/ViCLIP")
    torch.save({"model": reference.state_dict()}, snapshot / "ViClip-InternVid-10M-FLT.pth")
    items = [make_item(tmp_path, "a", random_frames(16, seed=1), prompt="a dog runs"),
             make_item(tmp_path, "b", random_frames(5, seed=2), prompt="waves on a beach")]
    results = get_metric("overall_consistency")().score(items, FeatureCache())
    for item, result in zip(items, results):
        frames = item.video.frames[middle_indices(8, item.video.num_frames)]
        clip = clip_frames(torch.from_numpy(frames).permute(0, 3, 1, 2))[None]
        with torch.no_grad():
            v = reference.encode_vision(clip)
            t = reference.encode_text(overall_consistency.tokenize([item.case.prompt], 32))
        assert result.values["overall_consistency"] == pytest.approx(float(F.cosine_similarity(v, t)), abs=1e-5)


# ------------------------------------------------------------------------------------------ object / scene rules

def test_object_is_detected_strictly_above_the_threshold():
    assert object_consistency.DETECTION_THRESHOLD == 0.1
    assert object_detected(torch.tensor([0.05, 0.0999, 0.1001, 0.9])) == [False, False, True, True]
    assert object_detected(torch.tensor([0.1], dtype=torch.float64)) == [False]


@pytest.mark.parametrize("caption, scene, expected", [
    ("a dog running on the beach", "beach", True),
    ("a dog running on the sand", "beach", False),
    ("people walking on beaches at dusk", "beach", True),  # substring, as VBench's `q in caption`
    ("a snowy mountain under a blue sky", "snowy mountain", True),
    ("a mountain under a blue sky", "snowy mountain", False),  # every word must appear
    ("A Beach With Palm Trees", "beach", True),
])
def test_scene_needs_every_word_of_the_label_in_the_caption(caption, scene, expected):
    assert caption_mentions(caption, scene) is expected


def test_object_consistency_is_frame_weighted_over_16_middle_frames(tmp_path, monkeypatch):
    asked = []

    def stub_scores(model, processor, frames, queries, device):
        asked.extend(queries)
        return torch.tensor([0.5 if int(f[0, 0, 0]) % 2 == 0 else 0.01 for f in frames])  # even frames: detected

    monkeypatch.setattr(object_consistency, "detection_scores", stub_scores)
    metric = get_metric("object_consistency")()
    monkeypatch.setattr(metric, "network", lambda: (None, None))
    long, short = make_item(tmp_path, "long", numbered_frames(32)), make_item(tmp_path, "short", numbered_frames(4))
    res_long, res_short = metric.score([long, short], FeatureCache())
    # 32 frames -> indices 0, 2, ..., 30 (all even); 4 frames -> 0, 1, 2, 3, 3, ..., 3 (2 even of 16)
    assert res_long.values["object_consistency"] == 1.0
    assert res_short.values["object_consistency"] == pytest.approx(2 / 16)
    assert list(res_short.frame_values["object_consistency"]) == [1, 0, 1] + [0] * 13
    assert set(asked) == {"a photo of a cat"} and len(asked) == 32
    assert metric.scores[0].frame_weighted and metric.group == "text_alignment"


def test_scene_consistency_checks_each_frames_caption(tmp_path, monkeypatch):
    captions = {0: "a beach with waves", 1: "a dog on the sand"}
    monkeypatch.setattr(scene_consistency, "caption_frames",
                        lambda model, processor, frames, device: [captions[int(f[0, 0, 0]) % 2] for f in frames])
    metric = get_metric("scene_consistency")()
    monkeypatch.setattr(metric, "network", lambda: (None, None))
    (result,) = metric.score([make_item(tmp_path, "s", numbered_frames(16))], FeatureCache())
    assert list(result.frame_values["scene_consistency"]) == [1, 0] * 8
    assert result.values["scene_consistency"] == 0.5


@pytest.mark.parametrize("name, field", [("object_consistency", "object"), ("scene_consistency", "scene")])
def test_a_case_without_its_label_is_an_error_not_a_number(tmp_path, monkeypatch, name, field):
    monkeypatch.setattr(object_consistency, "detection_scores", lambda m, p, frames, q, d: torch.ones(len(frames)))
    monkeypatch.setattr(scene_consistency, "caption_frames", lambda m, p, frames, d: ["a cat on a beach"] * len(frames))
    metric = get_metric(name)()
    monkeypatch.setattr(metric, "network", lambda: (None, None))
    unlabelled = make_item(tmp_path, "bare", numbered_frames(8), **{field: None})
    blank = make_item(tmp_path, "blank", numbered_frames(8), **{field: "  "})
    labelled = make_item(tmp_path, "ok", numbered_frames(8))
    bare, empty, ok = metric.score([unlabelled, blank, labelled], FeatureCache())
    for result in (bare, empty):
        assert result.error and not result.values and f'"{field}"' in result.error and "suite" in result.error
    assert ok.error is None and ok.values[name] == 1.0


# ------------------------------------------------------------------------------------------ tiny OWLv2 / BLIP

def clip_bpe_tokenizer():
    """The OpenAI CLIP BPE (OWLv2's tokenizer) as a transformers CLIPTokenizer, from the vocabulary open_clip ships."""
    import open_clip
    from transformers import CLIPTokenizer

    bpe = open_clip.tokenizer.SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(token, token): i for token, i in bpe.encoder.items()}
    merges = [pair for pair, _ in sorted(bpe.bpe_ranks.items(), key=lambda kv: kv[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges)


def save_tiny_owlv2(snapshot: Path) -> None:
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    torch.manual_seed(0)
    text = dict(vocab_size=49408, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=16, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    config = Owlv2Config(text_config=text, vision_config=vision, projection_dim=16)
    Owlv2ForObjectDetection(config).save_pretrained(snapshot)
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 32, "width": 32}),
                   tokenizer=clip_bpe_tokenizer()).save_pretrained(snapshot)


BLIP_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]", "a", "picture", "of", "the", "on",
              "beach", "room", "dog", "cat", "in", "sunny", "sky", "with"]


def save_tiny_blip(snapshot: Path) -> None:
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    torch.manual_seed(0)
    ids = {w: i for i, w in enumerate(BLIP_WORDS)}
    text = dict(vocab_size=len(ids), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=64, bos_token_id=ids["[DEC]"], sep_token_id=ids["[SEP]"],
                eos_token_id=ids["[SEP]"], pad_token_id=ids["[PAD]"], encoder_hidden_size=16)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=16)
    BlipForConditionalGeneration(config).save_pretrained(snapshot)
    tokenizer = BertTokenizer(vocab=ids, bos_token="[DEC]", additional_special_tokens=["[ENC]"])
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(snapshot)


def test_tiny_owlv2_runs_end_to_end_from_the_cache(weight_cache, tmp_path):
    metric = get_metric("object_consistency")()
    assert "i2vbench weights fetch owlv2_base_ensemble" in metric.unavailable_reason()
    save_tiny_owlv2(hf_snapshot(weight_cache, "google/owlv2-base-patch16-ensemble"))
    assert metric.unavailable_reason() is None
    items = [make_item(tmp_path, "a", random_frames(16, seed=3)), make_item(tmp_path, "b", random_frames(20, seed=4),
                                                                          object="dog")]
    results = metric.score(items, FeatureCache())
    model, processor = metric.network()
    assert type(model).__name__ == "Owlv2ForObjectDetection" and not model.training
    for item, result in zip(items, results):
        frames = item.video.frames[middle_indices(16, item.video.num_frames)]
        inputs = processor(text=[[f"a photo of a {item.case.object}"]] * 16, images=list(frames), return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits
        expected = (torch.sigmoid(logits.amax(dim=(1, 2))) > 0.1).float().tolist()
        assert list(result.frame_values["object_consistency"]) == expected
        assert result.values["object_consistency"] == pytest.approx(sum(expected) / 16)


@pytest.mark.parametrize("name, repo, save", [("object_consistency", "google/owlv2-base-patch16-ensemble", "owlv2"),
                                               ("scene_consistency", "Salesforce/blip-image-captioning-base", "blip")])
@pytest.mark.parametrize("lost", ["*processor_config.json", "tokenizer_config.json", "model.safetensors"])
def test_a_snapshot_without_its_processor_files_is_unavailable(weight_cache, name, repo, save, lost):
    snapshot = hf_snapshot(weight_cache, repo)
    {"owlv2": save_tiny_owlv2, "blip": save_tiny_blip}[save](snapshot)
    for path in snapshot.glob(lost):
        path.unlink()
    reason = get_metric(name)().unavailable_reason()
    assert reason is not None and "incomplete" in reason and "i2vbench weights fetch" in reason


def test_tiny_blip_runs_end_to_end_from_the_cache(weight_cache, tmp_path):
    metric = get_metric("scene_consistency")()
    assert "i2vbench weights fetch blip_caption_base" in metric.unavailable_reason()
    save_tiny_blip(hf_snapshot(weight_cache, "Salesforce/blip-image-captioning-base"))
    assert metric.unavailable_reason() is None
    item = make_item(tmp_path, "a", random_frames(10, seed=5), scene="beach")
    (result,) = metric.score([item], FeatureCache())
    model, processor = metric.network()
    frames = item.video.frames[middle_indices(16, 10)]
    captions = scene_consistency.caption_frames(model, processor, list(frames), "cpu")
    assert len(captions) == 16 and not any(c.startswith("a picture of") for c in captions)
    assert all(len(c.split()) >= 1 for c in captions)  # min_length 10 tokens: the tiny model says something
    assert list(result.frame_values["scene_consistency"]) == [float(caption_mentions(c, "beach")) for c in captions]


def test_an_incomplete_snapshot_is_unavailable(weight_cache):
    (hf_snapshot(weight_cache, "google/owlv2-base-patch16-ensemble") / "config.json").write_text("{}")
    reason = get_metric("object_consistency")().unavailable_reason()
    assert "incomplete" in reason and "i2vbench weights fetch owlv2_base_ensemble" in reason


def test_metrics_without_weights_are_unavailable_with_the_fetch_command(weight_cache):
    for name, weight in (("overall_consistency", "viclip_l14"), ("object_consistency", "owlv2_base_ensemble"),
                         ("scene_consistency", "blip_caption_base")):
        assert f"i2vbench weights fetch {weight}" in get_metric(name)().unavailable_reason()
    reason = get_metric("imaging_quality")().unavailable_reason()
    if importlib.util.find_spec("pyiqa") is None:
        assert "pip install pyiqa" in reason
    assert "i2vbench weights fetch musiq_spaq" in reason


# ------------------------------------------------------------------------------------------ imaging quality

@pytest.mark.parametrize("hw, expected", [((300, 400), (300, 400)), ((300, 600), (256, 512)),
                                          ((720, 1280), (288, 512)), ((1000, 700), (512, 358))])
def test_imaging_quality_limits_the_longer_side_to_512(hw, expected):
    frames = torch.full((2, 3, *hw), 255, dtype=torch.uint8)
    out = imaging_quality.limit_longer_side(frames)
    assert tuple(out.shape[-2:]) == expected and out.dtype == torch.float32
    assert torch.allclose(out, torch.ones_like(out))


def test_imaging_quality_is_the_frame_mean_over_100(tmp_path, monkeypatch):
    class StubMusiq(torch.nn.Module):
        def forward(self, x):  # MUSIQ-like 0-100 score: 100 x mean brightness
            return 100 * x.mean(dim=(1, 2, 3))[:, None]

    metric = get_metric("imaging_quality")()
    metric._network = StubMusiq()
    frames = np.stack([np.full((20, 30, 3), v, np.uint8) for v in (0, 51, 255)])
    (result,) = metric.score([make_item(tmp_path, "iq", frames)], FeatureCache())
    assert result.values["imaging_quality"] == pytest.approx((0 + 0.2 + 1) / 3)


# ------------------------------------------------------------------------------------------ LPIPS

def patterned(shape, phase: float, scale: float) -> torch.Tensor:
    """Deterministic weights without a random generator (the same on every torch version)."""
    n = math.prod(shape)
    return (torch.sin(torch.arange(n, dtype=torch.float64) * 0.7 + phase) * scale).float().reshape(shape)


def lpips_checkpoints() -> tuple[dict, dict]:
    """(alex.pth-like heads, torchvision-AlexNet-like trunk with its classifier) with patterned values."""
    from torchvision.models import alexnet

    full = alexnet().state_dict()
    feats = [(k, v) for k, v in full.items() if k.startswith("features.")]
    trunk = {k: patterned(v.shape, i, 0.05) for i, (k, v) in enumerate(feats)}
    trunk.update({k: torch.zeros_like(v) for k, v in full.items() if k.startswith("classifier.")})
    heads = {f"lin{k}.model.1.weight": patterned((1, c, 1, 1), k, 0.1).abs()
             for k, c in enumerate((64, 192, 384, 256, 256))}
    return heads, trunk


def lpips_images() -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    a = torch.stack([(xx * 7 + yy * 3) % 256, (xx * 2 + yy * 9) % 256, (xx * yy) % 256], -1).to(torch.uint8)
    b = torch.stack([(xx * 5 + yy * 3) % 256, (xx * 2 + yy * 11) % 256, (xx + yy) % 256], -1).to(torch.uint8)
    return torch.stack([a, a, b]), torch.stack([b, a, a.flip(0)])


def test_lpips_network_has_the_lpips_package_and_torchvision_keys():
    keys = set(LPIPSAlex().state_dict())
    heads = {f"lin{k}.model.1.weight" for k in range(5)}  # lpips/weights/v0.1/alex.pth
    trunk = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}  # alexnet-owt-7be5be79.pth
    assert keys == heads | trunk


def test_lpips_matches_the_lpips_package_on_patterned_weights():
    # Golden values from lpips 0.1.4 (LPIPS(net="alex", version="0.1")) with the same patterned weights and images.
    model = load_lpips(*lpips_checkpoints())
    first, second = lpips_images()
    with torch.no_grad():
        distance = model(to_lpips_input(first), to_lpips_input(second))
    assert distance.tolist() == pytest.approx([0.12695489823818207, 0.0, 0.14423879981040955], abs=1e-6)


def test_frame0_fidelity_without_lpips_weights_declares_only_psnr_and_ssim(weight_cache, tmp_path):
    metric = get_metric("frame0_fidelity")()
    assert [s.name for s in metric.scores] == ["frame0_ssim", "frame0_psnr"]
    (result,) = metric.score([make_item(tmp_path, "f", random_frames(2, 48, 64))], FeatureCache())
    assert set(result.values) == {"frame0_ssim", "frame0_psnr"}


def test_frame0_fidelity_adds_lpips_when_its_weights_are_cached(weight_cache, tmp_path):
    heads, trunk = lpips_checkpoints()
    for name, filename, state in (("lpips_alex", "alex.pth", heads),
                                  ("alexnet_imagenet", "alexnet-owt-7be5be79.pth", trunk)):
        torch.save(state, url_weight_path(weight_cache, name, filename))
    metric = get_metric("frame0_fidelity")()
    spec = metric.scores[-1]
    assert spec.name == "frame0_lpips" and not spec.higher_is_better and spec.unit == "fraction"
    first, second = lpips_images()
    frames = np.stack([first[2].numpy(), second[2].numpy()])
    items = [make_item(tmp_path, "same", frames), make_item(tmp_path, "tiny", random_frames(2, 24, 24))]
    same, tiny = metric.score(items, FeatureCache())
    assert same.values["frame0_lpips"] == pytest.approx(0.0, abs=1e-7)  # frame 0 is the input image
    assert "frame0_lpips" not in tiny.values and "frame0_psnr" in tiny.values  # too small for AlexNet
    items[0].video.frames[0] = second[2].numpy()  # the golden pair of test_lpips_matches_the_lpips_package
    (moved,) = metric.score(items[:1], FeatureCache())
    assert moved.values["frame0_lpips"] == pytest.approx(0.14423879981040955, abs=1e-6)
