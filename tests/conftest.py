"""Shared fixtures: tiny suites built on the fly, and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the network: the Hugging Face libraries are told so before they are imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from helpers import make_suite  # noqa: E402

from i2vbench.cli import main  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _own_i2vbench_cache(tmp_path_factory):
    """What runs remember between runs (weight digests) goes to a folder of the test session, not the user's."""
    before = os.environ.get("I2VBENCH_CACHE")
    os.environ["I2VBENCH_CACHE"] = str(tmp_path_factory.mktemp("i2vbench-cache"))
    yield
    if before is None:
        os.environ.pop("I2VBENCH_CACHE")
    else:
        os.environ["I2VBENCH_CACHE"] = before


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    return make_suite(tmp_path / "suite")


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args] + [])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def weight_cache(tmp_path, monkeypatch):
    """Empty weight caches in a temp folder (``hub/`` for Hugging Face, ``i2vbench/`` for URLs), and no
    network loaded yet in this process."""
    import huggingface_hub.constants

    from i2vbench.metrics import backbones

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("I2VBENCH_CACHE", str(tmp_path / "i2vbench"))
    monkeypatch.setattr(backbones, "_LOADED", {})
    return tmp_path
