"""What a ConsistI2V weights folder (the released diffusers layout) must hold, checked without loading anything.

Loading the 1.25B-parameter UNet takes a while; a folder missing its VAE or tokenizer files should be refused
before that, and before a run folder is made. No torch import here: ``i2vbench weights check`` uses it too.
"""

from __future__ import annotations

import json
from pathlib import Path

#: the component folders the pipeline loads (``scheduler/`` is optional: the released settings are built in)
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer")
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
INDEX_SUFFIX = ".index.json"
#: per component: the files it needs, each a tuple of alternatives (``a+b``: both); a tokenizer is its fast
#: ``tokenizer.json`` or the vocabulary and merges of the slow one (the released folder)
_NEEDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "unet": (("config.json",), DIFFUSERS_WEIGHTS),
    "vae": (("config.json",), DIFFUSERS_WEIGHTS),
    "text_encoder": (("config.json",), TRANSFORMERS_WEIGHTS),
    "tokenizer": (("vocab.json+merges.txt", "tokenizer.json"),),
}


def problems(folder: str | Path) -> list[str]:
    """What keeps ``folder`` from loading as a ConsistI2V pipeline, one entry per component (empty: nothing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} does not exist" if not folder.exists() else f"{folder} is not a folder"]
    found = []
    for component in COMPONENTS:
        sub = folder / component
        if not sub.is_dir():
            found.append(f"no {component}/")
            continue
        lacking = [issue for needed in _NEEDS[component] if (issue := _lacking(sub, needed))]
        if lacking:
            found.append(f"{component}/ lacks {', '.join(lacking)}")
    return found


def _lacking(folder: Path, alternatives: tuple[str, ...]) -> str | None:
    """None when one of ``alternatives`` is there whole (each of its ``+``-joined files, or a sharded checkpoint's
    index with every shard it names); else what is missing."""
    notes: list[str] = []

    def present(name: str) -> bool:
        index = weights_file(folder, (name,))  # the file itself, or its sharded checkpoint's index
        if index is None:
            return False
        if not index.name.endswith(INDEX_SUFFIX):
            return True
        try:
            absent = [shard.name for shard in shard_files(index) if not shard.is_file()]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            notes.append(f"a readable {index.name} (it is damaged)")
            return False
        if absent:
            notes.append(f"the shard(s) {', '.join(absent[:3])} that {index.name} names")
        return not absent

    if any(all(present(name) for name in option.split("+")) for option in alternatives):
        return None
    return notes[0] if notes else " or ".join(alternatives)


def weights_file(component: Path, names: tuple[str, ...] = DIFFUSERS_WEIGHTS) -> Path | None:
    """A component folder's weights: the first of ``names`` there, whole or as a sharded checkpoint's index."""
    for name in names:
        for candidate in (component / name, component / (name + INDEX_SUFFIX)):
            if candidate.is_file():
                return candidate
    return None


def shard_files(file: Path) -> list[Path]:
    """The files a weights file stands for: itself, or the shards a ``*.index.json`` maps the keys to."""
    if not file.name.endswith(INDEX_SUFFIX):
        return [file]
    return [file.parent / shard for shard in sorted(set(json.loads(file.read_text())["weight_map"].values()))]
