"""Model adapters: the protocol in :mod:`.base`, weight-free baselines, videos made elsewhere."""

from .base import COMMON_DEFAULTS, Adapter

__all__ = ["Adapter", "COMMON_DEFAULTS"]
