"""Where pretrained weights come from: one row per weight, one cache, and errors that say how to fetch.

Hugging Face repositories go to the normal HF cache (``HF_HOME`` / ``HF_HUB_CACHE``); plain URLs go to
``$I2VBENCH_CACHE`` (default ``~/.cache/i2vbench``) and are checked against their SHA-256. Nothing is
downloaded except by :func:`fetch` (``i2vbench weights fetch``); everything else only looks in the cache,
so an offline machine gets an error naming what is missing and the command that fetches it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import WeightsError, unknown_name
from .video import file_sha256


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained weight: a Hugging Face repo (with the files needed) or a URL with its checksum."""

    name: str
    licence: str
    used_by: tuple[str, ...]
    repo_id: str | None = None
    #: glob patterns of the repo files needed (None: the whole repo)
    patterns: tuple[str, ...] | None = None
    revision: str | None = None
    url: str | None = None
    filename: str | None = None
    sha256: str | None = None
    note: str = ""
    #: how a run can be pointed at a local copy instead of the cache, where it can
    local_copy: str = ""
    #: what a copy in the cache lacks (an interrupted download); None: the snapshot is taken as it is
    lacking: Callable[[Path], list[str]] | None = None

    @property
    def source(self) -> str:
        return f"hf://{self.repo_id}" if self.repo_id else str(self.url)


def _consisti2v_lacking(path: Path) -> list[str]:
    from .consisti2v.folder import problems

    return problems(path)


WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="consisti2v",
            repo_id="TIGER-Lab/ConsistI2V",
            patterns=("model_index.json", "unet/*", "vae/*", "text_encoder/*", "tokenizer/*", "scheduler/*"),
            licence="MIT",
            used_by=("consisti2v",),
            note="UNet, VAE, text encoder, tokenizer and scheduler config (diffusers layout)",
            local_copy="--weights DIR (a local copy of the repository)",
            lacking=_consisti2v_lacking,
        ),
        WeightSpec(
            name="dino_vitb16",
            url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
            filename="dino_vitbase16_pretrain.pth",
            licence="Apache-2.0",
            used_by=("subject_consistency", "i2v_subject"),
            note="facebookresearch/dino ViT-B/16 backbone, the file VBench loads (torch.hub dino_vitb16); "
                 "a plain state dict read with weights_only=True; sha256 not published",
        ),
        WeightSpec(
            name="clip_vit_b32",
            repo_id="timm/vit_base_patch32_clip_224.openai",
            patterns=("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_config.json"),
            licence="MIT",
            used_by=("background_consistency", "i2v_background_clip"),
            note="OpenAI CLIP ViT-B/32 in open_clip layout (open_clip's 'openai' hf_hub source); safetensors "
                 "preferred; the OpenAI original is ViT-B-32.pt, sha256 40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        ),
        WeightSpec(
            name="clip_vit_l14",
            repo_id="timm/vit_large_patch14_clip_224.openai",
            patterns=("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_config.json"),
            licence="MIT",
            used_by=("clip_score", "aesthetic_quality"),
            note="OpenAI CLIP ViT-L/14 in open_clip layout (open_clip's 'openai' hf_hub source); safetensors "
                 "preferred; the OpenAI original is ViT-L-14.pt, sha256 b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
        ),
        WeightSpec(
            name="laion_aesthetic_l14",
            url="https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
            filename="sa_0_4_vit_l_14_linear.pth",
            licence="MIT",
            used_by=("aesthetic_quality",),
            note="LAION aesthetic predictor v1 linear head (768 -> 1) for CLIP ViT-L/14, as VBench uses; "
                 "sha256 not published",
        ),
        WeightSpec(
            name="dreamsim_ensemble",
            url="https://github.com/ssundaram21/dreamsim/releases/download/v0.2.0-checkpoints/dreamsim_ensemble_checkpoint.zip",
            filename="dreamsim_ensemble_checkpoint.zip",
            licence="MIT",
            used_by=("i2v_background",),
            note="DreamSim v0.2 ensemble (DINO + CLIP + OpenCLIP ViT-B/16 with LoRA), 1,261,181,618 bytes; needs "
                 "the dreamsim package, which loads these files itself; sha256 not published",
        ),
        WeightSpec(
        name="raft_things",
        url="https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth",
        filename="raft_large_C_T_V1-22a6c225.pth",
        licence="BSD-3-Clause",
        used_by=("dynamic_degree",),
        note="torchvision Raft_Large_Weights.C_T_V1 = princeton-vl/RAFT raft-things.pth (FlyingChairs+FlyingThings3D); "
                 "torchvision checks only the sha256 prefix 22a6c225 in the file name",
        ),
        WeightSpec(
        name="amt_s",
        repo_id="lalala125/AMT",
        patterns=("amt-s.pth",),
        licence="CC-BY-NC-4.0",
        used_by=("motion_smoothness",),
        note="AMT-S trained on Vimeo90K (MCG-NKU/AMT, config cfgs/AMT-S.yaml); a training checkpoint whose "
             "'state_dict' entry holds the network",
        ),
        WeightSpec(
            name="viclip_l14",
            repo_id="OpenGVLab/ViCLIP",
            patterns=("ViClip-InternVid-10M-FLT.pth",),
            licence="MIT",
            used_by=("overall_consistency",),
            note="ViCLIP ViT-L/14 trained on InternVid-10M-FLT (the checkpoint VBench downloads for overall "
                 "consistency); a training checkpoint whose 'model' entry holds the network, read with "
                 "weights_only=True",
        ),
        WeightSpec(
            name="owlv2_base_ensemble",
            repo_id="google/owlv2-base-patch16-ensemble",
            patterns=("*.json", "*.txt", "model.safetensors", "pytorch_model.bin"),
            licence="Apache-2.0",
            used_by=("object_consistency",),
            note="OWLv2 B/16 open-vocabulary detector (transformers Owlv2ForObjectDetection + Owlv2Processor); "
                 "stands in for VBench's GRiT",
        ),
        WeightSpec(
            name="blip_caption_base",
            repo_id="Salesforce/blip-image-captioning-base",
            patterns=("*.json", "vocab.txt", "model.safetensors", "pytorch_model.bin"),
            licence="BSD-3-Clause",
            used_by=("scene_consistency",),
            note="BLIP ViT-B captioner fine-tuned on COCO (transformers BlipForConditionalGeneration + "
                 "BlipProcessor); stands in for VBench's Tag2Text",
        ),
        WeightSpec(
            name="musiq_spaq",
            url="https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/musiq_spaq_ckpt-358bb6af.pth",
            filename="musiq_spaq_ckpt-358bb6af.pth",
            licence="CC-BY-NC-SA-4.0 (IQA-PyTorch port; MUSIQ itself Apache-2.0)",
            used_by=("imaging_quality",),
            note="MUSIQ trained on SPAQ, pyiqa's port (the file VBench loads); a plain state dict read with "
                 "weights_only=True; needs the optional pyiqa package; sha256 not published (prefix 358bb6af "
                 "in the file name)",
        ),
        WeightSpec(
            name="lpips_alex",
            url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
            filename="alex.pth",
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            licence="BSD-2-Clause",
            used_by=("frame0_fidelity",),
            note="LPIPS v0.1 linear heads for AlexNet (lin0..lin4, 1152 weights; the file the lpips package "
                 "ships, sha256 taken from lpips 0.1.4); tensors saved on CUDA, read with map_location=cpu",
        ),
        WeightSpec(
            name="alexnet_imagenet",
            url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            filename="alexnet-owt-7be5be79.pth",
            licence="BSD-3-Clause",
            used_by=("frame0_fidelity",),
            note="torchvision AlexNet_Weights.IMAGENET1K_V1, the trunk the lpips package loads; only features.* "
                 "is used; torchvision checks only the sha256 prefix 7be5be79 in the file name",
        ),
    )
}


def cache_dir() -> Path:
    """The folder for URL downloads (``$I2VBENCH_CACHE``, default ``~/.cache/i2vbench``)."""
    return Path(os.environ.get("I2VBENCH_CACHE", Path.home() / ".cache" / "i2vbench")).expanduser()


#: a Hugging Face cache blob of a large (LFS) file: named by its SHA-256
_LFS_BLOB = re.compile(r"[0-9a-f]{64}")
_DIGESTS = "digests.json"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a weight file. A file in the Hugging Face cache links to a blob named by it, so that name is the
    digest; any other file is read once per version (path, size, mtime) and its digest remembered in
    ``$I2VBENCH_CACHE/digests.json``, since a checkpoint of gigabytes takes seconds to read."""
    real = Path(path).resolve()
    if real.parent.name == "blobs" and _LFS_BLOB.fullmatch(real.name):
        return real.name
    stat = real.stat()
    key = f"{real}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = cache_dir() / _DIGESTS
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = file_sha256(real, f"checksum {real.name}")
    memo[key] = digest
    try:  # written whole and then renamed: processes hashing at once never leave a half-written file
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        partial = memo_file.with_name(f"{_DIGESTS}.{os.getpid()}")
        partial.write_text(json.dumps(memo, indent=0))
        partial.replace(memo_file)
    except OSError:  # a read-only cache: the digest is computed again next time
        pass
    return digest


def get_spec(name: str) -> WeightSpec:
    if name not in WEIGHTS:
        raise unknown_name("weight", name, list(WEIGHTS))
    return WEIGHTS[name]


def fetch_command(name: str) -> str:
    return f"i2vbench weights fetch {name}"


class MissingWeights(str):
    """A reason a metric cannot run that is weights absent from the cache: the text, and which weights (so that a
    console can say it in short, with one fetch command for several metrics)."""

    weights: str

    def __new__(cls, text: str, weights: str) -> "MissingWeights":
        reason = super().__new__(cls, text)
        reason.weights = weights
        return reason


def _missing(spec: WeightSpec, detail: str, incomplete: bool = False) -> WeightsError:
    where = ("the Hugging Face cache (HF_HOME)" if spec.repo_id
             else f"{cache_dir()} (I2VBENCH_CACHE)")
    local = f", or pass {spec.local_copy}" if spec.local_copy else ""
    error = WeightsError(
        f"weights {spec.name!r} ({spec.source}) are not in the cache: {detail}. "
        f"Fetch them with '{fetch_command(spec.name)}' on a machine with internet access (then copy "
        f"{where} here if that is another machine){local}"
    )
    error.missing = spec.name
    error.incomplete = detail if incomplete else None  # what is there but unusable, for 'weights check'
    return error


_PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_WEIGHT_SUFFIXES = ("safetensors", *(suffix[1:] for suffix in _PICKLED_SUFFIXES))
#: the variant labels diffusers and transformers put before a weight file's suffix
_VARIANTS = ("fp16", "bf16", "fp32", "ema", "non_ema", "noema")


def _is_variant(path: str) -> bool:
    """A weight variant (``model.fp16.safetensors``, ``model.fp16-00001-of-00002.safetensors``,
    ``model.safetensors.index.fp16.json``): a copy that loaders read only when asked for by name, which
    i2vbench never does. Known labels only, so that a name such as ``model_v1.5.safetensors`` is kept."""
    parts = os.path.basename(path).split(".")
    if len(parts) >= 3 and parts[-1] in _WEIGHT_SUFFIXES:
        return parts[-2].split("-")[0] in _VARIANTS
    return len(parts) >= 4 and parts[-1] == "json" and parts[-3] == "index" and parts[-2] in _VARIANTS


def _choose_repo_files(files: list[str], patterns: tuple[str, ...] | None) -> list[str]:
    """Repo files to download: those matching ``patterns``, without weight variants (fp16, EMA copies: gigabytes
    no loader here reads), preferring safetensors over pickled weights of the same component so that nothing
    that can run code is fetched when a safe copy exists."""
    from fnmatch import fnmatch

    chosen = [f for f in files if (patterns is None or any(fnmatch(f, p) for p in patterns)) and not _is_variant(f)]
    safe_dirs = {os.path.dirname(f) for f in chosen if f.endswith(".safetensors")}
    return [f for f in chosen if not (f.endswith(_PICKLED_SUFFIXES) and os.path.dirname(f) in safe_dirs)]


def _url_path(spec: WeightSpec) -> Path:
    """Where a URL weight lives in the i2vbench cache."""
    return cache_dir() / spec.name / str(spec.filename)


def locate(name: str) -> Path:
    """Local path of a weight (a snapshot folder for HF repos, a file for URLs); never downloads."""
    spec = get_spec(name)
    if spec.repo_id:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            path = Path(snapshot_download(spec.repo_id, revision=spec.revision, local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError) as exc:
            raise _missing(spec, f"no snapshot of {spec.repo_id} in the Hugging Face cache") from exc
        lacking = spec.lacking(path) if spec.lacking else []
        if lacking:
            raise _missing(spec, f"the snapshot in {path} is incomplete, as an interrupted download leaves it "
                                 f"({'; '.join(lacking)})", incomplete=True)
        return path
    path = _url_path(spec)
    if not path.is_file():
        raise _missing(spec, f"{path} does not exist")
    return path


def missing_reason(*checks: Callable[[], object]) -> str | None:
    """None when every check finds its weights; else the first WeightsError's message (with the fetch
    command): what a metric's ``unavailable_reason`` reports."""
    for check in checks:
        try:
            check()
        except WeightsError as exc:
            missing = getattr(exc, "missing", None)
            return str(exc) if missing is None else MissingWeights(str(exc), missing)
    return None


def is_available(name: str) -> bool:
    try:
        locate(name)
    except WeightsError:
        return False
    return True


def weights_for(users: Sequence[str]) -> list[str]:
    """The weights that the named metrics or models use, in table order."""
    return [name for name, spec in WEIGHTS.items() if set(spec.used_by) & set(users)]


def _host(spec: WeightSpec) -> str:
    """The host a weight downloads from (``HF_ENDPOINT`` for Hugging Face repositories, as the hub client)."""
    url = os.environ.get("HF_ENDPOINT", "https://huggingface.co") if spec.repo_id else str(spec.url)
    return urllib.parse.urlparse(url).hostname or url


def _proxied() -> bool:
    """Whether downloads go through a proxy (which resolves the hosts' names itself)."""
    return bool(urllib.request.getproxies())


@functools.lru_cache(maxsize=None)
def _unreachable(host: str) -> str | None:
    """Why ``host`` cannot be reached (its name does not resolve: no network, or none outside), else None.
    Checked once per host, so that an offline machine is told at once instead of after the clients' retries."""
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:
        return str(exc)
    return None


def damage(name: str) -> str | None:
    """Why a cached URL weight is not the published file (its SHA-256 differs from the listed one, or from the
    prefix its file name carries, as torchvision's do), else None; a weight with no known digest passes."""
    spec = get_spec(name)
    path = _url_path(spec) if spec.url else None
    expected = spec.sha256 or _name_digest(str(spec.filename or ""))
    if path is None or not expected or not path.is_file():
        return None
    found = file_digest(path)
    if found.startswith(expected):
        return None
    return f"{path} is damaged or incomplete (sha256 {found[:16]}..., expected {expected[:16]}...)"


def _name_digest(filename: str) -> str | None:
    """The SHA-256 prefix in a file name such as ``raft_large_C_T_V1-22a6c225.pth`` (torchvision's convention)."""
    found = re.search(r"-([0-9a-f]{8,64})\.[a-z]+$", filename)
    return found[1] if found else None


def fetch(name: str, force: bool = False) -> Path:
    """Download a weight into the cache (verifying URL downloads against their SHA-256 when known). A URL weight
    already in the cache is downloaded again only when it fails that check, a Hugging Face snapshot only for the
    files it lacks; ``force`` downloads everything again."""
    spec = get_spec(name)
    if spec.url and _url_path(spec).is_file() and not force and damage(name) is None:
        return _url_path(spec)
    reason = None if _proxied() else _unreachable(_host(spec))
    if reason:
        raise WeightsError(f"cannot reach {_host(spec)} to download {spec.name!r} ({reason}): this machine seems to "
                           "have no internet access. Fetch on a machine that has, then copy the caches here "
                           f"(the Hugging Face cache, HF_HOME, and {cache_dir()}, I2VBENCH_CACHE)")
    try:
        return _fetch_repo(spec, force) if spec.repo_id else _fetch_url(spec)
    except WeightsError:
        raise
    except Exception as exc:  # network, HTTP and hub errors all mean the same thing to the user
        raise WeightsError(f"cannot download {spec.name!r} from {spec.source}: {type(exc).__name__}: {exc}") from exc


def _fetch_repo(spec: WeightSpec, force: bool = False) -> Path:
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(spec.repo_id, revision=spec.revision)
    wanted = _choose_repo_files(files, spec.patterns)
    return Path(snapshot_download(spec.repo_id, revision=spec.revision, allow_patterns=wanted, force_download=force))


def _fetch_url(spec: WeightSpec) -> Path:
    from tqdm.auto import tqdm

    target = _url_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(str(spec.url)) as response, open(partial, "wb") as out, \
                tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                     desc=spec.name, leave=False) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
        if spec.sha256 and digest.hexdigest() != spec.sha256:
            raise WeightsError(f"{spec.url} has sha256 {digest.hexdigest()}, expected {spec.sha256}; not saved")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
