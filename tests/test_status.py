"""``i2vbench status``: how far a run got, read from its store alone."""

from __future__ import annotations

import re
import sqlite3

import pandas as pd
import pytest
from helpers import make_suite, write_card

from i2vbench.store import RunStore

SMALL = ["--set", "num_frames=4", "--set", "height=32", "--set", "width=32"]


def test_status_counts_videos_and_each_metrics_progress(cli, tmp_path, weight_cache):
    manifest = make_suite(tmp_path / "s", n=5)
    (tmp_path / "s" / "reference_images" / "img1.png").write_bytes(b"corrupted")
    run = tmp_path / "r"
    base = ("--no-progress", "run", "--model", "static", "--suite", manifest, "--out", run, *SMALL)
    assert cli(*base, "--cases", "case0,case1,case2")[0] == 1  # every metric: those without weights are skipped
    (run / "videos" / "case2.mp4").write_bytes(b"truncated")  # a video the metric cannot decode

    code, out, err = cli("status", run)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"run {run}: static on tiny, seed 0, settings ")
    assert lines[1] == "videos: 3 cases asked for (of 5 in the suite): 2 made, 1 failed, 0 not made yet"
    assert lines[2].startswith("  failed case1: ") and "cannot be decoded" in lines[2]
    assert re.search(r"\n  subject_consistency +skipped: ", out) and "i2vbench weights fetch dino_vitb16" in out
    assert re.search(r"\n  temporal_flickering +2 of 2 videos scored in fp32\n", out)

    assert cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering", "--recompute")[0] == 1  # case2
    out = cli("status", run)[1]
    assert re.search(r"\n  temporal_flickering +1 of 2 videos scored in fp32, 1 error\(s\)\n", out)
    assert "    temporal_flickering error on case2: " in out


def test_status_of_a_run_stopped_before_scoring_says_how_to_finish_it(cli, tmp_path):
    manifest = make_suite(tmp_path / "s", n=3)
    run = tmp_path / "r"
    base = ("--no-progress", "generate", "--model", "static", "--suite", manifest, "--out", run, *SMALL)
    assert cli(*base)[0] == 0
    with RunStore(run) as store:  # as a run stopped after its first video leaves it
        store.conn.execute("DELETE FROM videos WHERE case_id != 'case0'")
        store.conn.execute("DELETE FROM cases WHERE case_id != 'case0'")
    out = cli("status", run)[1]
    assert "\nvideos: 3 cases asked for: 1 made, 0 failed, 2 not made yet\n" in out
    assert "the command that started this run, run again, makes the videos left" in out
    assert cli(*base)[0] == 0
    assert "metrics: none evaluated yet (i2vbench evaluate RUN)" in cli("status", run)[1]


def test_status_of_a_folder_that_is_no_run(cli, tmp_path):
    code, _, err = cli("status", tmp_path)
    assert code == 2 and "is not a run folder" in err


def test_the_model_time_of_each_video_is_recorded_and_reported(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SLOW_STATIC_SECONDS", "0.3")
    manifest = make_suite(tmp_path / "s", n=3)
    card = write_card(tmp_path / "slow.yaml", "plugins:SlowStatic")
    run = tmp_path / "r"
    code, _, err = cli("--no-progress", "generate", "--model", card, "--suite", manifest, "--out", run,
                       "--batch-size", "2", *SMALL)
    assert code == 0, err
    with sqlite3.connect(run / "run.sqlite") as conn:
        seconds = dict(conn.execute("SELECT case_id, gen_seconds FROM videos"))
    # a batch's time over its size: cases 0 and 1 shared a 0.3 s call, case 2 had one to itself
    assert 0.15 <= seconds["case0"] == seconds["case1"] < 0.15 + 0.5 and 0.3 <= seconds["case2"] < 0.3 + 0.5

    median = sorted(seconds.values())[1]
    out = cli("status", run)[1]
    assert f"model time: {median:.2f} s per video (median of 3; {sum(seconds.values()):.1f} s in all)" in out
    board = tmp_path / "lb.csv"
    assert cli("leaderboard", run, "-o", board)[0] == 0
    assert pd.read_csv(board)["seconds_per_video"].iloc[0] == pytest.approx(median, abs=0.005)


def test_videos_made_elsewhere_have_no_model_time(cli, tmp_path):
    manifest = make_suite(tmp_path / "s", n=2)
    made = tmp_path / "made"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", manifest, "--out", made, *SMALL)[0] == 0
    run = tmp_path / "elsewhere"
    code, _, err = cli("--no-progress", "evaluate", "--videos", made / "videos", "--suite", manifest, "--out", run,
                       "--metrics", "temporal_flickering")
    assert code == 0, err
    assert "model time" not in cli("status", run)[1]
    assert "model time: " in cli("status", made)[1]
    board = tmp_path / "lb.csv"
    assert cli("leaderboard", run, "-o", board)[0] == 0
    assert pd.isna(pd.read_csv(board)["seconds_per_video"].iloc[0])


def test_a_store_from_before_model_times_opens_and_records_them(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    with sqlite3.connect(run / "run.sqlite") as conn:
        conn.execute("CREATE TABLE videos (case_id TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, "
                     "fps REAL, num_frames INTEGER, height INTEGER, width INTEGER, created_at REAL NOT NULL)")
        conn.execute("INSERT INTO videos VALUES ('a', 'videos/a.mp4', 'ab', 8, 16, 32, 32, 0)")
    with RunStore(run) as store:
        store.record_video("b", "x", "p", 0, "videos/b.mp4", "cd", 8, 16, 32, 32, gen_seconds=1.5)
        times = store.table("videos").set_index("case_id")["gen_seconds"]
    assert times.isna()["a"] and times["b"] == 1.5


def test_status_of_a_subset_run_counts_the_cases_it_was_asked_for(cli, tmp_path):
    manifest = make_suite(tmp_path / "s", n=3)
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", manifest, "--out", run, *SMALL,
               "--cases", "case0")[0] == 0
    assert "\nvideos: 1 cases asked for (of 3 in the suite): 1 made, 0 failed, 0 not made yet\n" in cli("status", run)[1]


def test_status_reads_a_store_of_an_earlier_version_without_changing_it(cli, tmp_path):
    """An old store (no precision or gen_seconds columns, no requested table) is read as it is: status writes
    nothing, so it also works on read-only storage."""
    run = tmp_path / "old"
    run.mkdir()
    with sqlite3.connect(run / "run.sqlite") as conn:
        conn.executescript("""
            PRAGMA journal_mode=WAL;
            CREATE TABLE run (id INTEGER PRIMARY KEY, config TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at REAL);
            CREATE TABLE cases (case_id TEXT PRIMARY KEY, category TEXT, prompt TEXT, seed INTEGER, status TEXT,
                                error TEXT, updated_at REAL);
            CREATE TABLE videos (case_id TEXT PRIMARY KEY, path TEXT, sha256 TEXT, fps REAL, num_frames INTEGER,
                                 height INTEGER, width INTEGER, created_at REAL);
            CREATE TABLE metrics (metric TEXT PRIMARY KEY, metric_group TEXT, status TEXT, reason TEXT, specs TEXT,
                                  updated_at REAL);
            CREATE TABLE scores (case_id TEXT, metric TEXT, score TEXT, value REAL, PRIMARY KEY (case_id, score));
            CREATE TABLE frame_scores (case_id TEXT, score TEXT, frame INTEGER, value REAL,
                                       PRIMARY KEY (case_id, score, frame));
            CREATE TABLE metric_errors (case_id TEXT, metric TEXT, error TEXT, PRIMARY KEY (case_id, metric));
            INSERT INTO run VALUES (1, '{"generation": {"model": "static", "suite": "gone", "seed": 0}}', 'f', 0);
            INSERT INTO cases VALUES ('a', 'x', 'p', 0, 'done', NULL, 0);
            INSERT INTO videos VALUES ('a', 'videos/a.mp4', 'h', 8, 4, 8, 8, 0);
            INSERT INTO metrics VALUES ('temporal_flickering', 'visual_quality', 'ran', NULL,
                                        '[{"name": "temporal_flickering"}]', 0);
            INSERT INTO scores VALUES ('a', 'temporal_flickering', 'temporal_flickering', 0.9);
        """)
    conn.close()
    before = (run / "run.sqlite").read_bytes()
    code, out, err = cli("status", run)
    assert code == 0, err
    assert "\nvideos: 1 made, 0 failed\n" in out and re.search(r"temporal_flickering +1 of 1 videos scored\n", out)
    code, out, err = cli("leaderboard", run, "-o", tmp_path / "lb.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "lb.csv").loc[0, "temporal_flickering"] == pytest.approx(90.0)
    assert (run / "run.sqlite").read_bytes() == before
    assert {p.name for p in run.iterdir()} <= {"run.sqlite", "run.sqlite-wal", "run.sqlite-shm"}
    assert not (run / "run.sqlite-wal").exists() or (run / "run.sqlite-wal").stat().st_size == 0  # nothing logged


def test_a_run_that_asks_for_nothing_new_writes_nothing_to_record_it(tmp_path, monkeypatch):
    with RunStore(tmp_path / "r") as store:
        store.request(["a", "b"])
        monkeypatch.setattr(store, "_tx", lambda statements: pytest.fail("wrote to the store"))
        store.request(["b", "a"])  # a finished run started again, e.g. on storage it cannot write to
        assert store.requested() == ["a", "b"]
