"""Notes that keep a reader from misreading a table of several runs: runs over other suites or other cases, runs
that stopped part-way, values over fewer videos than a run made, scores computed in other precisions. The
comparison tables, the HTML report and the ``leaderboard`` command all show the same notes."""

from __future__ import annotations

from typing import Sequence

from .aggregate import RunData, Score, ordered_scores


def caveats(runs: Sequence[RunData], names: Sequence[str], scores: Sequence[Score] | None = None) -> list[str]:
    """Every note that applies to ``runs`` (labelled ``names``), for the ``scores`` shown (default: all)."""
    scores = ordered_scores(runs) if scores is None else scores
    return (precision_notes(runs, names, scores) + comparability_notes(runs, names) + unfinished_notes(runs, names)
            + partial_notes(runs, names))


def precision_notes(runs: Sequence[RunData], names: Sequence[str], scores: Sequence[Score]) -> list[str]:
    """A note for each metric that the runs scored in different precisions (bf16 and fp32 differ slightly)."""
    notes = []
    for metric in dict.fromkeys(s.metric for s in scores):
        by_precision: dict[str, list[str]] = {}
        for run, name in zip(runs, names):
            if metric in run.precisions:
                by_precision.setdefault(run.precisions[metric], []).append(name)
        if len(by_precision) > 1:
            parts = "; ".join(f"{p}: {', '.join(who)}" for p, who in sorted(by_precision.items()))
            notes.append(f"{metric} was scored in different precisions ({parts}); bf16 and fp32 scores may differ in "
                         "the third or fourth decimal.")
    return notes


def same_suite_of(runs: Sequence[RunData]) -> bool:
    """Whether the runs were all made on one suite (by name and manifest digest)."""
    return len({(r.suite, r.generation.get("suite_manifest_sha256")) for r in runs}) <= 1


def comparability_notes(runs: Sequence[RunData], names: Sequence[str]) -> list[str]:
    """Notes where the runs' values are not over the same cases: other suites, or other cases of one suite."""
    if not same_suite_of(runs):
        parts = "; ".join(f"{name}: {run.suite}" for run, name in zip(runs, names))
        return [f"The runs were made on different suites or versions of a suite ({parts}): their values are over "
                "different cases and not comparable (comparison tables mark no best value)."]
    done = [frozenset(run.cases.index[run.cases["status"] == "done"]) for run in runs]
    if len(set(done)) > 1:
        parts = "; ".join(f"{name}: {len(d)}" for d, name in zip(done, names))
        return [f"The runs hold different cases of the suite (videos made: {parts}): each value is over its own "
                "run's cases; paired tests use the cases a run shares with the baseline."]
    return []


def partial_notes(runs: Sequence[RunData], names: Sequence[str]) -> list[str]:
    """A note for each run with values over fewer videos than it made (an evaluation stopped part-way, videos a
    metric could not score): such a value is not the run's result, only its scored videos'."""
    notes = []
    for run, name in zip(runs, names):
        made = int((run.cases["status"] == "done").sum())
        short = {s.column: n for s in ordered_scores([run]) if run.ran(s.name)
                 and 0 < (n := len(run.case_terms(s.name)[2])) < made}  # none at all: an empty cell says it
        if short:
            parts = ", ".join(f"{column} {n}" for column, n in short.items())
            notes.append(f"{name}: values over fewer than its {made} videos (videos scored: {parts}); "
                         f"'i2vbench status {run.run_dir}' says why: a video a metric could not score stays "
                         f"unscored, an evaluation stopped part-way is finished by 'i2vbench evaluate {run.run_dir}'.")
    return notes


def unfinished_notes(runs: Sequence[RunData], names: Sequence[str]) -> list[str]:
    """A note for each run that stopped before making every case it was asked for: its values are over the cases
    made so far, not the run's result."""
    notes = []
    for run, name in zip(runs, names):
        unmade = run.unmade
        if unmade:
            asked = len(run.requested or [])
            notes.append(f"{name}: {len(unmade)} of the {asked} cases its run was asked for are not made yet (it "
                         f"stopped part-way), and its values are over the cases made so far. Run its command again "
                         f"to finish it ('i2vbench status {run.run_dir}' shows where it stands).")
    return notes
