"""The leaderboard: one row per run (and one per run and category), one column per score, group scores and
VBench-I2V's aggregate scores. Fractions are shown in percent; a skipped metric's cells stay empty, never 0."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ..errors import ConfigError
from ..video import write_text_if_changed
from .aggregate import (
    GROUPS,
    VBENCH_COLUMNS,
    RunData,
    Score,
    generation_time,
    group_members,
    group_score,
    labels,
    load_runs,
    ordered_scores,
    settings_text,
    vbench_i2v_scores,
)
from .caveats import caveats

ID_COLUMNS = ("run", "model", "suite", "suite_manifest_sha256", "seed", "settings", "cases", "videos", "failed",
              "not_made", "scored", "score_errors", "skipped_metrics", "bf16_metrics", "seconds_per_video")


def case_counts(run: RunData, cases: Iterable[str] | None = None) -> dict[str, int]:
    """``cases`` in the store, ``videos`` generated, generation ``failed``, ``scored`` (a video with a value for
    every score of every metric that ran and no scoring error) and ``score_errors`` (recorded (case, metric) errors)."""
    table = run.cases if cases is None else run.cases.loc[[c for c in cases if c in run.cases.index]]
    done = table.index[table["status"] == "done"]
    errors = run.errors[run.errors["case_id"].isin(table.index)]
    errored = set(errors["case_id"])
    ran = [s for s in run.scores if run.ran(s) and s in run.sums]
    complete = run.sums.reindex(index=done, columns=ran).notna().all(axis=1) if ran else pd.Series(False, index=done)
    return {"cases": len(table), "videos": len(done), "failed": int((table["status"] == "failed").sum()),
            "scored": int(sum(bool(ok) and cid not in errored for cid, ok in complete.items())),
            "score_errors": len(errors)}


def score_values(run: RunData, scores: Sequence[Score], cases: Iterable[str] | None = None) -> dict[str, float | None]:
    """Dataset score (display units) of each score, by score name; ``None`` where skipped or never scored."""
    cases = None if cases is None else list(cases)
    return {s.name: run.dataset_score(s.name, cases) for s in scores}


def _frame(rows: list[dict], values: list[dict], scores: Sequence[Score], key_columns: Sequence[str]) -> pd.DataFrame:
    """Rows with group scores (over members present in any row), VBench aggregates and score columns."""
    members = group_members(scores, {s.name: any(v[s.name] is not None for v in values) for s in scores})
    out = []
    for row, vals in zip(rows, values):
        row = dict(row)
        row.update({f"group_{g}": group_score(vals, members.get(g, [])) for g in GROUPS})
        row.update(vbench_i2v_scores(vals))
        row.update({s.column: vals[s.name] for s in scores})
        out.append(row)
    columns = [*key_columns, *[f"group_{g}" for g in GROUPS], *VBENCH_COLUMNS, "vbench_missing",
               *[s.column for s in scores]]
    return pd.DataFrame(out, columns=columns)


def leaderboard_tables(runs: Sequence[RunData]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The leaderboard (one row per run) and the per-category leaderboard (one row per run and category)."""
    scores = ordered_scores(runs)
    rows, values, cat_rows, cat_values = [], [], [], []
    for run, label in zip(runs, labels(runs)):
        skipped = ";".join(sorted(run.skipped))
        unmade = run.unmade
        rows.append({"run": run.name, "model": label, "suite": run.suite,
                     "suite_manifest_sha256": run.generation.get("suite_manifest_sha256"),
                     "seed": run.generation.get("seed"), "settings": settings_text(run), **case_counts(run),
                     "not_made": None if unmade is None else len(unmade), "skipped_metrics": skipped,
                     "bf16_metrics": ";".join(sorted(m for m, p in run.precisions.items() if p == "bf16")),
                     "seconds_per_video": getattr(generation_time(run.videos), "median", None)})
        values.append(score_values(run, scores))
        for category, ids in run.cases.groupby("category", dropna=False, sort=True).groups.items():
            cat_rows.append({"run": run.name, "model": label, "suite": run.suite,
                             "category": "" if pd.isna(category) else category, **case_counts(run, ids)})
            cat_values.append(score_values(run, scores, ids))
    board = _frame(rows, values, scores, ID_COLUMNS)
    for whole in ("seed", "not_made"):  # whole numbers, empty for runs that do not say (not 1.0 beside NaN)
        board[whole] = board[whole].astype("Int64")
    by_category = _frame(cat_rows, cat_values, scores,
                         ("run", "model", "suite", "category", "cases", "videos", "failed", "scored", "score_errors"))
    return board, by_category


def leaderboard(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """Leaderboard of several runs (columns are the union of their scores; missing ones stay empty)."""
    return leaderboard_tables(load_runs(run_dirs))[0]


def category_path(out: str | Path) -> Path:
    """Where the per-category CSV goes: beside the leaderboard, ``<stem>_by_category.csv``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_by_category{out.suffix or '.csv'}")


def write_leaderboard(run_dirs: Sequence[str | Path], out: str | Path) -> tuple[Path, list[str]]:
    """Write the leaderboard CSV and the per-category CSV beside it (values rounded to 2 decimals); returns the
    path and the notes a reader of the rows needs (:func:`.caveats.caveats`)."""
    out = Path(out)
    runs = load_runs(run_dirs)
    board, by_category = leaderboard_tables(runs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for frame, path in ((board, out), (by_category, category_path(out))):
            write_text_if_changed(path, frame.round(2).to_csv(index=False))
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}; choose a writable path with -o") from exc
    return out, caveats(runs, labels(runs))
