"""Bootstrap over cases: confidence intervals of dataset scores and a paired test between two runs.

A dataset score is ``sum(num) / sum(w)`` over cases (see :mod:`.aggregate`): resampling cases with replacement
and recomputing that ratio resamples a frame-weighted score's frames together with their case. Resamples
come from a seeded generator, so the same data always gives the same intervals and verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
_CHUNK = 256  # resamples drawn at once (bounds memory: chunk x cases indices)


@dataclass(frozen=True)
class Interval:
    """A dataset score with its percentile bootstrap interval, over ``n`` cases (raw units)."""

    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedTest:
    """Score of A minus score of B on their shared cases, its bootstrap interval and two-sided p-value."""

    diff: float
    low: float
    high: float
    p_value: float
    n: int
    level: float

    @property
    def significant(self) -> bool:
        """The difference is significant when ``p < 1 - level`` (the interval then excludes 0)."""
        return self.p_value < 1.0 - self.level


def _indices(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        yield rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))


def _ratios(num: np.ndarray, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return num[idx].sum(axis=1) / w[idx].sum(axis=1)


def _bounds(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ci(num: np.ndarray, w: np.ndarray | None = None, *, resamples: int = RESAMPLES, level: float = LEVEL,
                 seed: int = SEED) -> Interval | None:
    """Percentile bootstrap interval of ``sum(num) / sum(w)`` resampling cases (``w`` defaults to ones);
    ``None`` without cases."""
    num = np.asarray(num, float)
    w = np.ones_like(num) if w is None else np.asarray(w, float)
    if not len(num):
        return None
    samples = np.concatenate([_ratios(num, w, idx) for idx in _indices(len(num), resamples, seed)])
    return Interval(float(num.sum() / w.sum()), *_bounds(samples, level), len(num))


def paired_bootstrap(num_a: np.ndarray, w_a: np.ndarray, num_b: np.ndarray, w_b: np.ndarray, *,
                     resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> PairedTest | None:
    """Paired bootstrap of score(A) - score(B): each resample draws the same cases for both runs (the arrays are
    aligned case by case). p = 2 * min(share of differences <= 0, share >= 0), capped at 1. ``None`` without
    shared cases."""
    arrays = [np.asarray(a, float) for a in (num_a, w_a, num_b, w_b)]
    num_a, w_a, num_b, w_b = arrays
    if not len(num_a):
        return None
    diffs = np.concatenate([_ratios(num_a, w_a, idx) - _ratios(num_b, w_b, idx)
                            for idx in _indices(len(num_a), resamples, seed)])
    p = min(1.0, 2.0 * min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))))
    observed = num_a.sum() / w_a.sum() - num_b.sum() / w_b.sum()
    return PairedTest(float(observed), *_bounds(diffs, level), p, len(num_a), level)
