"""``load_unet`` reads diffusers-layout folders, shards, training checkpoints, and nothing executable."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from ci2v_helpers import FIXTURES, random_unet
from safetensors.torch import save_file

from i2vbench.consisti2v import CheckpointMismatch, ConsistI2VUNet, load_unet


@pytest.fixture(scope="module")
def source() -> ConsistI2VUNet:
    return random_unet(seed=4)


def write_config(folder: Path, unet: ConsistI2VUNet) -> None:
    config = {f.name: getattr(unet.config, f.name) for f in dataclasses.fields(unet.config) if f.name != "extra"}
    config["_class_name"] = "VideoLDMUNet3DConditionModel"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))


def tensors(unet: ConsistI2VUNet) -> dict[str, torch.Tensor]:
    return {k: v.clone().contiguous() for k, v in unet.state_dict().items()}


def assert_same_weights(loaded: ConsistI2VUNet, source: ConsistI2VUNet) -> None:
    expected = source.state_dict()
    got = loaded.state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key].to(value.dtype), value), key


def test_loads_a_diffusers_unet_folder(tmp_path, source):
    write_config(tmp_path, source)
    save_file(tensors(source), tmp_path / "diffusion_pytorch_model.safetensors")
    loaded = load_unet(tmp_path)
    assert_same_weights(loaded, source)
    assert not loaded.training


def test_loads_the_unet_subfolder_of_a_pipeline_folder(tmp_path, source):
    write_config(tmp_path / "unet", source)
    save_file(tensors(source), tmp_path / "unet" / "diffusion_pytorch_model.safetensors")
    assert_same_weights(load_unet(tmp_path), source)


def test_loads_sharded_safetensors(tmp_path, source):
    write_config(tmp_path, source)
    state = tensors(source)
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, shard_keys in shards.items():
        save_file({k: state[k] for k in shard_keys}, tmp_path / name)
    weight_map = {k: name for name, shard_keys in shards.items() for k in shard_keys}
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert_same_weights(load_unet(tmp_path), source)


def test_loads_a_training_checkpoint_with_module_prefix(tmp_path, source):
    write_config(tmp_path, source)
    torch.save({"module." + k: v for k, v in tensors(source).items()}, tmp_path / "checkpoint.pt")
    assert_same_weights(load_unet(tmp_path / "checkpoint.pt"), source)


def test_half_precision_keeps_rotary_frequencies_in_float32(tmp_path, source):
    write_config(tmp_path, source)
    save_file(tensors(source), tmp_path / "diffusion_pytorch_model.safetensors")
    loaded = load_unet(tmp_path, dtype=torch.bfloat16)
    assert loaded.conv_in.weight.dtype == torch.bfloat16
    freqs = loaded.down_blocks[0].tempo_attns[0].transformer_blocks[0].attn1.rotary_emb.freqs
    assert freqs.dtype == torch.float32
    half = loaded.half()
    assert half.down_blocks[0].tempo_attns[0].transformer_blocks[0].attn1.rotary_emb.freqs.dtype == torch.float32


def test_missing_keys_fail_loudly(tmp_path, source):
    write_config(tmp_path, source)
    state = tensors(source)
    del state["conv_in.weight"]
    save_file(state, tmp_path / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointMismatch, match=r"1 missing \(conv_in 1; e.g. conv_in.weight\)"):
        load_unet(tmp_path)


def test_image_unet_weights_are_named_as_such(tmp_path, source):
    write_config(tmp_path, source)
    video_only = ("conv3ds", "tempo_attns", "frame_stride_embedding")
    image_only = {k: v for k, v in tensors(source).items() if not any(m in k for m in video_only)}
    save_file(image_only, tmp_path / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointMismatch) as error:
        load_unet(tmp_path)
    message = str(error.value)
    assert "look like the weights of an image UNet" in message
    assert "tempo_attns" in message and "conv3ds" in message and "frame_stride_embedding 4" in message
    assert len(message) < 1000  # counts by module and a few examples, not every key

    no_temporal_attention = {k: v for k, v in tensors(source).items() if "tempo_attns" not in k}
    save_file(no_temporal_attention, tmp_path / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointMismatch, match=r"missing \(tempo_attns \d+;.*Only temporal layers are missing: "
                                                  r"the file is incomplete"):
        load_unet(tmp_path)


def test_weights_of_another_size_than_their_config_say_so(tmp_path, source):
    write_config(tmp_path, source)
    config = json.loads((tmp_path / "config.json").read_text())
    config["cross_attention_dim"] = 24
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file(tensors(source), tmp_path / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointMismatch, match=r"of another shape \(e.g. [^)]*attn2.to_k.weight: \(32, 16\) in the "
                                                  r"file, \(32, 24\) expected.*describes another network"):
        load_unet(tmp_path)


def test_a_file_of_another_model_is_refused_whole(tmp_path, source):
    write_config(tmp_path, source)
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2)}, tmp_path / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointMismatch, match="1 unexpected .*No key of the file belongs to this UNet"):
        load_unet(tmp_path)


def test_folder_without_weights_names_the_expected_files(tmp_path, source):
    write_config(tmp_path, source)
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model.safetensors"):
        load_unet(tmp_path)


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="ConsistI2V golden fixtures not found")
def test_loads_the_reference_tiny_checkpoint_strictly(tmp_path):
    (tmp_path / "config.json").write_text((FIXTURES / "unet_tiny_config.json").read_text())
    (tmp_path / "diffusion_pytorch_model.safetensors").symlink_to(FIXTURES / "unet_tiny_weights.safetensors")
    loaded = load_unet(tmp_path)
    assert loaded.config.attention_head_dim == (2, 4, 8, 16)
    assert len(loaded.state_dict()) == 1393


def test_unexpected_keys_fail_loudly(tmp_path, source):
    folder = tmp_path / "unet"
    write_config(folder, source)
    extra = {**tensors(source), "down_blocks.0.first_frame_conv.weight": torch.zeros(4, 4, 1, 1)}
    save_file(extra, folder / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointMismatch, match="1 unexpected .*first_frame_conv"):
        load_unet(folder)


def test_a_config_without_the_first_frame_window_is_reported():
    from i2vbench.consisti2v import UNetConfig

    with pytest.warns(UserWarning, match="augment_temporal_attention is false.*building the first-frame window"):
        UNetConfig.from_json({"augment_temporal_attention": False})


@pytest.mark.parametrize("saved, warns", [
    ({"beta_schedule": "linear", "clip_sample": False, "steps_offset": 1}, False),
    ({"beta_schedule": "scaled_linear"}, True),
    ({"clip_sample": True}, True),
    ({"set_alpha_to_one": False}, True),
])
def test_a_saved_scheduler_config_that_differs_is_reported_and_the_official_one_used(tmp_path, saved, warns):
    import warnings

    from i2vbench.consisti2v.pipeline import scheduler_from_config

    (tmp_path / "scheduler_config.json").write_text(json.dumps(saved))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler = scheduler_from_config(tmp_path)
    assert bool([w for w in caught if "differs from the official" in str(w.message)]) == warns
    assert scheduler.timesteps(50)[:2] == [981, 961] and float(scheduler.final_alpha_cumprod) == 1.0


@pytest.mark.parametrize("text, message", [
    ("<html>rate limited</html>", "is not valid JSON .*damaged; fetch it again"),
    ("[1, 2]", "holds a JSON list, not the UNet's settings"),
    ('{"block_out_channels": [32, 64], "attention_head_dim": [1, 2, 4]}', "does not describe a ConsistI2V UNet: "
                                                                         "attention_head_dim has 3 entries"),
])
def test_a_damaged_config_is_refused_naming_the_file(tmp_path, source, text, message):
    save_file(tensors(source), tmp_path / "diffusion_pytorch_model.safetensors")
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_unet(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value)


def _layout(root: Path) -> Path:
    """Empty stand-ins for every file the released layout needs, the UNet sharded in two."""
    for name in ("unet/config.json", "unet/a.safetensors", "unet/b.safetensors", "vae/config.json",
                 "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json", "text_encoder/model.safetensors",
                 "tokenizer/vocab.json", "tokenizer/merges.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    index = {"weight_map": {"conv_in.weight": "a.safetensors", "conv_out.weight": "b.safetensors"}}
    (root / "unet" / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    return root


def test_a_folder_is_checked_file_by_file_before_loading(tmp_path):
    from i2vbench.consisti2v import folder

    root = _layout(tmp_path / "w")
    assert folder.problems(root) == []
    (root / "unet" / "b.safetensors").unlink()  # an interrupted download: the index came, one shard did not
    (root / "tokenizer" / "merges.txt").unlink()
    assert folder.problems(root) == [
        "unet/ lacks the shard(s) b.safetensors that diffusion_pytorch_model.safetensors.index.json names",
        "tokenizer/ lacks vocab.json+merges.txt or tokenizer.json"]
    (root / "unet" / "diffusion_pytorch_model.safetensors.index.json").write_text("{")
    (root / "tokenizer" / "tokenizer.json").write_text("{}")  # a fast tokenizer alone will do
    assert folder.problems(root) == ["unet/ lacks a readable diffusion_pytorch_model.safetensors.index.json (it is "
                                     "damaged)"]
    assert folder.problems(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'} does not exist"]
