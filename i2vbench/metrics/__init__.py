"""Metric plugins: the protocol in :mod:`.base`; one module a metric; discovery through entry points."""

from __future__ import annotations

from ..registry import METRIC_GROUP, load_plugin, plugin_targets
from .base import GROUPS, PRECISIONS, EvalItem, FeatureCache, Metric, MetricResult, ScoreSpec

__all__ = ["GROUPS", "PRECISIONS", "EvalItem", "FeatureCache", "Metric", "MetricResult", "ScoreSpec", "metric_names", "get_metric"]


def metric_names() -> list[str]:
    """Every installed metric's name."""
    return sorted(plugin_targets(METRIC_GROUP))


def get_metric(name: str) -> type[Metric]:
    """The metric class registered as ``name`` (an unknown name lists the known ones)."""
    return load_plugin(METRIC_GROUP, name, "metric", Metric)
