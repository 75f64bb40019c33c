"""Shared fixtures: tiny suites built on the fly, and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the network: the Hugging Face libraries are told so before they are imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from i2vbench.cli import main  # noqa: E402
from suite_helpers import make_suite  # noqa: E402


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
