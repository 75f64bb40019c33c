"""Which device ``auto`` and ``cuda`` mean: the process's own GPU (``LOCAL_RANK`` under torchrun)."""

from __future__ import annotations

import os


def resolve_device(name: str) -> str:
    """``auto`` -> the process's GPU when CUDA is available, else ``cpu``; ``cuda`` -> the process's GPU
    (``cuda:<LOCAL_RANK>`` under torchrun, so that processes sharing a run do not share a GPU); others unchanged."""
    if name == "auto":
        import torch

        if not torch.cuda.is_available():
            return "cpu"
        name = "cuda"
    if name != "cuda":
        return name
    rank = os.environ.get("LOCAL_RANK")
    return f"cuda:{rank}" if rank is not None else "cuda"
