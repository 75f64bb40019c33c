"""Reports from run stores with known scores: leaderboard CSVs, VBench-I2V aggregates, bootstrap intervals and
paired tests, comparison tables (Markdown, LaTeX, CSV) and plots."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from i2vbench.report.aggregate import load_run, vbench_i2v_scores, vbench_normalised
from i2vbench.report.leaderboard import leaderboard_tables, write_leaderboard
from i2vbench.report.plots import write_plots
from i2vbench.report.published import published_vbench_i2v
from i2vbench.report.stats import bootstrap_ci, paired_bootstrap
from i2vbench.report.tables import CSV_COLUMNS, compare_runs, to_csv, to_latex, to_markdown
from i2vbench.store import RunStore
from i2vbench.video import Video, read_video

METRICS = {  # metric -> (group, specs)
    "temporal_flickering": ("visual_quality", [{"name": "temporal_flickering"}]),
    "subject_consistency": ("visual_quality", [{"name": "subject_consistency", "frame_weighted": True}]),
    "aesthetic_quality": ("visual_quality", [{"name": "aesthetic_quality"}]),
    "frame0_fidelity": ("first_frame", [{"name": "frame0_ssim"}, {"name": "frame0_psnr", "unit": "dB"}]),
    "frame0_lpips": ("first_frame", [{"name": "frame0_lpips", "higher_is_better": False}]),
    "dynamic_degree": ("motion", [{"name": "dynamic_degree"}, {"name": "dynamic_magnitude", "unit": "px"}]),
}
SCORE_METRIC = {spec["name"]: m for m, (_, specs) in METRICS.items() for spec in specs}


def build_run(path: Path, model: str, cases: dict[str, dict], skipped: tuple[str, ...] = (),
              failed: dict[str, str] | None = None, suite: str = "known") -> Path:
    """A run folder whose store holds exactly ``cases``: {case_id: {"category", score: value or [frame values]}}."""
    with RunStore(path) as store:
        store.init_run({"generation": {"model": model, "settings": {"num_frames": 4}, "suite": suite, "seed": 0}},
                       fingerprint=model)
        for metric, (group, specs) in METRICS.items():
            status = "skipped" if metric in skipped else "ran"
            store.set_metric_status(metric, group, status, specs, reason="no weights" if status == "skipped" else None)
        for cid, values in cases.items():
            store.record_video(cid, values["category"], f"prompt of {cid}", 0, f"videos/{cid}.mp4", "0" * 64, 8, 4, 8, 8)
            by_metric: dict[str, tuple[dict, dict]] = {}
            for score, v in values.items():
                if score == "category" or SCORE_METRIC[score] in skipped:
                    continue
                plain, frames = by_metric.setdefault(SCORE_METRIC[score], ({}, {}))
                if isinstance(v, list):
                    plain[score], frames[score] = float(np.mean(v)), v
                else:
                    plain[score] = v
            for metric, (plain, frames) in by_metric.items():
                store.record_scores(metric, cid, plain, frames)
        for cid, error in (failed or {}).items():
            store.record_failure(cid, "x", f"prompt of {cid}", 0, error)
    return path


KNOWN = {
    "a": {"category": "x", "temporal_flickering": 0.9, "subject_consistency": [0.9, 0.8], "frame0_ssim": 0.7,
          "frame0_psnr": 30.0, "frame0_lpips": 0.2, "dynamic_degree": 1.0, "dynamic_magnitude": 4.0},
    "b": {"category": "y", "temporal_flickering": 0.8, "subject_consistency": [1.0, 1.0, 0.7, 0.9],
          "frame0_ssim": 0.5, "frame0_psnr": 20.0, "frame0_lpips": 0.4, "dynamic_degree": 0.0, "dynamic_magnitude": 1.0},
}


@pytest.fixture
def known_run(tmp_path: Path) -> Path:
    run = build_run(tmp_path / "known", "known-model", KNOWN, skipped=("aesthetic_quality",), failed={"c": "OOM"})
    with RunStore(run) as store:
        store.record_video("d", "y", "prompt of d", 0, "videos/d.mp4", "0" * 64, 8, 4, 8, 8)
        store.record_metric_error("temporal_flickering", "d", "cannot be decoded")
    return run


def test_leaderboard_csv_has_counts_percent_scores_and_empty_skipped_metrics(known_run, tmp_path):
    out, _ = write_leaderboard([known_run], tmp_path / "board" / "lb.csv")
    row = pd.read_csv(out).iloc[0]
    assert (row["run"], row["model"], row["suite"]) == ("known", "known-model", "known")
    assert row["settings"] == '{"num_frames":4}'
    assert (row["cases"], row["videos"], row["failed"], row["scored"], row["score_errors"]) == (4, 3, 1, 2, 1)
    assert pd.isna(row["not_made"])  # this store does not say which cases were asked for
    assert row["skipped_metrics"] == "aesthetic_quality"
    assert row["temporal_flickering"] == pytest.approx(85.0)
    assert row["subject_consistency"] == pytest.approx(88.33)  # frame-weighted: 5.3 / 6, not (0.85 + 0.9) / 2
    assert row["frame0_psnr_db"] == pytest.approx(25.0)        # physical units stay as they are
    assert row["dynamic_magnitude_px"] == pytest.approx(2.5)
    assert pd.isna(row["aesthetic_quality"])                   # skipped: empty, never 0
    assert row["group_visual_quality"] == pytest.approx((85.0 + 88.3333) / 2, abs=0.01)
    # first_frame: ssim 60 and lpips (lower is better) counted as 100 - 30; dB never enters a group
    assert row["group_first_frame"] == pytest.approx((60.0 + 70.0) / 2)
    assert row["group_motion"] == pytest.approx(50.0)
    assert pd.isna(row["group_text_alignment"])
    assert pd.isna(row["vbench_total"]) and "imaging_quality" in row["vbench_missing"]

    by_cat = pd.read_csv(tmp_path / "board" / "lb_by_category.csv").set_index("category")
    assert list(by_cat.index) == ["x", "y"]
    assert by_cat.loc["x", "temporal_flickering"] == pytest.approx(90.0)
    assert by_cat.loc["y", "subject_consistency"] == pytest.approx(90.0)
    assert by_cat.loc["x", "failed"] == 1 and by_cat.loc["x", "videos"] == 1
    assert by_cat.loc["y", "score_errors"] == 1 and by_cat.loc["y", "scored"] == 1
    assert by_cat["aesthetic_quality"].isna().all()


def test_group_score_is_empty_for_a_run_missing_a_member_that_another_run_has(tmp_path):
    with_aes = {cid: {**v, "aesthetic_quality": 0.5} for cid, v in KNOWN.items()}
    runs = [load_run(build_run(tmp_path / "a", "has", with_aes)),
            load_run(build_run(tmp_path / "b", "lacks", KNOWN, skipped=("aesthetic_quality",)))]
    board = leaderboard_tables(runs)[0].set_index("model")
    assert board.loc["has", "group_visual_quality"] == pytest.approx((85.0 + 88.3333 + 50.0) / 3, abs=0.01)
    assert pd.isna(board.loc["lacks", "group_visual_quality"])
    assert board.loc["lacks", "group_motion"] == pytest.approx(50.0)


def test_vbench_normalisation_and_aggregates_match_hand_computed_numbers():
    assert vbench_normalised("motion_smoothness", 97.38) == pytest.approx((0.9738 - 0.706) / (0.9975 - 0.706) * 100)
    assert vbench_normalised("subject_consistency", 14.62) == pytest.approx(0.0)
    assert vbench_normalised("background_consistency", 100.0) == pytest.approx(100.0)
    values = {"subject_consistency": 100.0, "background_consistency": 26.15, "motion_smoothness": 99.75,
              "dynamic_degree": 40.0, "aesthetic_quality": 60.0, "imaging_quality": 50.0,
              "camera_motion": 50.0, "i2v_subject": 100.0, "i2v_background": 26.15}
    out = vbench_i2v_scores(values)
    # Quality: (100 + 0 + 100 + 0.5 * 40 + 60 + 50) / 5.5; I2V: (0.1 * 50 + 100 + 0) / 2.1; Total: their mean
    assert out["vbench_quality"] == pytest.approx(60.0)
    assert out["vbench_i2v"] == pytest.approx(50.0)
    assert out["vbench_total"] == pytest.approx(55.0)
    assert out["vbench_missing"] == ""
    partial = vbench_i2v_scores({**values, "camera_motion": None})
    assert partial["vbench_quality"] == pytest.approx(60.0)
    assert partial["vbench_i2v"] is None and partial["vbench_total"] is None
    assert partial["vbench_missing"] == "camera_motion"


def test_published_rows_are_the_spec_numbers_with_their_source():
    table = published_vbench_i2v()
    rows = {r.model: r for r in table.rows}
    assert list(rows) == ["ConsistI2V", "SEINE-512x320", "I2VGen-XL", "Animate-Anything", "DynamiCrafter-1024"]
    assert rows["ConsistI2V"].values["subject_consistency"] == 95.27
    assert rows["DynamiCrafter-1024"].values["dynamic_degree"] == 47.40
    assert "VBench" in table.source and "different suite" in table.suite_note
    agg = rows["ConsistI2V"].with_aggregates()
    quality = ((95.27 - 14.62) / 85.38 * 100 + (98.28 - 26.15) / 73.85 * 100 + (97.38 - 70.6) / 29.15 * 100
               + 0.5 * 18.62 + 59.00 + 66.92) / 5.5
    assert agg["vbench_quality"] == pytest.approx(quality)


def test_bootstrap_interval_covers_the_mean_and_is_reproducible():
    x = np.random.default_rng(1).normal(0.7, 0.05, 500)
    ci = bootstrap_ci(x, seed=0)
    assert ci.low < 0.7 < ci.high and ci.low < ci.value < ci.high
    assert 0.006 < ci.high - ci.low < 0.012          # about 2 * 1.96 * 0.05 / sqrt(500)
    assert bootstrap_ci(x, seed=0) == ci
    assert bootstrap_ci([], seed=0) is None


def test_frame_weighted_bootstrap_resamples_cases_with_their_frames():
    num, w = np.array([9.0, 0.1]), np.array([10.0, 1.0])   # case 1: 10 frames of 0.9; case 2: 1 frame of 0.1
    ci = bootstrap_ci(num, w, seed=0)
    assert ci.value == pytest.approx(9.1 / 11)
    assert ci.low == pytest.approx(0.1) and ci.high == pytest.approx(0.9)  # resamples of both-same cases


def test_paired_bootstrap_finds_a_true_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    base = rng.uniform(0.5, 0.9, 200)
    ones = np.ones(200)
    better = base + 0.02 + rng.normal(0, 0.01, 200)
    found = paired_bootstrap(better, ones, base, ones, seed=0)
    assert found.significant and found.p_value < 0.01 and found.low > 0
    assert found.diff == pytest.approx(0.02, abs=0.005)
    jitter = rng.normal(0, 0.03, 100)
    same = base + np.concatenate([jitter, -jitter])          # differences average exactly 0
    null = paired_bootstrap(same, ones, base, ones, seed=0)
    assert not null.significant and null.p_value > 0.5 and null.low < 0 < null.high
    assert paired_bootstrap(base, ones, base, ones, seed=0).p_value == 1.0


def _two_runs(tmp_path: Path) -> list:
    rng = np.random.default_rng(3)
    ids = [f"c{i:02d}" for i in range(40)]
    base = {cid: {"category": "xy"[i % 2], "temporal_flickering": float(rng.uniform(0.6, 0.8)),
                  "subject_consistency": [float(v) for v in rng.uniform(0.8, 0.9, 3)],
                  "frame0_ssim": 0.6, "frame0_psnr": 20.0, "frame0_lpips": 0.3, "dynamic_degree": float(i % 3 == 0),
                  "dynamic_magnitude": 2.0} for i, cid in enumerate(ids)}
    better = {cid: {**v, "temporal_flickering": v["temporal_flickering"] + 0.1, "frame0_lpips": 0.2}
              for cid, v in base.items()}
    return [load_run(build_run(tmp_path / "base", "base_model", base)),
            load_run(build_run(tmp_path / "better", "better|model & co", better))]


def test_markdown_table_has_bold_best_daggers_ci_and_a_separate_published_block(tmp_path):
    runs = _two_runs(tmp_path)
    table = compare_runs(runs, baseline=0, published=True, resamples=1000)
    md = to_markdown(table)
    lines = [line for line in md.splitlines() if line.startswith("|")]
    widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
    assert len(widths) == 1                                  # every row has the header's number of cells
    header = re.split(r"(?<!\\)\|", lines[0])
    cells = {r.split("|")[1].strip(): [c.strip() for c in re.split(r"(?<!\\)\|", r)] for r in lines[2:]}
    better = next(v for k, v in cells.items() if k.startswith("better"))
    base = cells["base\\_model (baseline)"]
    tf = next(i for i, h in enumerate(header) if "temporal\\_flickering" in h)
    lp = next(i for i, h in enumerate(header) if "frame0\\_lpips ↓" in h)
    assert better[tf].startswith("**") and better[tf].endswith(" †+10.00") and "[" in better[tf]
    assert not base[tf].startswith("**") and "†" not in base[tf]
    assert better[lp].startswith("**20.00**") and better[lp].endswith("†-10.00")   # lower is better: the minimum is bold
    ssim = next(i for i, h in enumerate(header) if "frame0\\_ssim" in h)
    assert "†" not in better[ssim]                                            # identical scores: no difference
    published_at = next(i for i, line in enumerate(lines) if "published" in line)
    assert published_at > max(i for i, line in enumerate(lines) if line.startswith("| better") or line.startswith("| base"))
    assert "| ConsistI2V |" in md and "**" not in "".join(lines[published_at:])
    assert "different suite" in md and "paired bootstrap" in md


def test_latex_table_rows_have_the_right_number_of_columns(tmp_path):
    tex = to_latex(compare_runs(_two_runs(tmp_path), baseline=0, published=True, resamples=1000))
    spec = re.search(r"\\begin\{tabular\}\{([^}]*)\}", tex).group(1).split()
    body = tex.split(r"\toprule")[1].split(r"\bottomrule")[0]
    rows = [r.strip() for r in body.split(r"\\") if r.strip() and r.strip() != r"\midrule"]
    rows = [r.replace(r"\midrule", "").strip() for r in rows]
    for row in rows:
        if row.startswith(r"\multicolumn"):
            assert row.startswith(rf"\multicolumn{{{len(spec)}}}")
        else:
            assert len(re.findall(r"(?<!\\)&", row)) == len(spec) - 1, row
    assert r"better\textbar{}model \& co" in tex and r"$^\dagger$" in tex and r"\textbf{" in tex
    assert tex.count(r"\begin{tabular}") == 1 and tex.strip().endswith(r"\end{tabular}")


def test_csv_comparison_is_long_format_with_tests_and_blocks(tmp_path):
    table = compare_runs(_two_runs(tmp_path), baseline=0, published=True, resamples=1000)
    df = pd.read_csv(io.StringIO(to_csv(table)))
    assert set(df["block"]) == {"measured", "published"}
    row = df[(df["block"] == "measured") & (df["run"] == "better") & (df["score"] == "temporal_flickering")].iloc[0]
    assert row["significant"] and row["p_value"] < 0.05 and row["shared_cases"] == 40
    assert row["diff_vs_baseline"] == pytest.approx(10.0)
    assert row["ci_low"] < row["value"] < row["ci_high"] and row["unit"] == "percent"
    assert df[df["block"] == "published"]["ci_low"].isna().all()


def test_plots_are_written_as_png_and_svg(tmp_path):
    runs = _two_runs(tmp_path)
    board, by_category = leaderboard_tables(runs)
    from i2vbench.report.aggregate import ordered_scores
    plots = write_plots(board, by_category, ordered_scores(runs), tmp_path / "plots", published=True)
    assert [p.name for p in plots.plots] == ["radar", "categories", "motion_consistency"] and not plots.notes
    for p in plots.plots:
        assert p.png.stat().st_size > 5000 and p.svg.read_text().lstrip().startswith("<?xml")
        with Image.open(p.png) as img:
            assert img.size[0] > 300


def test_plots_missing_scores_are_skipped_with_a_note(known_run, tmp_path):
    run = load_run(build_run(tmp_path / "few", "few", {"a": {"category": "x", "temporal_flickering": 0.9}},
                             skipped=("subject_consistency", "aesthetic_quality", "frame0_fidelity", "frame0_lpips",
                                      "dynamic_degree")))
    board, by_category = leaderboard_tables([run])
    plots = write_plots(board, by_category, list(run.scores.values()), tmp_path / "plots")
    assert [p.name for p in plots.plots] == ["categories"]
    assert any("radar" in n for n in plots.notes) and any("dynamic_degree" in n for n in plots.notes)


def test_compare_and_leaderboard_commands(cli, tmp_path):
    runs = _two_runs(tmp_path)
    code, out, err = cli("compare", runs[1].run_dir, "--baseline", runs[0].run_dir, "--format", "latex",
                         "--resamples", "1000", "-o", tmp_path / "t.tex")
    assert code == 0, err
    tex = (tmp_path / "t.tex").read_text()
    assert "base\\_model (baseline)" in tex and tex.index("base\\_model") < tex.index("better\\textbar{}model")
    code, out, _ = cli("compare", runs[0].run_dir, runs[1].run_dir, "--format", "csv")
    assert code == 0 and out.startswith("block,model,run,score")
    code, out, _ = cli("leaderboard", runs[0].run_dir, runs[1].run_dir, "-o", tmp_path / "lb.csv")
    assert code == 0 and "lb_by_category.csv" in out
    assert len(pd.read_csv(tmp_path / "lb_by_category.csv")) == 4
    code, _, err = cli("compare", tmp_path / "nope")
    assert code == 2 and "not a run folder" in err


def test_a_stand_in_score_is_not_counted_beside_the_score_it_stands_in_for():
    from i2vbench.report.aggregate import Score, group_members

    scores = [Score(name, name, "first_frame") for name in ("i2v_background", "i2v_background_clip", "i2v_subject")]
    both = group_members(scores, {"i2v_background": True, "i2v_background_clip": True, "i2v_subject": True})
    assert [s.name for s in both["first_frame"]] == ["i2v_background", "i2v_subject"]
    alone = group_members(scores, {"i2v_background_clip": True, "i2v_subject": True})
    assert [s.name for s in alone["first_frame"]] == ["i2v_background_clip", "i2v_subject"]


def test_comparing_runs_scored_in_different_precisions_says_so(tmp_path):
    base, better = _two_runs(tmp_path)
    for path, precision in ((tmp_path / "base", "bf16"), (tmp_path / "better", "fp32")):
        with RunStore(path) as store:
            store.set_metric_status("subject_consistency", "visual_quality", "ran",
                                    METRICS["subject_consistency"][1], precision=precision)
            store.set_metric_status("temporal_flickering", "visual_quality", "ran",
                                    METRICS["temporal_flickering"][1], precision="fp32")
    notes = compare_runs([load_run(tmp_path / "base"), load_run(tmp_path / "better")], resamples=100).notes
    assert notes[1:] == ["subject_consistency was scored in different precisions (bf16: base_model; fp32: better|model & co); "
                     "bf16 and fp32 scores may differ in the third or fourth decimal."]


def test_comparing_runs_over_other_suites_or_cases_says_so(tmp_path):
    base, better = _two_runs(tmp_path)
    assert not any("different" in n and "suite" in n for n in compare_runs([base, better], resamples=100).notes)
    other = load_run(build_run(tmp_path / "other", "other_model", {f"z{cid}": v for cid, v in KNOWN.items()}))
    notes = compare_runs([base, other], baseline=0, resamples=100).notes
    assert any("hold different cases of the suite (videos made: base_model: 40; other_model: 2)" in n for n in notes)
    assert ("other_model shares fewer than 10 scored cases with the baseline (or is on another suite): not tested "
            "against it.") in notes
    build_run(tmp_path / "elsewhere", "other_model", KNOWN, suite="elsewhere")  # the same cases, another suite
    table = compare_runs([base, load_run(tmp_path / "elsewhere")], resamples=100)
    assert any("different suites" in n and "base_model: known; other_model: elsewhere" in n for n in table.notes)
    assert not any(c.best for row in table.measured for c in row.cells.values())
    tested = compare_runs([base, load_run(tmp_path / "elsewhere")], baseline=0, resamples=100)
    assert not any(c.test for row in tested.measured for c in row.cells.values())  # no test across suites


def test_no_test_on_fewer_than_ten_shared_cases(tmp_path):
    rng = np.random.default_rng(5)
    values = {f"c{i}": {"category": "x", "temporal_flickering": float(rng.uniform(0.6, 0.8))} for i in range(9)}
    base = load_run(build_run(tmp_path / "base", "base_model", values))
    shifted = {cid: {**v, "temporal_flickering": v["temporal_flickering"] + 0.001} for cid, v in values.items()}
    nine = load_run(build_run(tmp_path / "nine", "shifted", shifted))
    cell = compare_runs([base, nine], baseline=0, resamples=200).measured[1].cells["temporal_flickering"]
    assert cell.test is None  # every resample of a constant shift has its sign: a test would call it certain
    ten = {**shifted, "c9": {"category": "x", "temporal_flickering": 0.7}}
    values["c9"] = {"category": "x", "temporal_flickering": 0.7}
    base, more = (load_run(build_run(tmp_path / n, m, v)) for n, m, v in [("b10", "base_model", values), ("s10", "shifted", ten)])
    assert compare_runs([base, more], baseline=0, resamples=200).measured[1].cells["temporal_flickering"].test is not None


def test_no_best_where_the_runs_scored_different_cases(tmp_path):
    hard = {f"c{i:02d}": {"category": "x", "temporal_flickering": 0.6 if i < 5 else 0.9} for i in range(10)}
    b = load_run(build_run(tmp_path / "b", "model_b", hard))
    # model_a is worse on every case, but its hard cases went unscored: its value covers the easy ones only
    easy_only = {cid: ({"category": "x", "temporal_flickering": v["temporal_flickering"] - 0.02} if v["temporal_flickering"] > 0.8
                       else {"category": "x"}) for cid, v in hard.items()}
    a = load_run(build_run(tmp_path / "a", "model_a", easy_only))
    table = compare_runs([b, a], baseline=0, resamples=200)
    assert a.dataset_score("temporal_flickering") > b.dataset_score("temporal_flickering")
    assert not any(c.best for row in table.measured for c in row.cells.values())
    assert any(n.startswith("No best is marked for temporal_flickering") for n in table.notes)


def test_compare_csv_has_its_header_and_whole_counts(tmp_path):
    assert to_csv(compare_runs([], resamples=100)).splitlines() == [",".join(CSV_COLUMNS)]
    text = to_csv(compare_runs(_two_runs(tmp_path), baseline=0, resamples=200))
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame.columns) == CSV_COLUMNS
    assert frame["n_cases"].dtype.kind == "i" and frame["shared_cases"].dropna().eq(40).all()
    assert ",40.0," not in text


def test_runs_of_one_model_in_folders_of_one_name_get_labels_that_tell_them_apart(tmp_path):
    from i2vbench.report.aggregate import labels, load_runs, ordered_scores
    from i2vbench.report.plots import radar_figure

    values = {f"c{i}": {"category": "xy"[i % 2], "temporal_flickering": 0.7 + i / 100, "frame0_ssim": 0.6,
                        "subject_consistency": [0.9, 0.8], "frame0_lpips": 0.2} for i in range(4)}
    first = build_run(tmp_path / "seed0" / "static-mini", "static", values)
    second = build_run(tmp_path / "seed1" / "static-mini", "static", values, skipped=("frame0_fidelity",))
    runs = load_runs([first, second, tmp_path / "seed0" / ".." / "seed0" / "static-mini"])  # the first twice
    assert labels(runs) == ["static (seed0/static-mini)", "static (seed1/static-mini)"]
    board, by_category = leaderboard_tables(runs)
    plots = write_plots(board, by_category, ordered_scores(runs), tmp_path / "plots")  # used to crash
    assert {p.name for p in plots.plots} >= {"radar", "categories"}
    radar = radar_figure(board, ordered_scores(runs))
    ssim_axis = [s.column for s in ordered_scores(runs) if s.column in board and board[s.column].notna().any()
                 and s.is_fraction].index("frame0_ssim")
    second_line = radar.axes[0].lines[1].get_ydata()
    assert np.isnan(second_line[ssim_axis]) and not np.isnan(radar.axes[0].lines[0].get_ydata()[ssim_axis])  # a gap where the run has no value, not the best radius


def test_a_run_stopped_part_way_is_told_apart_from_a_finished_one(tmp_path, cli):
    run = build_run(tmp_path / "stopped", "stopped_model", KNOWN)
    with RunStore(run) as store:
        store.request([*KNOWN, "e", "f"])  # asked for four cases, stopped after two
    data = load_run(run)
    assert data.unmade == ["e", "f"]
    board = leaderboard_tables([data])[0]
    assert board.loc[0, "not_made"] == 2
    note = ("stopped_model: 2 of the 4 cases its run was asked for are not made yet (it stopped part-way), and its "
            "values are over the cases made so far.")
    assert any(n.startswith(note) for n in compare_runs([data], resamples=100).notes)
    code, _, err = cli("leaderboard", run, "-o", tmp_path / "lb.csv")
    assert code == 0 and f"note: {note}" in err


def test_a_report_keeps_the_cases_of_other_suites_apart_and_says_the_runs_differ(tmp_path):
    from i2vbench.report.html import build_report

    build_run(tmp_path / "a", "model_a", KNOWN)
    build_run(tmp_path / "b", "model_b", KNOWN, suite="elsewhere")  # the same case ids stand for other cases
    with RunStore(tmp_path / "b") as store:
        store.conn.execute("UPDATE cases SET prompt = 'another prompt' WHERE case_id = 'a'")
    page = build_report([tmp_path / "a", tmp_path / "b"], tmp_path / "r.html")[0].read_text()
    assert page.count('data-case="a"') == 2
    assert "<h3>a (known)" in page and "<h3>a (elsewhere)" in page and "another prompt" in page
    assert re.search(r'class="note warn">The runs were made on different suites', page)


def test_report_video_links_climb_from_the_folder_as_given_not_its_symlink_target(tmp_path):
    from i2vbench.report.html import build_report

    run = build_run(tmp_path / "runs" / "a", "model_a", {"a": KNOWN["a"]})
    (run / "videos").mkdir()
    (run / "videos" / "a.mp4").write_bytes(b"not decoded by the report")
    (tmp_path / "elsewhere" / "www").mkdir(parents=True)
    (tmp_path / "site").symlink_to(tmp_path / "elsewhere" / "www")
    page = build_report([run], tmp_path / "site" / "r.html")[0].read_text()
    assert 'src="../runs/a/videos/a.mp4"' in page  # from <tmp>/site/, as the browser sees it


def test_tables_written_beside_the_runs_are_skipped_by_the_next_glob(tmp_path, cli):
    run = build_run(tmp_path / "runs" / "a", "model_a", KNOWN)
    assert cli("leaderboard", run, "-o", tmp_path / "runs" / "lb.csv")[0] == 0
    code, out, err = cli("leaderboard", *sorted((tmp_path / "runs").iterdir()), "-o", tmp_path / "runs" / "lb.csv")
    assert code == 0 and "skipping" in err and "lb.csv: not a run folder" in err
    code, _, err = cli("leaderboard", tmp_path / "runs" / "lb.csv", "-o", tmp_path / "x.csv")
    assert code == 2 and "no run folders among" in err
    code, _, err = cli("leaderboard", run, tmp_path / "runs" / "nope", "-o", tmp_path / "x.csv")
    assert code == 2 and "not a run folder" in err  # a folder that is not a run is still an error


def test_names_are_escaped_for_markdown_and_latex():
    from i2vbench.report.tables import _md_escape, latex_escape

    name = "m_1 | <b> $x$ `c`"
    assert _md_escape(name) == r"m\_1 \| &lt;b> \$x\$ \`c\`"
    assert latex_escape(name) == r"m\_1 \textbar{} \textless{}b\textgreater{} \$x\$ `c`"


def test_a_single_run_radar_puts_better_outward_on_lower_is_better_axes(known_run):
    from i2vbench.report.aggregate import ordered_scores
    from i2vbench.report.plots import radar_figure

    runs = [load_run(known_run)]
    board = leaderboard_tables(runs)[0]
    radar = radar_figure(board, ordered_scores(runs))
    labels = [t.get_text() for t in radar.axes[0].get_xticklabels()]
    lpips = labels.index("frame0_lpips (100 − value)")
    assert radar.axes[0].lines[0].get_ydata()[lpips] == pytest.approx((100 - board.loc[0, "frame0_lpips"]) / 100)


def test_seeds_stay_whole_numbers_beside_a_run_that_has_none(known_run, tmp_path):
    other = tmp_path / "no-seed"
    with RunStore(other) as store:  # videos made elsewhere: the run knows no seed
        store.init_run({"generation": {"model": "elsewhere", "suite": "known"}}, fingerprint="elsewhere")
    out, _ = write_leaderboard([known_run, other], tmp_path / "lb.csv")
    seeds = [line.split(",")[4] for line in out.read_text().splitlines()[1:]]
    assert seeds == ["0", ""]  # not "0.0"


def _encode(path: Path, codec: str, pix_fmt: str, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=pix_fmt)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_report_shows_gifs_as_images_and_says_or_fixes_what_a_browser_cannot_play(tmp_path):
    from i2vbench.report.html import build_report
    from i2vbench.video import browser_unplayable, write_video

    run = build_run(tmp_path / "runs" / "a", "model_a", {"a": KNOWN["a"], "b": KNOWN["b"]})
    videos = run / "videos"
    videos.mkdir()
    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 48, 3), dtype=np.uint8)
    _encode(videos / "a.gif", "gif", "rgb8", frames)
    _encode(videos / "b.avi", "mpeg4", "yuv420p", frames)  # plays in a desktop player, not in a web page
    write_video(Video(frames, 8.0), videos / "c.mp4")
    with RunStore(run) as store:
        for cid, name in (("a", "a.gif"), ("b", "b.avi"), ("c", "c.mp4")):
            store.record_video(cid, "x", f"prompt of {cid}", 0, f"videos/{name}", "0" * 64, 8, 4, 32, 48)
    assert browser_unplayable(videos / "b.avi") == "mpeg4, yuv420p in .avi"
    assert browser_unplayable(videos / "c.mp4") is None and browser_unplayable(videos / "a.gif") is None

    page = build_report([run], tmp_path / "linked.html")[0].read_text()
    assert '<img alt="video of a" src="runs/a/videos/a.gif">' in page
    assert '<video src="runs/a/videos/b.avi"' in page and "its format (mpeg4, yuv420p in .avi) may not play" in page
    assert '<video src="runs/a/videos/c.mp4"' in page and page.count("may not play") == 1

    page = build_report([run], tmp_path / "copied.html", copy_videos=True)[0].read_text()
    copies = tmp_path / "copied_files" / "videos" / "0-a"  # named by case id: two cases' files never meet
    assert '<video src="copied_files/videos/0-a/b.mp4"' in page and "shown as an H.264 copy" in page
    assert browser_unplayable(copies / "b.mp4") is None and read_video(copies / "b.mp4").num_frames == 4
    assert (copies / "a.gif").read_bytes() == (videos / "a.gif").read_bytes()  # playable ones copied as they are
    made = (copies / "b.mp4").stat().st_mtime_ns
    build_report([run], tmp_path / "copied.html", copy_videos=True)
    assert (copies / "b.mp4").stat().st_mtime_ns == made  # encoded once, not on every report
