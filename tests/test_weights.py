"""Weights: found in the cache without any network access, or an error that says how to fetch them."""

from __future__ import annotations

import pytest
from helpers import hf_snapshot, url_weight_path

from i2vbench import weights
from i2vbench.errors import WeightsError


def test_missing_weights_name_what_and_the_fetch_command(weight_cache):
    with pytest.raises(WeightsError) as err:
        weights.locate("consisti2v")
    message = str(err.value)
    assert "TIGER-Lab/ConsistI2V" in message and "i2vbench weights fetch consisti2v" in message
    assert not weights.is_available("consisti2v")


#: the files of the released ConsistI2V repository that loading reads (scheduler/ is optional)
CONSISTI2V_FILES = ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
                    "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
                    "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt")


def test_cached_snapshot_is_found_offline(weight_cache):
    snapshot = hf_snapshot(weight_cache, "TIGER-Lab/ConsistI2V")
    for name in CONSISTI2V_FILES:
        (snapshot / name).parent.mkdir(exist_ok=True)
        (snapshot / name).write_text("{}")
    assert weights.locate("consisti2v") == snapshot


def test_an_interrupted_download_is_not_taken_for_the_weights(weight_cache, cli):
    snapshot = hf_snapshot(weight_cache, "TIGER-Lab/ConsistI2V")
    for name in CONSISTI2V_FILES[:3]:  # the UNet and the VAE's config arrived, nothing after
        (snapshot / name).parent.mkdir(exist_ok=True)
        (snapshot / name).write_text("{}")
    with pytest.raises(WeightsError) as err:
        weights.locate("consisti2v")
    message = str(err.value)
    assert f"the snapshot in {snapshot} is incomplete" in message and "i2vbench weights fetch consisti2v" in message
    assert "vae/ lacks diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin" in message
    assert "no text_encoder/; no tokenizer/" in message
    code, out, _ = cli("weights", "check")  # says what is there but unusable, as the run would
    assert code == 0 and f"consisti2v: INCOMPLETE: the snapshot in {snapshot} is incomplete" in out
    assert "no text_encoder/; no tokenizer/) (i2vbench weights fetch consisti2v)" in out


def test_url_weights_live_in_the_i2vbench_cache(weight_cache, monkeypatch):
    spec = weights.WeightSpec(name="toy", licence="MIT", used_by=("x",), url="https://example.invalid/toy.pth",
                              filename="toy.pth", sha256="0" * 64)
    monkeypatch.setitem(weights.WEIGHTS, "toy", spec)
    with pytest.raises(WeightsError, match="i2vbench weights fetch toy"):
        weights.locate("toy")
    url_weight_path(weight_cache, "toy", "toy.pth").write_bytes(b"x")
    assert weights.locate("toy").name == "toy.pth"


def test_safetensors_are_preferred_over_pickles():
    files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.bin", "README.md"]
    chosen = weights._choose_repo_files(files, ("model_index.json", "unet/*", "vae/*"))
    assert chosen == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                      "vae/diffusion_pytorch_model.bin"]


def test_weight_variants_are_not_downloaded():
    files = ["unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
             "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
             "text_encoder/model.safetensors.index.json", "text_encoder/model-00001-of-00002.safetensors",
             "text_encoder/model.safetensors.index.fp16.json", "text_encoder/model.fp16-00001-of-00002.safetensors",
             "tokenizer/vocab.json", "tokenizer/special_tokens_map.json", "extra/model_v1.5.safetensors"]
    chosen = weights._choose_repo_files(files, ("unet/*", "vae/*", "text_encoder/*", "tokenizer/*", "extra/*"))
    # an fp16-only safetensors is no safe copy of the plain pickle: the loaders read the plain names alone
    assert chosen == ["unet/config.json", "unet/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.safetensors",
                      "text_encoder/model.safetensors.index.json", "text_encoder/model-00001-of-00002.safetensors",
                      "tokenizer/vocab.json", "tokenizer/special_tokens_map.json", "extra/model_v1.5.safetensors"]


def test_unknown_weight_lists_known_ones():
    with pytest.raises(Exception, match="known weights: .*consisti2v"):
        weights.get_spec("nope")


def test_weights_check_command(cli, weight_cache):
    code, out, _ = cli("weights", "check")
    assert code == 0 and "consisti2v" in out and "missing (i2vbench weights fetch consisti2v)" in out


def test_a_failed_download_says_so_and_leaves_nothing_behind(weight_cache, monkeypatch):
    spec = weights.WeightSpec(name="toy", licence="MIT", used_by=("x",), url="http://127.0.0.1:9/toy.pth",
                              filename="toy.pth")
    monkeypatch.setitem(weights.WEIGHTS, "toy", spec)
    with pytest.raises(WeightsError, match="cannot download 'toy' from http://127.0.0.1:9/toy.pth"):
        weights.fetch("toy")
    assert list((weight_cache / "i2vbench" / "toy").iterdir()) == []


def test_a_cached_url_weight_is_not_downloaded_again(weight_cache, monkeypatch):
    spec = weights.WeightSpec(name="toy", licence="MIT", used_by=("x",), url="http://127.0.0.1:9/toy.pth",
                              filename="toy.pth")
    monkeypatch.setitem(weights.WEIGHTS, "toy", spec)
    url_weight_path(weight_cache, "toy", "toy.pth").write_bytes(b"cached")
    assert weights.fetch("toy").read_bytes() == b"cached"  # the URL would refuse the connection


@pytest.fixture
def fetched(monkeypatch):
    """Records the names ``weights fetch`` asks for; ``raft_things`` fails as a broken download would."""
    names: list[str] = []

    def fake_fetch(name, force=False):
        names.append(name)
        if name == "raft_things":
            raise WeightsError("cannot download 'raft_things': connection reset")
        return f"/cache/{name}"

    monkeypatch.setattr(weights, "fetch", fake_fetch)
    return names


def test_fetch_by_metric_takes_the_weights_that_metric_uses(cli, fetched):
    code, out, _ = cli("weights", "fetch", "--metrics", "subject_consistency,aesthetic_quality")
    assert code == 0 and sorted(fetched) == ["clip_vit_l14", "dino_vitb16", "laion_aesthetic_l14"]
    code, _, err = cli("weights", "fetch", "--metrics", "sharpness")
    assert code == 2 and "subject_consistency" in err  # the known metrics are listed
    code, out, _ = cli("weights", "fetch", "--metrics", "temporal_flickering")
    assert code == 0 and "temporal_flickering need(s) no weights: nothing to fetch" in out
    code, _, err = cli("weights", "fetch", "subject_consistency")
    assert code == 2 and "is a metric, not a weight" in err and "--metrics subject_consistency" in err


def test_fetch_without_names_takes_every_metrics_weights_and_goes_on_after_a_failure(cli, fetched):
    code, out, err = cli("weights", "fetch")
    assert code == 2
    assert "consisti2v" not in fetched and {"dino_vitb16", "raft_things", "viclip_l14", "amt_s"} <= set(fetched)
    assert fetched.index("raft_things") < len(fetched) - 1  # the ones after the failure were fetched too
    assert "raft_things: FAILED" in err and "1 of" in err and "run the same command again" in err


def test_an_offline_machine_is_told_at_once(weight_cache, monkeypatch):
    import socket

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(weights.socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(weights.urllib.request, "getproxies", dict)
    weights._unreachable.cache_clear()
    monkeypatch.setattr(weights, "_fetch_repo", lambda spec: pytest.fail("tried to download while offline"))
    with pytest.raises(WeightsError, match=r"cannot reach huggingface.co to download 'consisti2v' .*no internet access"):
        weights.fetch("consisti2v")
    spec = weights.WeightSpec(name="toy", licence="MIT", used_by=("x",), url="http://example.org/toy.pth", filename="toy.pth")
    monkeypatch.setitem(weights.WEIGHTS, "toy", spec)
    url_weight_path(weight_cache, "toy", "toy.pth").write_bytes(b"cached")
    assert weights.fetch("toy").read_bytes() == b"cached"  # what is cached needs no network
    monkeypatch.setattr(weights.urllib.request, "getproxies", lambda: {"https": "http://proxy:3128"})
    with pytest.raises(WeightsError, match="cannot download 'consisti2v'"):  # behind a proxy: no name check
        monkeypatch.setattr(weights, "_fetch_repo", lambda spec: (_ for _ in ()).throw(OSError("proxy refused")))
        weights.fetch("consisti2v")
    weights._unreachable.cache_clear()


def test_a_weight_file_digest_is_read_once_per_version(weight_cache, monkeypatch):
    import hashlib

    file = weight_cache / "model.safetensors"
    file.write_bytes(b"weights, version 1")
    assert weights.file_digest(file) == hashlib.sha256(b"weights, version 1").hexdigest()
    monkeypatch.setattr(weights, "file_sha256", lambda *a: pytest.fail("read again"))
    assert weights.file_digest(file) == hashlib.sha256(b"weights, version 1").hexdigest()  # remembered
    monkeypatch.undo()
    monkeypatch.setenv("I2VBENCH_CACHE", str(weight_cache / "i2vbench"))
    file.write_bytes(b"weights, version 2!")  # another size (and time): another version
    assert weights.file_digest(file) == hashlib.sha256(b"weights, version 2!").hexdigest()


def test_a_hugging_face_blob_is_named_by_its_digest(weight_cache, monkeypatch):
    blobs = weight_cache / "hub" / "models--o--n" / "blobs"
    blobs.mkdir(parents=True)
    digest = "c0ffee" + "0" * 58
    (blobs / digest).write_bytes(b"not what the name says: the cache is trusted, not read")
    link = hf_snapshot(weight_cache, "o/n") / "model.safetensors"
    link.symlink_to(blobs / digest)
    monkeypatch.setattr(weights, "file_sha256", lambda *a: pytest.fail("a blob is not read"))
    assert weights.file_digest(link) == digest


def test_a_damaged_url_weight_is_found_and_downloaded_again(weight_cache, monkeypatch, cli):
    import hashlib

    good = b"the published checkpoint"
    digest = hashlib.sha256(good).hexdigest()
    spec = weights.WeightSpec(name="toy", licence="MIT", used_by=("x",), url="http://127.0.0.1:9/toy.pth",
                              filename=f"toy-{digest[:8]}.pth")  # torchvision's convention: the digest's prefix
    monkeypatch.setitem(weights.WEIGHTS, "toy", spec)
    downloads = []

    def download(spec):
        downloads.append(spec.name)
        path = url_weight_path(weight_cache, spec.name, spec.filename)
        path.write_bytes(good)
        return path

    monkeypatch.setattr(weights, "_fetch_url", download)
    path = url_weight_path(weight_cache, "toy", spec.filename)
    path.write_bytes(good[:10])  # cut short
    assert "is damaged or incomplete (sha256 " in weights.damage("toy")
    assert f"{spec.url}  [MIT]  used by x: DAMAGED: {path} is damaged" in cli("weights", "check")[1]
    assert weights.fetch("toy").read_bytes() == good and downloads == ["toy"]
    assert weights.damage("toy") is None and f"used by x: cached at {path}" in cli("weights", "check")[1]
    weights.fetch("toy")
    assert downloads == ["toy"]  # intact: kept
    code, out, _ = cli("weights", "fetch", "toy", "--force")
    assert code == 0 and downloads == ["toy", "toy"]
