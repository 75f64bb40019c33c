"""ConsistI2V through the adapter and the CLI, with a tiny random-weight folder in the released layout."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_consisti2v import write_pipeline

from i2vbench.adapters.consisti2v import ConsistI2VAdapter, chunks_for
from i2vbench.consisti2v.pipeline import camera_frames
from i2vbench.errors import ConfigError
from i2vbench.store import RunStore
from i2vbench.suite import load_suite

FAST = {"steps": 2, "dtype": "float32", "device": "cpu", "height": 128, "width": 128}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return write_pipeline(tmp_path_factory.mktemp("consisti2v"))


@pytest.fixture(scope="module")
def mini():
    return load_suite("i2vbench-mini")


def test_first_frame_is_the_vae_reconstruction_of_the_input(tiny_folder, mini):
    adapter = ConsistI2VAdapter(weights=str(tiny_folder), **FAST)
    case = mini.get("astronaut")
    video = adapter.generate([case], seeds=[7])[0]
    assert video.frames.shape == (16, 128, 128, 3) and video.fps == 8
    pipe = adapter.pipeline
    pixels = pipe.preprocess(case.load_image(), 128, 128)[None, None]
    z1 = pipe.encode_frames(pixels, [torch.Generator().manual_seed(7)])
    recon = pipe.decode(z1)[0, 0]
    assert np.abs(recon.astype(int) - video.frames[0]).max() <= 1
    assert np.abs(video.frames[1:].astype(int) - recon).mean() > 1  # the other frames were denoised, not copied


def test_batch_of_two_equals_two_single_runs(tiny_folder, mini):
    adapter = ConsistI2VAdapter(weights=str(tiny_folder), **{**FAST, "height": 64, "width": 64})
    cases = [mini.get("astronaut"), mini.get("coffee")]
    together = adapter.generate(cases, seeds=[1, 2])
    alone = [adapter.generate([c], seeds=[s])[0] for c, s in zip(cases, (1, 2))]
    for a, b in zip(together, alone):
        assert np.abs(a.frames.astype(int) - b.frames).max() <= 1
    again = adapter.generate(cases[:1], seeds=[1])[0]
    assert np.array_equal(again.frames, alone[0].frames)  # bit-identical rerun on the same device
    other = adapter.generate(cases[:1], seeds=[3])[0]
    assert not np.array_equal(other.frames, alone[0].frames)


@pytest.mark.parametrize("settings", [
    {"noise_method": "vanilla", "frameinit": False},
    {"noise_method": "pyoco_progressive", "frameinit_filter_type": "butterworth", "guidance_scale_img": 1.5},
    {"camera_motion": "zoom_out", "frameinit_filter_type": "box", "frameinit_noise_level": 700},
])
def test_sampling_options_run(tiny_folder, mini, settings):
    adapter = ConsistI2VAdapter(weights=str(tiny_folder), **{**FAST, "steps": 1, "height": 64, "width": 64}, **settings)
    video = adapter.generate([mini.get("chelsea")], seeds=[0])[0]
    assert video.frames.shape == (16, 64, 64, 3)


def test_autoregressive_chunks_chain_on_the_last_frame(tiny_folder, mini):
    adapter = ConsistI2VAdapter(weights=str(tiny_folder), **{**FAST, "steps": 1, "height": 64, "width": 64}, num_frames=31)
    assert adapter.generate([mini.get("rocket")], seeds=[0])[0].frames.shape == (31, 64, 64, 3)
    assert [chunks_for(n) for n in (16, 31, 46)] == [1, 2, 3]


def test_camera_frames_move_as_asked():
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, :8] = 255  # a bright stripe at the left edge
    right = camera_frames(image, "pan_right", 64, 64, 16)
    left = camera_frames(image, "pan_left", 64, 64, 16)
    assert right.shape == (16, 3, 64, 64)
    assert right[0, :, :, :4].mean() > 0.9 and right[-1, :, :, :4].mean() < -0.9  # stripe leaves to the left
    assert left[0, :, :, :4].mean() < -0.9 and left[-1, :, :, :4].mean() > 0.9  # and comes in from the left
    square = np.zeros((80, 80, 3), np.uint8)
    square[30:50, 30:50] = 255  # a centred white square looks bigger as the camera zooms in
    zin, zout = camera_frames(square, "zoom_in", 64, 64, 16), camera_frames(square, "zoom_out", 64, 64, 16)
    assert zin.shape == zout.shape == (16, 3, 64, 64)
    white_in, white_out = (zin > 0).float().mean((1, 2, 3)), (zout > 0).float().mean((1, 2, 3))
    assert white_in[-1] > white_in[0] * 1.8 and white_out[-1] < white_out[0] / 1.8


def test_frames_encoded_in_chunks_are_those_encoded_at_once(tiny_folder):
    from i2vbench.consisti2v.pipeline import ConsistI2VPipeline

    pipe = ConsistI2VPipeline.from_pretrained(tiny_folder, dtype=torch.float32, device="cpu")
    pixels = torch.rand(2, 5, 3, 64, 64) * 2 - 1

    def encoded(chunk: int) -> torch.Tensor:
        return pipe.encode_frames(pixels, [torch.Generator().manual_seed(s) for s in (1, 2)], chunk)

    whole, parts = encoded(16), encoded(3)  # 10 frames: calls of 3, 3, 3 and 1
    assert whole.shape == (2, 4, 5, 8, 8)
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("settings, message", [
    ({"num_frames": 20}, "num_frames must be 16, 31, 46"),
    ({"height": 250}, "multiple of 8"),
    ({"camera_motion": "spin"}, "unknown camera motion 'spin'"),
    ({"camera_motion": "pan_left", "frameinit": False}, "enable FrameInit"),
    ({"camera_motion": "pan_left", "num_frames": 31}, "camera motion guides one 16-frame chunk"),
    ({"noise_method": "brownian"}, "unknown noise_method 'brownian'"),
    ({"frameinit_filter_type": "sinc"}, "unknown frameinit_filter_type 'sinc'"),
    ({"dtype": "int8"}, "dtype must be one of"),
    ({"sampler": "euler"}, "no setting 'sampler'"),
    ({"steps": "fifty"}, "setting steps must be a whole number; got 'fifty'"),
    ({"steps": 25.7}, "setting steps must be a whole number; got 25.7"),
    ({"guidance_scale_txt": True}, "setting guidance_scale_txt must be a number; got True"),
    ({"noise_method": 3}, "setting noise_method must be text; got 3"),
    ({"frame_stride": 2.5}, "frame_stride must be a whole number"),
    ({"frame_stride": 0}, "frame_stride must be at least 1"),
    ({"frameinit_noise_level": 1000}, "frameinit_noise_level must be a whole timestep from 0 to 999"),
    ({"frameinit_d_s": 0}, "frameinit_d_s and frameinit_d_t, .* must be above 0; got 0, 0.25"),
    ({"frameinit_d_t": -1.0}, "frameinit_d_s and frameinit_d_t, .* must be above 0; got 0.25, -1.0"),
    ({"frameinit_butterworth_order": 0}, "frameinit_butterworth_order must be at least 1"),
    ({"frameinit": "maybe"}, "setting frameinit must be true or false; got 'maybe'"),
    ({"frameinit": 0}, "setting frameinit must be true or false; got 0"),
    ({"steps": 1000}, "steps must be from 1 to 999"),
    ({"frameinit_filter_type": "box", "frameinit_d_s": 1.2}, "box filter's frameinit_d_s and frameinit_d_t must be at most 1"),
    ({"frameinit": False, "frameinit_filter_type": "sinc"}, "unknown frameinit_filter_type 'sinc'"),  # recorded: checked
    ({"frameinit": False, "frameinit_noise_level": 5000}, "frameinit_noise_level must be a whole timestep"),
])
def test_bad_settings_are_refused_clearly(tiny_folder, settings, message):
    with pytest.raises(ConfigError, match=message):
        ConsistI2VAdapter(weights=str(tiny_folder), **settings)


def test_missing_weights_stop_the_run_with_the_fetch_command(cli, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    base = ("--no-progress", "run", "--model", "consisti2v", "--out", tmp_path / "r", "--cases", "astronaut")
    code, _, err = cli(*base, "--set", "device=cpu")
    assert code == 2 and "i2vbench weights fetch consisti2v" in err and "TIGER-Lab/ConsistI2V" in err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = cli(*base)  # neither a GPU nor the weights: both said at once
    assert code == 2 and "no CUDA GPU is visible" in err and "\nAnd: " in err and "i2vbench weights fetch" in err
    assert not (tmp_path / "r").exists()


def test_without_diffusers_the_run_stops_before_its_folder_with_the_install_command(cli, tmp_path, tiny_folder,
                                                                                     monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if not installed
    code, _, err = cli("--no-progress", "generate", "--model", "consisti2v", "--out", tmp_path / "r",
                       "--weights", tiny_folder, "--set", "device=cpu")
    assert code == 2 and "consisti2v needs diffusers" in err and 'pip install -e ".[consisti2v]"' in err
    assert not (tmp_path / "r").exists()


def test_a_weights_folder_named_like_a_number_is_a_folder_and_recorded_absolute(cli, tmp_path, tiny_folder, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_folder, tmp_path / "2024")
    code, _, err = cli("--no-progress", "generate", "--model", "consisti2v", "--out", tmp_path / "r", "--cases", "astronaut",
                       "--set", "weights=2024", "--set", "device=cpu", "--set", "steps=1", "--set", "height=64",
                       "--set", "width=64")
    assert code == 0, err
    with RunStore(tmp_path / "r") as store:
        assert store.config()["runtime"]["weights"] == str(tmp_path / "2024")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    code, _, err = cli("--no-progress", "generate", "--model", "consisti2v", "--out", tmp_path / "n", "--cases",
                       "astronaut", "--set", "weights=null", "--set", "device=cpu")
    assert code == 2 and "i2vbench weights fetch consisti2v" in err  # null: the default place, not a folder 'null'


@pytest.mark.parametrize("device, message", [
    ("cuda", "device 'cuda' was asked for, but this machine has no usable CUDA GPU .*; use --set device=cpu"),
    ("tpu", "unknown device 'tpu'"),
])
def test_a_device_this_machine_lacks_is_refused_with_the_setting_to_change(tiny_folder, monkeypatch, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=message):
        ConsistI2VAdapter(weights=str(tiny_folder), device=device)


def test_a_weights_folder_that_cannot_load_is_refused_before_the_run_starts(cli, tmp_path, tiny_folder):
    import shutil

    code, _, err = cli("--no-progress", "run", "--model", "consisti2v", "--out", tmp_path / "r", "--weights",
                       tmp_path / "nowhere", "--set", "device=cpu")
    assert code == 2 and f"{tmp_path / 'nowhere'} does not exist" in err
    partial = tmp_path / "partial"
    shutil.copytree(tiny_folder, partial)
    (partial / "vae" / "config.json").unlink()
    shutil.rmtree(partial / "tokenizer")
    code, _, err = cli("--no-progress", "run", "--model", "consisti2v", "--out", tmp_path / "r", "--weights", partial,
                       "--set", "device=cpu")
    assert code == 2 and "not a complete copy of the ConsistI2V repository" in err
    assert "vae/ lacks config.json; no tokenizer/" in err
    assert not (tmp_path / "r").exists()


def test_cli_run_records_every_setting(cli, tmp_path, tiny_folder):
    run = tmp_path / "ci2v"
    code, out, err = cli("--no-progress", "run", "--model", "consisti2v", "--out", run, "--cases", "astronaut",
                         "--weights", tiny_folder, "--set", "steps=2", "--set", "dtype=float32",
                         "--set", "device=cpu", "--set", "height=64", "--set", "width=64", "--metrics", "frame0_fidelity")
    assert code == 0, err
    with sqlite3.connect(run / "run.sqlite") as conn:
        import json

        config = json.loads(conn.execute("SELECT config FROM run").fetchone()[0])
        settings = config["generation"]["settings"]
        assert settings["steps"] == 2 and settings["guidance_scale_txt"] == 7.5 and settings["frameinit_noise_level"] == 850
        assert config["runtime"]["weights"] == str(Path(tiny_folder).resolve())  # --weights DIR: the weights setting
        assert conn.execute("SELECT num_frames, height, width FROM videos").fetchone() == (16, 64, 64)


def test_a_video_that_samples_to_nan_fails_alone_with_the_reason(tiny_folder, mini, monkeypatch):
    from i2vbench.consisti2v import pipeline as pipeline_module

    adapter = ConsistI2VAdapter(weights=str(tiny_folder), **{**FAST, "steps": 1, "height": 64, "width": 64})
    sample = pipeline_module.sample_latents

    def overflow_in_the_second_video(*args, **kwargs):
        latents = sample(*args, **kwargs)
        if len(latents) > 1:
            latents[1, :, 3] = float("inf")
        return latents

    monkeypatch.setattr(pipeline_module, "sample_latents", overflow_in_the_second_video)
    cases = [mini.get("astronaut"), mini.get("coffee")]
    with pytest.raises(FloatingPointError, match=r"the video\(s\) of seed 5 sampled to NaN .*\(try dtype float32\)"):
        adapter.generate(cases, seeds=[4, 5])
    assert adapter.generate(cases[:1], seeds=[4])[0].frames.shape == (16, 64, 64, 3)


def test_a_decoder_overflow_is_refused_rather_than_written(tiny_folder, mini, monkeypatch):
    adapter = ConsistI2VAdapter(weights=str(tiny_folder), **{**FAST, "steps": 1, "height": 64, "width": 64})
    vae = adapter.load().vae
    decode = vae.decode

    def overflowing(latents, *args, **kwargs):
        out = decode(latents, *args, **kwargs)
        out.sample[0, 0, 0, 0] = float("nan")
        return out

    monkeypatch.setattr(vae, "decode", overflowing)
    with pytest.raises(FloatingPointError, match="seed 9 decoded to NaN or infinite pixels"):
        adapter.generate([mini.get("rocket")], seeds=[9])


def test_without_a_gpu_the_run_stops_unless_the_cpu_is_asked_for(cli, tmp_path, tiny_folder, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ("--no-progress", "run", "--model", "consisti2v", "--cases", "astronaut", "--metrics", "frame0_fidelity",
            "--set", f"weights={tiny_folder}", "--set", "steps=1", "--set", "height=64", "--set", "width=64")
    code, out, err = cli(*args, "--out", tmp_path / "auto")
    assert code == 2 and "no CUDA GPU is visible" in err and "--set device=cpu" in err
    code, out, err = cli(*args, "--out", tmp_path / "cpu", "--set", "device=cpu")
    assert code == 0 and "generate: 1 done" in out, err


def test_a_compiled_pipeline_keeps_one_batch_size(tiny_folder, mini, monkeypatch, capsys):
    from i2vbench.consisti2v.pipeline import ConsistI2VPipeline

    modes = []
    monkeypatch.setattr(ConsistI2VPipeline, "compile", lambda self, mode: modes.append(mode) or self)  # minutes
    settings = {**FAST, "steps": 1, "height": 64, "width": 64}
    adapter = ConsistI2VAdapter(weights=str(tiny_folder), compile=True, **settings)
    pipe = adapter.load()
    assert modes == ["default"]
    sizes = []
    generate = pipe.generate
    monkeypatch.setattr(pipe, "generate", lambda images, *a, **k: sizes.append(len(images)) or generate(images, *a, **k))
    cases = [mini.get(n) for n in ("astronaut", "coffee", "chelsea")]
    assert len(adapter.generate(cases, seeds=[1, 2, 3])) == 3
    assert "compiling the UNet and VAE decoder (default) for batches of 3" in capsys.readouterr().err
    (tail,) = adapter.generate(cases[1:2], seeds=[2])  # padded to 3 rows, one video back
    assert sizes == [3, 3]
    assert "compiling" not in capsys.readouterr().err  # the padded batch reuses the compiled size
    alone = ConsistI2VAdapter(weights=str(tiny_folder), **settings).generate(cases[1:2], seeds=[2])[0]
    assert np.abs(tail.frames.astype(int) - alone.frames).max() <= 1


def test_compile_takes_a_torch_compile_mode(tiny_folder, monkeypatch):
    from i2vbench.consisti2v.pipeline import ConsistI2VPipeline

    modes = []
    monkeypatch.setattr(ConsistI2VPipeline, "compile", lambda self, mode: modes.append(mode) or self)
    settings = {**FAST, "steps": 1, "height": 64, "width": 64}
    ConsistI2VAdapter(weights=str(tiny_folder), compile="reduce-overhead", **settings).load()
    ConsistI2VAdapter(weights=str(tiny_folder), compile=False, **settings).load()
    assert modes == ["reduce-overhead"]
    with pytest.raises(ConfigError, match="compile must be true, false or a torch.compile mode.*reduce-overhead.*'fast'"):
        ConsistI2VAdapter(weights=str(tiny_folder), compile="fast", **settings)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_pipeline_keeps_every_output(tiny_folder, mini):
    """Compiled with CUDA graphs, the pipeline gives the eager videos, and the same again on a rerun. A replay
    may overwrite an earlier call's output (torch versions differ in whether they clone live outputs first), so
    the sampler and the chunked decoder copy theirs out (in float32 ``.float()`` would not copy)."""
    from i2vbench.consisti2v.pipeline import ConsistI2VPipeline, VideoRequest, sampling_config

    request = VideoRequest(height=64, width=64, sampling=sampling_config(num_inference_steps=3), decode_chunk=4)
    images = [mini.get(n).load_image() for n in ("astronaut", "coffee")]
    args = (images, ["a cat", "a dog"], [1, 2], request)
    eager = ConsistI2VPipeline.from_pretrained(tiny_folder, dtype=torch.float32, device="cuda").generate(*args)
    graphs = ConsistI2VPipeline.from_pretrained(tiny_folder, dtype=torch.float32, device="cuda").compile("reduce-overhead")
    first, again = graphs.generate(*args), graphs.generate(*args)
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - eager).max() <= 2
    assert np.abs(first[:, :4].astype(int) - first[:, -4:]).max() > 10  # decoded chunks are not one chunk repeated


def test_a_model_that_cannot_load_stops_the_run_once_with_the_reason(cli, tmp_path, tiny_folder):
    import shutil

    weights = tmp_path / "w"
    shutil.copytree(tiny_folder, weights)
    good_unet = (weights / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    (weights / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)  # cut short in a copy
    run = tmp_path / "r"
    base = ("--no-progress", "run", "--model", "consisti2v", "--out", run, "--cases", "astronaut",
            "--metrics", "frame0_fidelity", "--weights", weights, "--set", "device=cpu", "--set", "steps=1",
            "--set", "height=64", "--set", "width=64")
    code, out, err = cli(*base, "--set", "dtype=bfloat16")
    assert code == 2 and "model 'consisti2v' could not be loaded: " in err
    assert "failed" not in out  # not a failure per case
    with sqlite3.connect(run / "run.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone() == (0,)
    (weights / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(good_unet)
    code, out, err = cli(*base, "--set", "dtype=float32")  # another configuration for the folder that holds nothing
    assert code == 2 and "holds no video or score yet, so nothing is lost" in err
    code, out, err = cli(*base, "--set", "dtype=float32", "--force")
    assert code == 0 and "generate: 1 done" in out, err
    code, _, err = cli("--no-progress", "run", "--model", "static", "--out", tmp_path / "r3", "--weights", weights)
    assert code == 2 and "model 'static' (card " in err and "has no setting 'weights'" in err


def _recording_sampler(monkeypatch):
    """Wraps the pipeline's sampler; returns the list of (first-frame latents, uncond, output) per call."""
    from i2vbench.consisti2v import pipeline as pipeline_module

    calls, sample = [], pipeline_module.sample_latents

    def recorded(unet, first, text, uncond, **kwargs):
        out = sample(unet, first, text, uncond, **kwargs)
        calls.append((first.clone(), uncond.clone(), out.clone(), kwargs.get("layout_latents")))
        return out

    monkeypatch.setattr(pipeline_module, "sample_latents", recorded)
    return calls


def test_each_chunk_starts_from_the_last_latent_frame_of_the_one_before(tiny_folder, mini, monkeypatch):
    calls = _recording_sampler(monkeypatch)
    adapter = ConsistI2VAdapter(weights=str(tiny_folder), **{**FAST, "steps": 1, "height": 64, "width": 64}, num_frames=46)
    video = adapter.generate([mini.get("rocket")], seeds=[0])[0]
    assert video.frames.shape == (46, 64, 64, 3) and len(calls) == 3
    for before, after in zip(calls, calls[1:]):
        assert torch.equal(after[0], before[2][:, :, -1:])  # conditioned on the previous chunk's last frame
        assert after[3] is None  # FrameInit's static video is rebuilt from that frame (no camera layout)
    latents = torch.cat([calls[0][2]] + [c[2][:, :, 1:] for c in calls[1:]], dim=2)
    expected = adapter.pipeline.decode(latents)[0]
    assert np.array_equal(video.frames, expected)  # chunks joined without repeating the shared frame


def test_the_negative_prompt_is_the_unconditional_text(tiny_folder, mini, monkeypatch):
    calls = _recording_sampler(monkeypatch)
    settings = {**FAST, "steps": 1, "height": 64, "width": 64}
    for negative in ("", "blurry, low quality"):
        ConsistI2VAdapter(weights=str(tiny_folder), negative_prompt=negative, **settings).generate(
            [mini.get("coffee"), mini.get("rocket")], seeds=[0, 1])
    pipe = ConsistI2VAdapter(weights=str(tiny_folder), **settings).load()
    plain, negative = calls[0][1], calls[1][1]
    assert torch.equal(plain, pipe.encode_prompts([""])) and torch.equal(negative, pipe.encode_prompts(["blurry, low quality"]))
    assert not torch.equal(plain, negative)


def test_decoding_in_chunks_gives_the_frames_of_one_call(tiny_folder):
    pipe = ConsistI2VAdapter(weights=str(tiny_folder), **{**FAST, "height": 64, "width": 64}).load()
    latents = torch.randn(2, 4, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    whole = pipe.decode(latents, chunk=32)
    assert np.abs(pipe.decode(latents, chunk=5).astype(int) - whole).max() <= 1


def test_a_run_records_its_unet_and_is_not_resumed_with_another(cli, tmp_path, tiny_folder):
    import hashlib
    import json
    import shutil

    unet_file = Path(tiny_folder) / "unet" / "diffusion_pytorch_model.safetensors"
    moved = tmp_path / "moved"
    shutil.copytree(tiny_folder, moved)  # the same weights elsewhere: the same run
    other = write_pipeline(tmp_path / "other", seed=7)
    run = tmp_path / "r"
    base = ("--no-progress", "generate", "--model", "consisti2v", "--out", run, "--cases", "astronaut",
            "--set", "device=cpu", "--set", "steps=1", "--set", "height=64", "--set", "width=64")
    assert cli(*base, "--weights", tiny_folder)[0] == 0
    with sqlite3.connect(run / "run.sqlite") as conn:
        config = json.loads(conn.execute("SELECT config FROM run").fetchone()[0])
    assert config["generation"]["weights"] == {"unet_sha256": hashlib.sha256(unet_file.read_bytes()).hexdigest()}
    code, out, err = cli(*base, "--weights", moved)
    assert code == 0 and "generate: 0 done, 1 already done" in out, err
    code, _, err = cli(*base, "--weights", other)
    assert code == 2 and "differs in: weights.unet_sha256" in err
