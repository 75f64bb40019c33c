"""``i2vbench status``: how far a run got, read from its store alone."""

from __future__ import annotations

import re

from helpers import make_suite

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
    assert lines[1] == "videos: 5 cases in the suite: 2 made, 1 failed, 2 not made yet"
    assert lines[2].startswith("  failed case1: ") and "cannot be decoded" in lines[2]
    assert re.search(r"\n  subject_consistency +skipped: ", out) and "i2vbench weights fetch dino_vitb16" in out
    assert re.search(r"\n  temporal_flickering +2 of 2 videos scored in fp32\n", out)

    assert cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering", "--recompute")[0] == 1  # case2
    out = cli("status", run)[1]
    assert re.search(r"\n  temporal_flickering +1 of 2 videos scored in fp32, 1 error\(s\)\n", out)
    assert "    temporal_flickering error on case2: " in out


def test_status_of_a_folder_that_is_no_run(cli, tmp_path):
    code, _, err = cli("status", tmp_path)
    assert code == 2 and "is not a run folder" in err
