"""The leaderboard: one row per run, one column per score, dataset-level aggregation as each metric defines."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ..errors import ConfigError
from ..store import RunStore


def score_column(spec: dict) -> str:
    """Column name of a score: fractions are shown in percent under their own name, others get their unit."""
    return spec["name"] if spec.get("unit", "fraction") == "fraction" else f"{spec['name']}_{spec['unit'].lower()}"


def dataset_scores(store: RunStore) -> dict[str, float | None]:
    """Dataset score of every score of every metric that ran; ``None`` for skipped metrics (never 0)."""
    scores = store.table("scores")
    frames = store.table("frame_scores")
    out: dict[str, float | None] = {}
    for metric, info in store.metric_info().items():
        for spec in info["specs"]:
            col = score_column(spec)
            if info["status"] != "ran":
                out[col] = None
                continue
            if spec.get("frame_weighted"):
                values = frames.loc[frames["score"] == spec["name"], "value"]
            else:
                values = scores.loc[scores["score"] == spec["name"], "value"]
            value = float(values.mean()) if len(values) else None
            if value is not None and spec.get("unit", "fraction") == "fraction":
                value *= 100.0
            out[col] = value
    return out


def run_row(run_dir: str | Path) -> dict:
    """The leaderboard row of one run folder."""
    with RunStore.open_existing(run_dir) as store:
        config = store.config() or {}
        gen = config.get("generation", {})
        cases = store.table("cases")
        errors = store.table("metric_errors")
        row = {
            "run": Path(run_dir).name,
            "model": gen.get("model"),
            "suite": gen.get("suite"),
            "cases": len(cases),
            "videos": int((cases["status"] == "done").sum()),
            "failed": int((cases["status"] == "failed").sum()),
            "score_errors": len(errors),
            "skipped_metrics": ";".join(m for m, i in store.metric_info().items() if i["status"] == "skipped"),
        }
        row.update(dataset_scores(store))
    return row


def leaderboard(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """Leaderboard of several runs (columns are the union of their scores; missing ones stay empty)."""
    if not run_dirs:
        raise ConfigError("no run folders given")
    return pd.DataFrame([run_row(d) for d in run_dirs])


def write_leaderboard(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write the leaderboard CSV (values rounded to 2 decimals) and return its path."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        leaderboard(run_dirs).round(2).to_csv(out, index=False)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}; choose a writable path with -o") from exc
    return out
