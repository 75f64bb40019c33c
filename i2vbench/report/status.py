"""Where a run stands, read from its store while it runs or after: cases made, failed and left, and per
metric how many videos it scored (and in which precision), its errors, or why it was skipped."""

from __future__ import annotations

import json

from ..store import RunStore
from ..suite import load_suite, recorded_manifest
from .aggregate import generation_time

#: Failures and errors listed by name before the rest are only counted.
SHOWN = 5


def _suite_size(config: dict) -> int | None:
    """Cases in the run's suite, when its manifest is found (where the run found it, or by name) unchanged."""
    try:
        return len(load_suite(recorded_manifest(config), check_images=False))
    except Exception:  # a manifest gone or edited since is reported by 'evaluate'; status only counts
        return None


def _listed(rows: list[tuple[str, str]], indent: str, label: str, table: str) -> list[str]:
    """The first :data:`SHOWN` (case, reason) rows, then how many more the store's ``table`` holds."""
    lines = [f"{indent}{label}{cid}: {reason}" for cid, reason in rows[:SHOWN]]
    if len(rows) > SHOWN:
        lines.append(f"{indent}... and {len(rows) - SHOWN} more in the store's {table} table")
    return lines


def run_status(store: RunStore) -> list[str]:
    """Lines describing the run in ``store`` (no model is loaded, nothing is written)."""
    config = store.config() or {}
    generation = config.get("generation", {})
    lines = [f"run {store.run_dir}: {generation.get('model', '?')} on {generation.get('suite', '?')}, "
             f"seed {generation.get('seed', '?')}, settings {json.dumps(generation.get('settings', {}), sort_keys=True)}"]
    cases = store.table("cases")
    done = cases[cases["status"] == "done"]["case_id"].tolist()
    failed = cases[cases["status"] == "failed"]
    total = _suite_size(config)
    requested = store.requested()
    if requested is not None:  # counted against what the run was asked for (a --cases run can be finished)
        unmade: int | None = len(set(requested) - set(cases["case_id"]))
        whole = f" (of {total} in the suite)" if total is not None and total != len(requested) else ""
        suite = f"{len(requested)} cases asked for{whole}: "
    else:  # a store from before requests were recorded: the suite stands for them
        unmade = total - len(cases) if total is not None and total >= len(cases) else None
        suite = f"{total} cases in the suite: " if total is not None else ""
    left = f", {unmade} not made yet" if unmade is not None else ""
    lines.append(f"videos: {suite}{len(done)} made, {len(failed)} failed{left}")
    lines += _listed(list(zip(failed["case_id"], failed["error"].fillna(""))), "  ", "failed ", "cases")
    timed = generation_time(store.table("videos"))
    if timed is not None:
        lines.append(f"model time: {timed}")
    errors = store.table("metric_errors")
    info = store.metric_info()
    if not info:
        if unmade or len(failed):
            return lines + ["metrics: none evaluated yet (the command that started this run, run again, makes the "
                            "videos left and scores them all; 'i2vbench evaluate RUN' scores those made so far)"]
        return lines + ["metrics: none evaluated yet (i2vbench evaluate RUN)"]
    lines.append("metrics:")
    width = max(len(m) for m in info)
    for metric, item in info.items():
        if item["status"] != "ran":
            lines.append(f"  {metric:<{width}}  skipped: {item['reason']}")
            continue
        scored = len(store.scored_cases(metric, [s["name"] for s in item["specs"]]) & set(done))
        mine = errors[errors["metric"] == metric]
        precision = f" in {item['precision']}" if item["precision"] else ""
        problems = f", {len(mine)} error(s)" if len(mine) else ""
        lines.append(f"  {metric:<{width}}  {scored} of {len(done)} videos scored{precision}{problems}")
        lines += _listed(list(zip(mine["case_id"], mine["error"])), "    ", f"{metric} error on ", "metric_errors")
    return lines
