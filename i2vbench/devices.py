"""Which device ``auto`` means: the process's GPU when there is one (``LOCAL_RANK`` under torchrun)."""

from __future__ import annotations

import os


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda:<LOCAL_RANK>`` (or ``cuda``) when CUDA is available, else ``cpu``; others unchanged."""
    if name != "auto":
        return name
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    rank = os.environ.get("LOCAL_RANK")
    return f"cuda:{rank}" if rank is not None else "cuda"
