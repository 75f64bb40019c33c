"""Which device ``auto`` and ``cuda`` mean: the process's own GPU (``LOCAL_RANK`` under torchrun)."""

from __future__ import annotations

import os

from .errors import ConfigError


def resolve_device(name: str, instead: str = "--device cpu or auto") -> str:
    """``auto`` -> the process's GPU when CUDA is available, else ``cpu``; ``cuda`` -> the process's GPU
    (``cuda:<LOCAL_RANK>`` under torchrun, so that processes sharing a run do not share a GPU); others unchanged.
    A CUDA device that this machine does not have is refused at once, rather than failing every case later;
    ``instead`` is the option that asks for another device, for the message."""
    import torch

    if name == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        name = "cuda"
    if name == "cuda":
        rank = os.environ.get("LOCAL_RANK")
        name = f"cuda:{rank}" if rank is not None else "cuda"
    if name.startswith("cuda"):
        _check_cuda(name, instead)
    else:
        try:
            torch.device(name)
        except RuntimeError:
            raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    return name


def _check_cuda(name: str, instead: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for, but this machine has no usable CUDA GPU "
                          f"(torch.cuda.is_available() is False); use {instead}")
    index = name.partition(":")[2]
    count = torch.cuda.device_count()
    if index and (not index.isdigit() or int(index) >= count):
        raise ConfigError(f"device {name!r} does not exist here: this machine has {count} CUDA device(s), "
                          f"cuda:0 to cuda:{count - 1}")
