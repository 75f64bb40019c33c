"""Comparison tables (models x scores) in Markdown, LaTeX and CSV: each value with its bootstrap confidence
interval over cases, the best measured value in bold, a dagger where a run differs significantly from the
baseline (paired bootstrap on shared cases), and published reference rows in a block of their own."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd

from .aggregate import RunData, Score, labels, ordered_scores
from .caveats import caveats, same_suite_of
from .published import published_vbench_i2v
from .stats import LEVEL, RESAMPLES, SEED, PairedTest, bootstrap_ci, paired_bootstrap

FORMATS = ("md", "latex", "csv")
#: Fewer shared cases than this and no paired test is made: a bootstrap over a handful of cases calls almost
#: any difference significant (with one case, every resample has the same sign).
MIN_PAIRED = 10
DAGGER_RULE = ("paired bootstrap over the cases both runs scored (same resampled cases for both), two-sided "
               "p < {alpha:g}, i.e. the {level:g} % interval of the difference excludes 0")


@dataclass(frozen=True)
class Column:
    """A table column: one score."""

    name: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass
class Cell:
    """A value in display units (percent for fractions) with its interval and its test against the baseline."""

    value: float
    low: float | None = None
    high: float | None = None
    n: int | None = None
    test: PairedTest | None = None   # in raw units
    scale: float = 1.0               # raw -> display
    best: bool = False

    @property
    def significant(self) -> bool:
        return self.test is not None and self.test.significant


@dataclass
class Row:
    label: str
    block: str                       # "measured" or "published"
    cells: dict[str, Cell]
    run: str | None = None
    videos: int | None = None
    baseline: bool = False


@dataclass
class Comparison:
    columns: list[Column]
    measured: list[Row]
    published: list[Row] = field(default_factory=list)
    baseline: str | None = None
    resamples: int = RESAMPLES
    level: float = LEVEL
    seed: int = SEED
    published_note: str | None = None
    notes: list[str] = field(default_factory=list)

    def legend(self) -> list[str]:
        """The lines that say how to read the table."""
        pct = f"{self.level * 100:g}"
        lines = [f"Fractions in percent; brackets: {pct} % percentile bootstrap interval over cases "
                 f"({self.resamples} resamples, seed {self.seed}; frame-weighted scores resample cases with their "
                 "frames). Bold: best measured value of a column (arrow: which way is better)."]
        if self.baseline:
            rule = DAGGER_RULE.format(alpha=1 - self.level, level=self.level * 100)
            lines.append(f"†d: differs from the baseline {self.baseline} by d (run − baseline, on the cases both "
                         f"scored): {rule}; not tested under {MIN_PAIRED} shared cases.")
        if self.published:
            lines.append(f"Published rows: {self.published_note} Not bold-compared, no intervals.")
        return lines + self.notes


def _cell(run: RunData, score: Score, resamples: int, level: float, seed: int) -> Cell | None:
    num, w, _ = run.case_terms(score.name)
    ci = bootstrap_ci(num, w, resamples=resamples, level=level, seed=seed)
    if ci is None:
        return None
    scale = 100.0 if score.is_fraction else 1.0
    return Cell(ci.value * scale, ci.low * scale, ci.high * scale, ci.n, scale=scale)


def _paired(run: RunData, base: RunData, score: str, resamples: int, level: float, seed: int) -> PairedTest | None:
    _, _, ids_a = run.case_terms(score)
    _, _, ids_b = base.case_terms(score)
    shared = sorted(set(ids_a) & set(ids_b))
    if len(shared) < MIN_PAIRED:
        return None
    num_a, w_a, _ = run.case_terms(score, shared)
    num_b, w_b, _ = base.case_terms(score, shared)
    return paired_bootstrap(num_a, w_a, num_b, w_b, resamples=resamples, level=level, seed=seed)


def _scored_apart(runs: Sequence[RunData], columns: Sequence[Column]) -> list[Column]:
    """The columns whose values the runs computed over different cases (a video failed or went unscored in
    one run): their values are not comparable, so none of them gets a best."""
    apart = []
    for col in columns:
        scored = {frozenset(run.case_terms(col.name)[2]) for run in runs if run.dataset_score(col.name) is not None}
        if len(scored) > 1:
            apart.append(col)
    return apart


def _mark_best(rows: Sequence[Row], columns: Sequence[Column]) -> None:
    for col in columns:
        cells = [r.cells[col.name] for r in rows if col.name in r.cells]
        if len(cells) < 2:
            continue
        shown = [round(c.value, 2) for c in cells]
        best = max(shown) if col.higher_is_better else min(shown)
        for c, v in zip(cells, shown):
            c.best = v == best


def _untested_notes(rows: Sequence[Row], baseline: int | None) -> list[str]:
    """A note for each run that shares too few scored cases with the baseline to be tested (no † is possible,
    which is not 'no difference')."""
    if baseline is None:
        return []
    return [f"{row.label} shares fewer than {MIN_PAIRED} scored cases with the baseline (or is on another suite): "
            "not tested against it."
            for i, row in enumerate(rows) if i != baseline and row.cells
            and all(c.test is None for c in row.cells.values())
            and any(k in rows[baseline].cells for k in row.cells)]


def compare_runs(runs: Sequence[RunData], baseline: int | None = None, published: bool = False,
                 resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Comparison:
    """Build the comparison of ``runs``; ``baseline`` is the index of the baseline run among them."""
    scores = [s for s in ordered_scores(runs) if any(r.dataset_score(s.name) is not None for r in runs)]
    all_scores = ordered_scores(runs)
    notes = [f"Not measured by any run: {', '.join(s.column for s in all_scores if s not in scores)}."] \
        if len(scores) < len(all_scores) else []
    columns = [Column(s.name, s.column, s.unit, s.higher_is_better) for s in scores]
    names = labels(runs)
    same_suite = same_suite_of(runs)
    notes += caveats(runs, names, scores)
    rows = []
    for i, (run, label) in enumerate(zip(runs, names)):
        cells = {}
        for s in scores:
            cell = _cell(run, s, resamples, level, seed)
            if cell is None:
                continue
            if baseline is not None and i != baseline and same_suite and runs[baseline].ran(s.name):
                cell.test = _paired(run, runs[baseline], s.name, resamples, level, seed)
            cells[s.name] = cell
        rows.append(Row(label + (" (baseline)" if i == baseline else ""), "measured", cells, run.name,
                        int((run.cases["status"] == "done").sum()), baseline=i == baseline))
    if same_suite:
        apart = _scored_apart(runs, columns)
        _mark_best(rows, [c for c in columns if c not in apart])
        if apart:
            notes.append(f"No best is marked for {', '.join(c.label for c in apart)}: the runs scored different "
                         "cases there (failed or unscored videos), so their values are not comparable; the paired "
                         "test († with the difference) uses only the cases both scored.")
    notes += _untested_notes(rows, baseline)
    comparison = Comparison(columns, rows, baseline=names[baseline] if baseline is not None else None,
                            resamples=resamples, level=level, seed=seed, notes=notes)
    if published:
        table = published_vbench_i2v()
        known = {c.name for c in columns}
        comparison.columns += [Column(n, n, "fraction", True) for n in table.scores if n not in known]
        comparison.published = [Row(r.model, "published", {k: Cell(v) for k, v in r.values.items()})
                                 for r in table.rows]
        comparison.published_note = f"{table.suite_note} Source: {table.source}"
    return comparison


# rendering ---------------------------------------------------------------------------------------------------
def _number(cell: Cell) -> str:
    return f"{cell.value:.2f}"


def _difference(cell: Cell) -> str:
    """The tested difference to the baseline, signed, in display units."""
    return f"{cell.test.diff * cell.scale:+.2f}"


def _interval(cell: Cell) -> str:
    return f"[{cell.low:.2f}, {cell.high:.2f}]" if cell.low is not None else ""


#: what GitHub-flavoured Markdown would read as markup in a cell: emphasis, code, maths, table pipes, HTML tags
_MD_SPECIAL = {"\\": "\\\\", "|": "\\|", "*": "\\*", "_": "\\_", "`": "\\`", "$": "\\$", "<": "&lt;", "\n": " "}


def _md_escape(text: str) -> str:
    return "".join(_MD_SPECIAL.get(ch, ch) for ch in text)


def to_markdown(c: Comparison) -> str:
    """A GitHub-flavoured Markdown table plus its legend."""
    header = ["model", "videos"] + [f"{_md_escape(col.label)} {'↑' if col.higher_is_better else '↓'}" for col in c.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---:"] + [":---:"] * len(c.columns)) + "|"]

    def row_line(row: Row) -> str:
        out = [_md_escape(row.label), "" if row.videos is None else str(row.videos)]
        for col in c.columns:
            cell = row.cells.get(col.name)
            if cell is None:
                out.append("–")
                continue
            text = f"**{_number(cell)}**" if cell.best else _number(cell)
            text += " " + _interval(cell) if cell.low is not None else ""
            out.append(text + (f" †{_difference(cell)}" if cell.significant else ""))
        return "| " + " | ".join(out) + " |"

    lines += [row_line(r) for r in c.measured]
    if c.published:
        lines.append("| " + " | ".join(["*published, different suite:*"] + [""] * (len(header) - 1)) + " |")
        lines += [row_line(r) for r in c.published]
    return "\n".join(lines) + "\n\n" + "\n\n".join(c.legend()) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # in the default OT1 font encoding these print as other glyphs (an em dash, inverted marks)
                  "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(c: Comparison) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), its legend as comments above it."""
    n = 2 + len(c.columns)
    out = [f"% {line}" for line in c.legend()]
    out += [r"\begin{tabular}{l r " + " ".join("c" for _ in c.columns) + "}", r"\toprule"]
    header = ["Model", "Videos"] + [latex_escape(col.label) + (r" $\uparrow$" if col.higher_is_better else r" $\downarrow$")
                                    for col in c.columns]
    out += [" & ".join(header) + r" \\", r"\midrule"]

    def row_line(row: Row) -> str:
        cells = [latex_escape(row.label), "--" if row.videos is None else str(row.videos)]
        for col in c.columns:
            cell = row.cells.get(col.name)
            if cell is None:
                cells.append("--")
                continue
            text = rf"\textbf{{{_number(cell)}}}" if cell.best else _number(cell)
            if cell.low is not None:
                text += r" {\scriptsize " + _interval(cell) + "}"
            cells.append(text + (rf"$^\dagger${{\scriptsize {_difference(cell)}}}" if cell.significant else ""))
        return " & ".join(cells) + r" \\"

    out += [row_line(r) for r in c.measured]
    if c.published:
        out += [r"\midrule", rf"\multicolumn{{{n}}}{{l}}{{\textit{{Published on another suite (VBench-I2V); not comparable case by case}}}} \\"]
        out += [row_line(r) for r in c.published]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


CSV_COLUMNS = ["block", "model", "run", "score", "unit", "higher_is_better", "value", "ci_low", "ci_high", "n_cases",
               "best", "baseline", "diff_vs_baseline", "diff_ci_low", "diff_ci_high", "p_value", "shared_cases",
               "significant"]


def to_csv(c: Comparison) -> str:
    """Long format: one line per row and score, with interval, test against the baseline and flags."""
    records = []
    for row in [*c.measured, *c.published]:
        for col in c.columns:
            cell = row.cells.get(col.name)
            if cell is None:
                continue
            t = cell.test
            records.append({
                "block": row.block, "model": row.label, "run": row.run, "score": col.label,
                "unit": "percent" if col.unit == "fraction" else col.unit, "higher_is_better": col.higher_is_better,
                "value": cell.value, "ci_low": cell.low, "ci_high": cell.high, "n_cases": cell.n, "best": cell.best,
                "baseline": row.baseline,
                "diff_vs_baseline": t.diff * cell.scale if t else None,
                "diff_ci_low": t.low * cell.scale if t else None, "diff_ci_high": t.high * cell.scale if t else None,
                "p_value": t.p_value if t else None, "shared_cases": t.n if t else None,
                "significant": cell.significant if t else None,
            })
    frame = pd.DataFrame(records, columns=CSV_COLUMNS).round(4)
    frame = frame.astype({"n_cases": "Int64", "shared_cases": "Int64"})
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue()


RENDERERS = {"md": to_markdown, "latex": to_latex, "csv": to_csv}
