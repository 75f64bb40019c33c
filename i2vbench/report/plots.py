"""Plots of leaderboards (matplotlib, Agg through ``Figure`` objects: no display, no global pyplot state), each
written as PNG and SVG: a radar chart of the dimensions, per-category bars, and dynamic degree against subject
consistency. A plot whose scores no run has is skipped with a note instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .aggregate import Score
from .published import published_vbench_i2v

MAX_CATEGORY_PANELS = 12
RADAR_FLOOR = 0.2  # radius of the worst model on a dimension (normalised radar)


@dataclass
class Plot:
    name: str
    title: str
    png: Path
    svg: Path


@dataclass
class PlotSet:
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fractions(table: pd.DataFrame, scores: Sequence[Score]) -> list[Score]:
    """Fraction scores with at least one value in ``table``."""
    return [s for s in scores if s.is_fraction and s.column in table and table[s.column].notna().any()]


def radar_figure(board: pd.DataFrame, scores: Sequence[Score]) -> Figure | str:
    """One polygon per model over the fraction dimensions. With several models each dimension is min-max
    normalised across them (worst at 0.2, best at 1; lower-is-better flipped) and its range is printed under its
    name; with one model the radius is the percent value / 100 (100 − value for lower-is-better scores). Gaps are
    dimensions a model lacks."""
    dims = _fractions(board, scores)
    if len(dims) < 3:
        return f"radar chart skipped: it needs at least 3 fraction scores with values, found {len(dims)}"
    angles = np.linspace(0, 2 * np.pi, len(dims), endpoint=False)
    fig = Figure(figsize=(7, 7))
    ax = fig.add_subplot(projection="polar")
    ticks = []
    for s in dims:
        col = board[s.column].astype(float)
        lo, hi = col.min(), col.max()
        flipped = "" if s.higher_is_better else " (100 − value)"
        ticks.append(f"{s.column}\n{lo:.1f}–{hi:.1f}" if len(board) > 1 else s.column + flipped)
    for _, row in board.iterrows():
        radii = []
        for s in dims:
            col = board[s.column].astype(float)
            v, lo, hi = float(row[s.column]) if pd.notna(row[s.column]) else np.nan, col.min(), col.max()
            if np.isnan(v):
                r = np.nan  # a gap, never a radius that reads as a value
            elif len(board) == 1:  # outward is better on every axis: a lower-is-better score counts as 100 - value
                r = (v if s.higher_is_better else 100.0 - v) / 100.0
            elif hi == lo:
                r = 1.0
            else:
                r = (v - lo) / (hi - lo) if s.higher_is_better else (hi - v) / (hi - lo)
                r = RADAR_FLOOR + (1 - RADAR_FLOOR) * r
            radii.append(r)
        closed = np.append(radii, radii[0])
        ax.plot(np.append(angles, angles[0]), closed, marker="o", label=str(row["model"]))
        ax.fill(np.append(angles, angles[0]), np.nan_to_num(closed), alpha=0.08)
    ax.set_xticks(angles)
    ax.set_xticklabels(ticks, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_yticklabels([])
    ax.set_title("Dimensions per model" + (" (each axis min-max normalised across models)" if len(board) > 1 else ""),
                 fontsize=10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    return fig


def category_figure(by_category: pd.DataFrame, scores: Sequence[Score]) -> Figure | str:
    """One panel per fraction score: bars per category, one bar per model."""
    dims = _fractions(by_category, scores)[:MAX_CATEGORY_PANELS]
    if not dims or by_category.empty:
        return "per-category bars skipped: no fraction score has a value"
    categories = sorted(by_category["category"].astype(str).unique())
    models = list(dict.fromkeys(by_category["model"].astype(str)))
    ncols = min(3, len(dims))
    nrows = int(np.ceil(len(dims) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    x = np.arange(len(categories))
    width = 0.8 / max(1, len(models))
    for ax, s in zip(axes, dims):
        for j, model in enumerate(models):
            sub = by_category[by_category["model"].astype(str) == model].set_index("category")[s.column]
            heights = [float(sub.get(c, np.nan)) for c in categories]
            ax.bar(x + (j - (len(models) - 1) / 2) * width, heights, width, label=model)  # NaN: no bar, not 0
        ax.set_title(f"{s.column} {'↑' if s.higher_is_better else '↓'} (%)", fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(categories, rotation=30, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(dims):]:
        ax.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(models)), fontsize=8)
    return fig


def tradeoff_figure(board: pd.DataFrame, published: bool = False) -> Figure | str:
    """Dynamic degree (x) against subject consistency (y), one point per model: the motion/consistency trade-off
    ConsistI2V's paper discusses. Published VBench-I2V rows, when asked for, are hollow and labelled so."""
    cols = ("dynamic_degree", "subject_consistency")
    have = board.dropna(subset=[c for c in cols if c in board]) if all(c in board for c in cols) else board.iloc[:0]
    if have.empty:
        return "dynamic degree vs subject consistency skipped: no run has both dynamic_degree and subject_consistency"
    fig = Figure(figsize=(6.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    for _, row in have.iterrows():
        ax.scatter(row[cols[0]], row[cols[1]], s=50, zorder=3)
        ax.annotate(str(row["model"]), (row[cols[0]], row[cols[1]]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if published:
        table = published_vbench_i2v()
        for r in table.rows:
            ax.scatter(r.values[cols[0]], r.values[cols[1]], s=50, facecolors="none", edgecolors="gray", zorder=2)
            ax.annotate(f"{r.model} (published, {table.benchmark})", (r.values[cols[0]], r.values[cols[1]]),
                        textcoords="offset points", xytext=(5, -9), fontsize=7, color="gray")
    ax.set_xlabel("dynamic_degree (%) → more motion")
    ax.set_ylabel("subject_consistency (%) → more consistent")
    ax.set_title("Motion / consistency trade-off", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def write_plots(board: pd.DataFrame, by_category: pd.DataFrame, scores: Sequence[Score], out_dir: str | Path,
                published: bool = False) -> PlotSet:
    """Write every plot that can be drawn as ``<out_dir>/<name>.png`` and ``.svg``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PlotSet()
    figures = (("radar", "Dimensions per model", radar_figure(board, scores)),
               ("categories", "Scores per category", category_figure(by_category, scores)),
               ("motion_consistency", "Dynamic degree vs subject consistency", tradeoff_figure(board, published)))
    for name, title, fig in figures:
        if isinstance(fig, str):
            result.notes.append(fig)
            continue
        png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
        fig.savefig(png, dpi=120, bbox_inches="tight")
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None})
        result.plots.append(Plot(name, title, png, svg))
    return result
