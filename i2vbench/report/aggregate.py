"""A run's scores read once from its store, and the numbers derived from them: dataset scores, group scores
and VBench-I2V's normalised Quality / I2V / Total scores.

Every dataset score is a ratio ``sum(numerators) / sum(weights)`` over cases: a plain score has one value per
case with weight 1 (the mean over videos); a frame-weighted score has, per case, the sum of its frame values
over its frame count (VBench's pooled mean over all frames of all videos). Keeping the per-case numerator and
weight lets subsets (categories) and bootstrap resamples of cases use the same formula.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..store import STORE_NAME, RunStore

GROUPS = ("visual_quality", "first_frame", "motion", "text_alignment")


@dataclass(frozen=True)
class Score:
    """One score column: how it aggregates and how it is shown (fractions in percent, others in their unit)."""

    name: str
    metric: str
    group: str
    unit: str = "fraction"
    higher_is_better: bool = True
    frame_weighted: bool = False

    @property
    def column(self) -> str:
        return self.name if self.is_fraction else f"{self.name}_{self.unit.lower()}"

    @property
    def is_fraction(self) -> bool:
        return self.unit == "fraction"

    def display(self, raw: float | None) -> float | None:
        """Raw value in the unit reports show (percent for fractions)."""
        if raw is None or not np.isfinite(raw):
            return None
        return float(raw) * 100.0 if self.is_fraction else float(raw)


@dataclass
class RunData:
    """Everything reports need from one run folder, read in one pass (no model is loaded)."""

    run_dir: Path
    config: dict
    cases: pd.DataFrame          # index case_id: category, prompt, seed, status, error
    videos: pd.DataFrame         # index case_id: path, sha256, fps, num_frames, height, width, gen_seconds
    scores: dict[str, Score]     # by score name, every score of every metric the store knows
    skipped: dict[str, str]      # metric -> reason, for metrics recorded as skipped
    sums: pd.DataFrame           # index case_id, one column per score name: numerator of the dataset ratio
    weights: pd.DataFrame        # same shape: 1 per scored video, or its frame count when frame-weighted
    errors: pd.DataFrame         # metric_errors rows
    precisions: dict[str, str] = field(default_factory=dict)  # metric -> "fp32" | "bf16", where recorded
    requested: list[str] | None = None  # the cases generation was asked for; None: a store from before they were kept

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def generation(self) -> dict:
        return self.config.get("generation", {})

    @property
    def model(self) -> str:
        return str(self.generation.get("model") or self.name)

    @property
    def suite(self) -> str | None:
        return self.generation.get("suite")

    @property
    def unmade(self) -> list[str] | None:
        """Cases asked for that have neither a video nor a recorded failure (the run stopped before them);
        ``None`` when the store does not say what was asked for."""
        if self.requested is None:
            return None
        return [c for c in self.requested if c not in self.cases.index]

    def ran(self, score: str) -> bool:
        """Whether ``score``'s metric ran (a skipped metric's score is empty, never 0)."""
        s = self.scores.get(score)
        return s is not None and s.metric not in self.skipped

    def case_terms(self, score: str, cases: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per-case numerators and weights of ``score`` (cases without a value left out) and their case ids."""
        if not self.ran(score) or score not in self.sums:
            return np.zeros(0), np.zeros(0), []
        num, w = self.sums[score], self.weights[score]
        if cases is not None:
            keep = [c for c in cases if c in num.index]
            num, w = num.loc[keep], w.loc[keep]
        ok = num.notna() & w.notna() & (w > 0)
        return num[ok].to_numpy(float), w[ok].to_numpy(float), list(num.index[ok])

    def dataset_score(self, score: str, cases: Iterable[str] | None = None) -> float | None:
        """Dataset score in display units (percent for fractions); ``None`` when skipped or never scored."""
        num, w, _ = self.case_terms(score, cases)
        if not len(num):
            return None
        return self.scores[score].display(num.sum() / w.sum())

    @cached_property
    def _case_values(self) -> pd.DataFrame:
        return self.sums / self.weights.where(self.weights > 0)

    def case_score(self, score: str, case_id: str) -> float | None:
        """One case's score in display units; ``None`` when skipped or not scored."""
        if not self.ran(score) or score not in self._case_values or case_id not in self._case_values.index:
            return None
        return self.scores[score].display(self._case_values.at[case_id, score])


@dataclass(frozen=True)
class GenerationTime:
    """The model's time for a run's videos, from the seconds recorded with each (its batch's time over the batch
    size). The median stands for the run: the first batch of a compiled model includes minutes of compiling."""

    median: float
    total: float
    videos: int

    def __str__(self) -> str:
        return f"{self.median:.2f} s per video (median of {self.videos}; {self.total:.1f} s in all)"


def generation_time(videos: pd.DataFrame) -> GenerationTime | None:
    """``None`` when no video of the run was timed (videos made elsewhere, or a store from before timing)."""
    seconds = videos["gen_seconds"].dropna() if "gen_seconds" in videos else pd.Series(dtype=float)
    if seconds.empty:
        return None
    return GenerationTime(float(seconds.median()), float(seconds.sum()), len(seconds))


def load_run(run_dir: str | Path) -> RunData:
    """Read one run folder's store into a :class:`RunData`."""
    with RunStore.open_readonly(run_dir) as store:
        requested = store.requested()
        config = store.config() or {}
        cases = store.table("cases").set_index("case_id")
        videos = store.table("videos").set_index("case_id")
        info = store.metric_info()
        score_rows = store.table("scores")
        frame_rows = store.table("frame_scores")
        errors = store.table("metric_errors")
    scores: dict[str, Score] = {}
    for metric, item in info.items():
        for spec in item["specs"]:
            scores[spec["name"]] = Score(name=spec["name"], metric=metric, group=item["group"] or "",
                                         unit=spec.get("unit", "fraction"),
                                         higher_is_better=bool(spec.get("higher_is_better", True)),
                                         frame_weighted=bool(spec.get("frame_weighted", False)))
    skipped = {m: item["reason"] or "" for m, item in info.items() if item["status"] != "ran"}
    sums, weights = {}, {}
    for name, s in scores.items():
        frames = frame_rows[(frame_rows["score"] == name) & frame_rows["value"].notna()]
        if s.frame_weighted and len(frames):
            grouped = frames.groupby("case_id")["value"]
            sums[name], weights[name] = grouped.sum(), grouped.count().astype(float)
        else:
            values = score_rows[(score_rows["score"] == name) & score_rows["value"].notna()].set_index("case_id")["value"]
            sums[name], weights[name] = values, pd.Series(1.0, index=values.index)
    precisions = {m: item["precision"] for m, item in info.items() if item["status"] == "ran" and item["precision"]}
    return RunData(run_dir=Path(run_dir), config=config, cases=cases, videos=videos, scores=scores, skipped=skipped,
                   sums=pd.DataFrame(sums, dtype=float), weights=pd.DataFrame(weights, dtype=float), errors=errors,
                   precisions=precisions, requested=requested)


def load_runs(run_dirs: Sequence[str | Path]) -> list[RunData]:
    """The runs of the given folders, each once (a folder given twice, e.g. by a glob and by name, would be
    a row of its own)."""
    if not run_dirs:
        raise ConfigError("no run folders given")
    dirs = [d for d in unique_dirs(run_dirs) if not _report_output(d)]
    if not dirs:
        raise ConfigError(f"no run folders among {', '.join(map(str, run_dirs))}")
    return [load_run(d) for d in dirs]


def _report_output(path: Path) -> bool:
    """Whether ``path`` is a file (a leaderboard CSV, a report page) or a report's ``<name>_files`` folder: what a
    glob such as ``runs/*`` also picks up once reports were written beside the runs. Skipped, with a note."""
    if path.is_file() or (path.is_dir() and path.name.endswith("_files") and (path / "plots").is_dir()
                          and not (path / STORE_NAME).exists()):
        print(f"note: skipping {path}: not a run folder", file=sys.stderr)
        return True
    return False


def unique_dirs(run_dirs: Sequence[str | Path]) -> list[Path]:
    """The folders in their order, each once (compared by resolved path)."""
    seen: dict[Path, Path] = {}
    for d in run_dirs:
        seen.setdefault(Path(d).resolve(), Path(d))
    return list(seen.values())


def labels(runs: Sequence[RunData]) -> list[str]:
    """Row label of each run: its model name, with as much of the run folder's path as tells it apart where
    several runs share a model (``seed0/static-mini`` and ``seed1/static-mini``)."""
    models = [r.model for r in runs]
    out = []
    for model, run in zip(models, runs):
        twins = [other.run_dir.resolve().parts for other in runs if other.model == model and other is not run]
        if not twins:
            out.append(model)
            continue
        parts = run.run_dir.resolve().parts
        depth = 1
        while depth < len(parts) and any(other[-depth:] == parts[-depth:] for other in twins):
            depth += 1
        out.append(f"{model} ({'/'.join(parts[-depth:])})")
    return out


def ordered_scores(runs: Sequence[RunData]) -> list[Score]:
    """The union of the runs' scores, ordered by group (as in :data:`GROUPS`) then name."""
    union: dict[str, Score] = {}
    for run in runs:
        for name, s in run.scores.items():
            union.setdefault(name, s)
    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(union.values(), key=lambda s: (rank.get(s.group, len(GROUPS)), s.name))


# group scores ------------------------------------------------------------------------------------------------
#: stand-in scores that measure the same dimension as another score: never counted twice in a group
STAND_INS = {"i2v_background_clip": "i2v_background"}


def group_members(scores: Sequence[Score], present: Mapping[str, bool]) -> dict[str, list[Score]]:
    """Scores that make each group's score: the group's fraction scores that at least one row has a value for
    (``present[name]``). Scores in physical units (dB, px) are never averaged into a group, and a stand-in
    (:data:`STAND_INS`) only counts when the score it stands in for is absent."""
    out: dict[str, list[Score]] = {}
    for s in scores:
        if s.name in STAND_INS and present.get(STAND_INS[s.name]):
            continue
        if s.is_fraction and present.get(s.name):
            out.setdefault(s.group, []).append(s)
    return out


def group_score(values: Mapping[str, float | None], members: Sequence[Score]) -> float | None:
    """Mean of the members' percent values (a lower-is-better fraction counts as ``100 - value``);
    empty when any member is missing, so a group score always averages the same dimensions across rows."""
    vals = [values.get(s.name) for s in members]
    if not vals or any(v is None or not np.isfinite(v) for v in vals):
        return None
    return float(np.mean([v if s.higher_is_better else 100.0 - v for v, s in zip(vals, members)]))


# VBench-I2V aggregate scores ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class VBenchDim:
    """One VBench-I2V dimension in the aggregate: its key in VBench, min-max range and weight."""

    key: str
    min: float
    max: float
    weight: float
    part: str  # "quality" or "i2v"


# Source: Vchitect/VBench, scripts/constant.py (NORMALIZE_DIC_I2V, DIM_WEIGHT_I2V, I2V_LIST, I2V_QUALITY_LIST,
# I2V_WEIGHT, I2V_QUALITY_WEIGHT; commit 7975661ca55fb0e4fd926d48952210306257db11) and the formulas of
# scripts/cal_i2v_final_score.py: normalised = (raw - Min) / (Max - Min) * weight on raw fractions (not clipped);
# Quality = sum of weighted normalised quality dims / sum of their weights; I2V likewise over the I2V dims;
# Total = (Quality * I2V_QUALITY_WEIGHT + I2V * I2V_WEIGHT) / (I2V_QUALITY_WEIGHT + I2V_WEIGHT).
# Keys are this toolkit's score names (VBench's I2VKEY maps the same names to its display names).
VBENCH_I2V_DIMS: dict[str, VBenchDim] = {
    "camera_motion": VBenchDim("Video-Text Camera Motion", 0.0, 1.0, 0.1, "i2v"),
    "i2v_subject": VBenchDim("Video-Image Subject Consistency", 0.1462, 1.0, 1.0, "i2v"),
    "i2v_background": VBenchDim("Video-Image Background Consistency", 0.2615, 1.0, 1.0, "i2v"),
    "subject_consistency": VBenchDim("Subject Consistency", 0.1462, 1.0, 1.0, "quality"),
    "background_consistency": VBenchDim("Background Consistency", 0.2615, 1.0, 1.0, "quality"),
    "motion_smoothness": VBenchDim("Motion Smoothness", 0.7060, 0.9975, 1.0, "quality"),
    "dynamic_degree": VBenchDim("Dynamic Degree", 0.0, 1.0, 0.5, "quality"),
    "aesthetic_quality": VBenchDim("Aesthetic Quality", 0.0, 1.0, 1.0, "quality"),
    "imaging_quality": VBenchDim("Imaging Quality", 0.0, 1.0, 1.0, "quality"),
}
VBENCH_I2V_QUALITY_WEIGHT = 1.0
VBENCH_I2V_I2V_WEIGHT = 1.0
VBENCH_COLUMNS = ("vbench_quality", "vbench_i2v", "vbench_total")


def vbench_normalised(score: str, percent: float) -> float:
    """VBench-I2V's min-max normalisation of one dimension (input and output in percent, weight not applied)."""
    d = VBENCH_I2V_DIMS[score]
    return (percent / 100.0 - d.min) / (d.max - d.min) * 100.0


def vbench_i2v_scores(values: Mapping[str, float | None]) -> dict[str, float | None]:
    """VBench-I2V Quality, I2V and Total scores (percent) from dimension scores in percent.

    VBench's script fills a missing dimension with 0, which silently drags the aggregate down; here a part with
    any dimension missing is empty instead (and so is the Total), and ``vbench_missing`` names what is missing.
    """
    parts: dict[str, float | None] = {}
    for part in ("quality", "i2v"):
        dims = [k for k, d in VBENCH_I2V_DIMS.items() if d.part == part]
        vals = [values.get(k) for k in dims]
        if any(v is None or not np.isfinite(v) for v in vals):
            parts[part] = None
            continue
        weighted = sum(vbench_normalised(k, v) * VBENCH_I2V_DIMS[k].weight for k, v in zip(dims, vals))
        parts[part] = weighted / sum(VBENCH_I2V_DIMS[k].weight for k in dims)
    q, i = parts["quality"], parts["i2v"]
    total = None if q is None or i is None else (
        (q * VBENCH_I2V_QUALITY_WEIGHT + i * VBENCH_I2V_I2V_WEIGHT) / (VBENCH_I2V_QUALITY_WEIGHT + VBENCH_I2V_I2V_WEIGHT))
    missing = [k for k in VBENCH_I2V_DIMS if values.get(k) is None or not np.isfinite(values[k])]
    return {"vbench_quality": q, "vbench_i2v": i, "vbench_total": total, "vbench_missing": ";".join(missing)}


def settings_text(run: RunData) -> str:
    """The run's resolved model settings as compact JSON (one CSV cell)."""
    return json.dumps(run.generation.get("settings", {}), sort_keys=True, separators=(",", ":"), default=str)
