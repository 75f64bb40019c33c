"""Builders shared by the tests (a module of its own: ``conftest`` names clash between test folders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def make_suite(root: Path, n: int = 3, size: tuple[int, int] = (48, 64), name: str = "tiny") -> Path:
    """Write a suite folder (prompts/<name>.jsonl + reference_images/) with ``n`` textured images."""
    rng = np.random.default_rng(0)
    (root / "reference_images").mkdir(parents=True, exist_ok=True)
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
        img = np.stack([(xx * 4 + i * 40) % 256, (yy * 5) % 256, rng.integers(0, 256, size)], -1).astype(np.uint8)
        Image.fromarray(img).save(root / "reference_images" / f"img{i}.png")
        lines.append({"id": f"case{i}", "image": f"reference_images/img{i}.png",
                      "prompt": f"a textured pattern number {i} drifts slowly to the right", "category": "pattern"})
    manifest = root / "prompts" / f"{name}.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest


def hf_snapshot(cache: Path, repo_id: str, revision: str = "ab" * 20) -> Path:
    """An empty snapshot folder laid out as huggingface_hub does: ``hub/models--org--name/{snapshots/<rev>, refs/main}``."""
    repo = cache / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def url_weight_path(cache: Path, name: str, filename: str) -> Path:
    """Where ``i2vbench weights fetch`` puts a URL weight: ``$I2VBENCH_CACHE/<name>/<file>`` (folder created)."""
    path = cache / "i2vbench" / name / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_card(path: Path, adapter: str, **settings) -> Path:
    """A model card for ``adapter`` (a registered name or ``module:Class``) with these settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": path.stem, "adapter": adapter, "settings": settings}))
    return path

