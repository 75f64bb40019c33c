"""Published reference numbers (VBench-I2V) shipped as data: rows measured by others on another suite, which
tables and plots show in a block of their own, never mixed with measured rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .aggregate import vbench_i2v_scores

DATA = Path(__file__).with_name("published_vbench_i2v.json")


@dataclass(frozen=True)
class PublishedRow:
    """One published model: its scores in percent, by this toolkit's score names."""

    model: str
    values: dict[str, float]

    def with_aggregates(self) -> dict[str, float | None]:
        """Scores plus VBench-I2V's Quality / I2V / Total computed from them."""
        out = {**self.values, **vbench_i2v_scores(self.values)}
        out.pop("vbench_missing")
        return out


@dataclass(frozen=True)
class PublishedTable:
    benchmark: str
    source: str
    suite_note: str
    scores: tuple[str, ...]
    rows: tuple[PublishedRow, ...]


@lru_cache(maxsize=1)
def published_vbench_i2v() -> PublishedTable:
    """The VBench-I2V reference rows of the shipped data file."""
    data = json.loads(DATA.read_text())
    scores = tuple(data["scores"])
    rows = tuple(PublishedRow(r["model"], dict(zip(scores, map(float, r["values"])))) for r in data["rows"])
    return PublishedTable(data["benchmark"], data["source"], data["suite_note"], scores, rows)
