"""pytest fixtures for the ConsistI2V tests."""

from __future__ import annotations

import json

import pytest
from ci2v_helpers import FIXTURES
from safetensors.torch import load_file

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig


@pytest.fixture(scope="session")
def tiny_config() -> UNetConfig:
    return UNetConfig.from_json(json.loads((FIXTURES / "unet_tiny_config.json").read_text()))


@pytest.fixture(scope="session")
def tiny_unet(tiny_config: UNetConfig) -> ConsistI2VUNet:
    """The fixtures' tiny UNet (float32) with the reference weights loaded strictly."""
    unet = ConsistI2VUNet(tiny_config).eval()
    weights = load_file(FIXTURES / "unet_tiny_weights.safetensors")
    unet.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    return unet
