"""End-to-end runs through the CLI: generation, evaluation, resume, failure isolation, bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plugins
import pytest
from helpers import REPO, make_suite, write_card

from i2vbench.store import RunStore

SMALL = ["--set", "num_frames=6", "--set", "height=64", "--set", "width=64"]


def rows(run: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run / "run.sqlite") as conn:
        return conn.execute(sql).fetchall()


def made_videos(cli, tmp_path: Path, suite: Path, model: str = "static") -> Path:
    """The videos folder of a fresh ``generate`` run of ``model``: files to score as if made elsewhere."""
    made = tmp_path / "made"
    assert cli("--no-progress", "generate", "--model", model, "--suite", suite, "--out", made, *SMALL)[0] == 0
    return made / "videos"


def test_static_run_on_the_mini_suite(cli, tmp_path):
    run = tmp_path / "static"
    code, out, err = cli("--no-progress", "run", "--model", "static", "--out", run, *SMALL)
    assert code == 0, err
    n_cases = len(rows(run, "SELECT * FROM cases"))
    assert n_cases >= 8
    assert rows(run, "SELECT COUNT(*) FROM cases WHERE status = 'done'")[0][0] == n_cases
    board = pd.read_csv(run / "leaderboard.csv")
    assert f"leaderboard: {run / 'leaderboard.csv'}" in out
    assert board.loc[0, "temporal_flickering"] > 99.9  # a still image does not flicker
    assert board.loc[0, "frame0_ssim"] > 95
    assert board.loc[0, "videos"] == n_cases and board.loc[0, "failed"] == 0
    videos = rows(run, "SELECT path, sha256, fps, num_frames, height, width FROM videos")
    assert all(fps == 8 and t == 6 and (h, w) == (64, 64) for _, _, fps, t, h, w in videos)
    config = json.loads(rows(run, "SELECT config FROM run")[0][0])
    assert config["generation"]["settings"]["num_frames"] == 6
    assert config["versions"]["torch"] and "git_revision" in config


def test_camera_moves_and_flickers_more_than_static(cli, tmp_path):
    results = {}
    for model, extra in (("static", []), ("camera", ["--set", "motion=zoom_in", "--set", "speed=0.5"])):
        run = tmp_path / model
        code, _, err = cli("--no-progress", "run", "--model", model, "--out", run, "--cases", "astronaut,coffee", *SMALL, *extra)
        assert code == 0, err
        results[model] = pd.read_csv(run / "leaderboard.csv").loc[0]
    assert results["camera"]["temporal_flickering"] < results["static"]["temporal_flickering"] - 1


def test_rerun_does_only_missing_work_and_force_redoes(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    args = ["--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL]
    assert cli(*args)[0] == 0
    first = rows(run, "SELECT case_id, sha256 FROM videos ORDER BY case_id")
    code, out, _ = cli(*args)
    assert code == 0 and "generate: 0 done, 3 already done" in out and "evaluate: 0 done, 3 already done" in out
    code, out, _ = cli(*args, "--force")
    assert code == 0 and "generate: 3 done" in out
    assert rows(run, "SELECT case_id, sha256 FROM videos ORDER BY case_id") == first


def test_seeds_reproduce_videos_regardless_of_batching(cli, tmp_path, tiny_suite):
    card = write_card(tmp_path / "noisy.yaml", "plugins:NoisyStatic")
    shas = []
    for name, batch in (("a", "1"), ("b", "3")):
        assert cli("--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", tmp_path / name,
                   "--batch-size", batch, *SMALL)[0] == 0
        shas.append(rows(tmp_path / name, "SELECT case_id, sha256 FROM videos ORDER BY case_id"))
    assert shas[0] == shas[1]
    assert len({sha for _, sha in shas[0]}) == 3
    assert cli("--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", tmp_path / "c",
               "--seed", "1", *SMALL)[0] == 0
    assert rows(tmp_path / "c", "SELECT case_id, sha256 FROM videos ORDER BY case_id") != shas[0]


def test_a_batch_that_runs_out_of_memory_is_retried_case_by_case_after_its_memory_is_released(cli, tmp_path, tiny_suite):
    card = write_card(tmp_path / "greedy.yaml", "plugins:GreedyStatic")
    run = tmp_path / "greedy"
    code, out, err = cli("--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", run, *SMALL)
    assert code == 0, err
    assert "generate: 3 done, 0 already done\n" in out and "  failed " not in out
    assert ("a batch of 3 failed (RuntimeError: out of memory for 3 cases) while each of its cases alone succeeded: "
            "later batches hold 1" in out)
    assert rows(run, "SELECT COUNT(*) FROM cases WHERE status = 'done'") == [(3,)]


def test_batches_shrink_after_one_that_only_fits_case_by_case(cli, tmp_path):
    plugins.BATCH_SIZES.clear()
    card = write_card(tmp_path / "greedy.yaml", "plugins:GreedyTimedStatic")
    code, out, err = cli("--no-progress", "generate", "--model", card, "--suite", make_suite(tmp_path / "s", n=7),
                         "--out", tmp_path / "r", *SMALL)
    assert code == 0 and "generate: 7 done" in out, out + err
    assert plugins.BATCH_SIZES == [4, 1, 1, 1, 1, 2, 1, 1, 1], plugins.BATCH_SIZES  # 4 fails, each alone works; then 2s, which fail too: 1s
    code, out, _ = cli("--no-progress", "generate", "--model", card, "--suite", make_suite(tmp_path / "s2", n=2),
                       "--out", tmp_path / "r2", "--batch-size", "2", *SMALL)
    assert code == 0 and "a --batch-size below 2 would spare these retries" in out


@pytest.mark.parametrize("mode, message", [
    ("short", "made a video of 5 frames of 64x64 (height x width) for case 'case0', but its settings ask for 6 "
              "frames of 64x64"),
    ("ndarray", "returned a ndarray for case 'case0'; generate returns an i2vbench.video.Video"),
    ("extra", "returned 3 outputs for 2 cases"),
])
def test_an_adapter_that_breaks_its_contract_stops_the_run_at_its_first_batch(cli, tmp_path, tiny_suite, monkeypatch,
                                                                              mode, message):
    monkeypatch.setenv("MISBEHAVE", mode)
    plugins.MisbehavingStatic.CALLS.clear()
    card = write_card(tmp_path / "bad.yaml", "plugins:MisbehavingStatic")
    code, _, err = cli("--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", tmp_path / "r", *SMALL)
    assert code == 2 and message in err, err
    assert plugins.MisbehavingStatic.CALLS == [2]  # not tried again case by case, nor for the next batch
    assert rows(tmp_path / "r", "SELECT COUNT(*) FROM cases") == [(0,)]


def test_videos_of_one_value_everywhere_are_pointed_out(cli, tmp_path, tiny_suite, monkeypatch):
    monkeypatch.setenv("MISBEHAVE", "black")
    card = write_card(tmp_path / "bad.yaml", "plugins:MisbehavingStatic")
    code, out, _ = cli("--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", tmp_path / "r", *SMALL)
    assert code == 0 and "3 video(s) hold a single value in every pixel of every frame (case0, case1, case2)" in out


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path, tiny_suite):
    manifest = make_suite(tmp_path / "s6", n=6)
    card = write_card(tmp_path / "slow.yaml", "plugins:SlowStatic")
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "i2vbench", "--no-progress", "run", "--model", str(card), "--suite", str(manifest),
           "--out", str(run), *SMALL]
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "SLOW_STATIC_SECONDS": "0.5"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if (run / "run.sqlite").exists() and rows(run, "SELECT COUNT(*) FROM cases")[0][0] >= 2:
                break
        except sqlite3.OperationalError:  # the file is there, its tables not yet
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = rows(run, "SELECT COUNT(*) FROM cases")[0][0]
    assert 2 <= done_before < 6, "the kill should land in the middle of generation"

    env["SLOW_STATIC_SECONDS"] = "0"
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"generate: {6 - done_before} done, {done_before} already done" in finished.stdout
    assert rows(run, "SELECT COUNT(*), COUNT(DISTINCT case_id) FROM cases") == [(6, 6)]
    assert rows(run, "SELECT COUNT(*) FROM scores WHERE score = 'temporal_flickering'") == [(6,)]
    assert sorted(p.name for p in (run / "videos").iterdir()) == [f"case{i}.mp4" for i in range(6)]  # no temp left

    clean = tmp_path / "clean"
    subprocess.run([*cmd[:-len(SMALL) - 2], "--out", str(clean), *SMALL], env=env, check=True, capture_output=True, timeout=300)
    assert rows(run, "SELECT case_id, sha256 FROM videos ORDER BY case_id") == rows(clean, "SELECT case_id, sha256 FROM videos ORDER BY case_id")


def test_bad_images_fail_their_cases_and_the_run_goes_on(cli, tmp_path):
    manifest = make_suite(tmp_path / "s", n=4)
    (tmp_path / "s" / "reference_images" / "img1.png").write_bytes(b"corrupted")
    (tmp_path / "s" / "reference_images" / "img3.png").unlink()
    run = tmp_path / "r"
    code, out, err = cli("--no-progress", "run", "--model", "static", "--suite", manifest, "--out", run, *SMALL)
    assert code == 1 and "finished with 2 failure(s)" in err and "i2vbench status" in err  # said for scripts
    assert "failed case1" in out and "img1.png" in out and "cannot be decoded" in out
    assert "failed case3" in out and "img3.png" in out and "not found" in out
    assert rows(run, "SELECT case_id, status FROM cases ORDER BY case_id") == [
        ("case0", "done"), ("case1", "failed"), ("case2", "done"), ("case3", "failed")]
    assert pd.read_csv(run / "leaderboard.csv").loc[0, "failed"] == 2


def test_run_folder_of_another_configuration_is_refused(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    code, _, err = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run,
                       *SMALL[:-2], "--set", "width=32")
    assert code == 2 and "different configuration" in err and "settings" in err and "--force" in err
    assert rows(run, "SELECT COUNT(*) FROM videos") == [(3,)]  # nothing was lost


@pytest.mark.parametrize("args, expected", [
    (["run", "--model", "nosuchmodel"], "unknown model 'nosuchmodel'; known models: camera, "),
    (["run", "--model", "static", "--metrics", "nosuch"], "unknown metric 'nosuch'; known metrics: "),
    (["run", "--model", "static", "--set", "nosuch=1"], "no setting 'nosuch'"),
    (["run", "--model", "camera", "--set", "motion=sideways"], "camera motion 'sideways' is unknown"),
    (["run", "--model", "static", "--categories", "nosuchcategory"], "nosuchcategory"),
    (["run", "--model", "static", "--set", "oops"], "--set expects key=value"),
    (["evaluate", "not/a/run"], "is not a run folder"),
])
def test_bad_names_get_clear_errors(cli, tmp_path, args, expected):
    code, _, err = cli("--no-progress", *args, "--out", tmp_path / "x") if args[0] == "run" else cli("--no-progress", *args)
    assert code == 2
    assert expected in err


def test_unwritable_output_folder(cli, tmp_path, tiny_suite):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", blocker / "run")
    assert code == 2 and "cannot create the run store" in err and "--out" in err
    code, _, err = cli("--no-progress", "leaderboard", tmp_path, "-o", blocker / "x.csv")
    assert code == 2


def test_evaluate_videos_made_elsewhere(cli, tmp_path, tiny_suite):
    made = made_videos(cli, tmp_path, tiny_suite)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (made / "case0.mp4").rename(folder / "case0.mp4")
    prompt = "a textured pattern number 1 drifts slowly to the right"
    (made / "case1.mp4").rename(folder / f"{prompt}-0.mp4")
    (folder / f"{prompt}-1.mp4").write_bytes((folder / f"{prompt}-0.mp4").read_bytes())  # a second sample
    (folder / "unrelated-clip.mp4").write_bytes(b"junk")
    (folder / "case2.mp4").write_bytes(b"not a video")
    run = tmp_path / "scored"
    code, out, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run)
    assert code == 1 and "finished with 1 failure(s)" in err, err  # the undecodable video
    report = json.loads((run / "adapter_report.json").read_text())
    assert report["matched"] == 3 and report["videos_matching_no_case"] == ["unrelated-clip.mp4"]
    assert "match no case (unrelated-clip.mp4)" in out and "1 further sample(s) of 1 case(s) not scored" in out
    assert rows(run, "SELECT case_id, fps, num_frames, height, width FROM videos WHERE case_id != 'case2' "
                     "ORDER BY case_id") == [("case0", 8.0, 6, 64, 64), ("case1", 8.0, 6, 64, 64)]  # probed
    assert json.loads(rows(run, "SELECT config FROM run")[0][0])["generation"]["settings"] == {
        "dir": str(folder.resolve()), "match": "auto"}  # no frame count or size of its own
    errors = rows(run, "SELECT case_id, metric, error FROM metric_errors ORDER BY metric")
    assert {e[0] for e in errors} == {"case2"} and "cannot be decoded" in errors[0][2]
    assert "re-encode it (ffmpeg -i IN" in errors[0][2] and "run the same command again" in errors[0][2]
    board = pd.read_csv(run / "leaderboard.csv").loc[0]
    assert board["temporal_flickering"] > 99.9 and board["score_errors"] == 2
    assert board["model"] == "elsewhere"  # the folder's name, unless --name says otherwise

    code, _, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
                       "--match", "id")
    assert code == 2 and "differs in: settings.match \"auto\" in the folder, \"id\" now" in err and "--force" in err
    code, out, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
                         "--match", "id", "--force")
    assert code == 1 and "generate: 2 done, 0 already done, 1 failed" in out  # case0 and undecodable case2, by id
    assert "failed case1" in out and "finished with 2 failure(s)" in err  # case1 has no video: a failure too
    assert all(p.exists() for p in (folder / "case0.mp4", folder / "case2.mp4"))  # the videos are never touched
    code, _, err = cli("--no-progress", "evaluate", run, "--force")
    assert code == 2 and "--force goes with --videos" in err
    code, _, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
                       "--match", "id", "--name", "my-i2v-model")
    assert code == 2 and "differs in: model \"elsewhere\" in the folder, \"my-i2v-model\" now" in err
    code, _, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
                       "--match", "id", "--name", "my-i2v-model", "--force")
    assert code == 1 and pd.read_csv(run / "leaderboard.csv").loc[0, "model"] == "my-i2v-model"
    code, out, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
                         "--match", "id")  # without --name: the name the folder's run has, not a new default
    assert code == 1 and "generate: 0 done, 2 already done" in out, err


def test_videos_from_elsewhere_that_match_nothing_stop_the_run_with_how_to_name_them(cli, tmp_path, tiny_suite):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "clip_0001.mp4").write_bytes(b"x")
    code, _, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", tmp_path / "r")
    assert code == 2 and "matches any of the 3 cases (found: clip_0001.mp4)" in err and "case0.mp4" in err
    assert not (tmp_path / "r").exists()  # refused before the run folder is made
    code, _, err = cli("--no-progress", "evaluate", "--videos", tmp_path / "missing", "--out", tmp_path / "m")
    assert code == 2 and "does not exist" in err and not (tmp_path / "m").exists()


def test_forcing_a_run_folder_onto_its_own_videos_keeps_them(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    code, out, err = cli("--no-progress", "evaluate", "--videos", run / "videos", "--suite", tiny_suite, "--out", run,
                         "--force", "--metrics", "temporal_flickering")
    assert code == 0, err  # the files the forced-out run wrote are the ones now read: never deleted
    assert sorted(p.name for p in (run / "videos").iterdir()) == ["case0.mp4", "case1.mp4", "case2.mp4"]
    assert "evaluate: 3 done" in out


def test_a_better_named_file_added_for_a_case_is_taken_as_a_fresh_run_would(cli, tmp_path, tiny_suite):
    made = made_videos(cli, tmp_path, tiny_suite, "camera")
    folder = tmp_path / "elsewhere"
    (folder / "a").mkdir(parents=True)
    for i in range(3):
        (made / f"case{i}.mp4").rename(folder / f"case{i}.mp4")
    (folder / "case0.mp4").rename(folder / "case0.webm")  # decoded by content, whatever the extension
    run = tmp_path / "scored"
    args = ("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
            "--metrics", "temporal_flickering")
    assert cli(*args)[0] == 0
    assert rows(run, "SELECT path FROM videos WHERE case_id = 'case0'") == [(str((folder / "case0.webm").resolve()),)]
    (folder / "case0.mp4").write_bytes((folder / "case1.mp4").read_bytes())  # sorts before case0.webm
    (folder / "a" / "case1.mp4").write_bytes((folder / "case0.webm").read_bytes())  # in a subfolder: ignored
    code, out, err = cli(*args)
    assert code == 0 and "generate: 1 done, 2 already done" in out, out + err
    assert rows(run, "SELECT path FROM videos WHERE case_id = 'case0'") == [(str((folder / "case0.mp4").resolve()),)]
    report = json.loads((run / "adapter_report.json").read_text())
    assert report["extra_videos_ignored"] == {"case0": {"used": "case0.mp4", "ignored": ["case0.webm"]},
                                              "case1": {"used": "case1.mp4", "ignored": ["a/case1.mp4"]}}
    assert "evaluate: 1 done, 2 already done" in out  # case0's old scores went with its old file


def test_videos_from_elsewhere_are_found_whatever_the_letter_case_and_unread_files_are_named(cli, tmp_path, tiny_suite):
    made = made_videos(cli, tmp_path, tiny_suite)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (made / "case0.mp4").rename(folder / "CASE0.MP4")
    (made / "case1.mp4").rename(folder / "case1.m4v")
    (folder / "case2").mkdir()  # a folder of frames
    (folder / "case2" / "00000.png").write_bytes(b"")
    run = tmp_path / "scored"
    code, out, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
                         "--metrics", "temporal_flickering")
    assert code == 1 and "generate: 2 done" in out, out + err
    assert "failed case2" in out and "found case2/, which is not read" in out and "ffmpeg" in out
    assert json.loads((run / "adapter_report.json").read_text())["not_read"] == {"case2": ["case2"]}
    (folder / "case0.txt").write_text("notes")  # beside a video: no hint for a case that has one
    code, out, _ = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
                       "--metrics", "temporal_flickering")
    assert json.loads((run / "adapter_report.json").read_text())["not_read"] == {"case2": ["case2"]}
    assert "1 case(s) have only files or folders of a type that is not read (case2)" in out

    code, _, err = cli("--no-progress", "evaluate", "--videos", folder / "case1.m4v", "--out", tmp_path / "f")
    assert code == 2 and "is a file; --videos takes the folder that holds the videos" in err
    code, _, err = cli("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--match", "prompt",
                       "--out", tmp_path / "p")
    assert code == 2 and "match by case id as well with --match auto" in err


def test_evaluating_finished_videos_again_rewrites_nothing(cli, tmp_path, tiny_suite):
    made = made_videos(cli, tmp_path, tiny_suite)
    run = tmp_path / "scored"
    args = ("--no-progress", "evaluate", "--videos", made, "--suite", tiny_suite, "--out", run,
            "--metrics", "temporal_flickering")
    assert cli(*args)[0] == 0
    files = [run / "adapter_report.json", run / "leaderboard.csv"]
    before = [f.stat().st_mtime_ns for f in files], rows(run, "SELECT * FROM metrics")
    time.sleep(0.01)
    code, out, _ = cli(*args)
    assert code == 0 and "evaluate: 0 done, 3 already done" in out
    assert ([f.stat().st_mtime_ns for f in files], rows(run, "SELECT * FROM metrics")) == before


def test_a_video_made_elsewhere_that_cannot_be_read_fails_its_case_only(cli, tmp_path, tiny_suite, monkeypatch):
    from i2vbench import runner

    made = made_videos(cli, tmp_path, tiny_suite)
    sha = runner._video_sha

    def no_permission(path):
        if path.name == "case1.mp4":
            raise PermissionError(13, "Permission denied")
        return sha(path)

    monkeypatch.setattr(runner, "_video_sha", no_permission)
    code, out, err = cli("--no-progress", "evaluate", "--videos", made, "--suite", tiny_suite, "--out", tmp_path / "r",
                         "--metrics", "temporal_flickering")
    assert code == 1 and "generate: 2 done, 0 already done, 1 failed" in out, out + err
    assert f"failed case1: cannot read {made.resolve() / 'case1.mp4'}: Permission denied" in out


def test_prompts_in_file_names_match_in_any_unicode_form():
    from i2vbench.adapters.videos import normalize_prompt

    composed, decomposed = "A caf\u00e9 latte", "A cafe\u0301 latte"  # as macOS writes file names
    assert normalize_prompt(decomposed) == normalize_prompt(composed) == "a caf\u00e9 latte"


def test_leaderboard_of_several_runs(cli, tmp_path, tiny_suite):
    for model in ("static", "camera"):
        assert cli("--no-progress", "run", "--model", model, "--suite", tiny_suite, "--out", tmp_path / model, *SMALL)[0] == 0
    code, out, _ = cli("leaderboard", tmp_path / "static", tmp_path / "camera", "-o", tmp_path / "lb.csv")
    assert code == 0
    board = pd.read_csv(tmp_path / "lb.csv")
    assert list(board["model"]) == ["static", "camera"]
    assert {"temporal_flickering", "frame0_ssim", "frame0_psnr_db"} <= set(board.columns)
    assert board.loc[0, "temporal_flickering"] > board.loc[1, "temporal_flickering"]


def test_list_commands(cli):
    code, out, _ = cli("list", "models")
    assert code == 0 and "static" in out and "camera" in out and "videos" in out
    code, out, _ = cli("list", "metrics")
    assert code == 0 and "temporal_flickering" in out and "frame0_fidelity" in out
    numerics = {line.split()[0]: " ".join(line.split()[2:5]) for line in out.splitlines()}
    assert numerics["subject_consistency"].startswith("bf16 on CUDA") and numerics["dynamic_degree"].startswith("fp32")
    code, out, _ = cli("list", "suites")
    assert code == 0 and "i2vbench-mini" in out


def test_one_model_is_shown_with_every_setting_its_default_and_its_note(cli, tmp_path, monkeypatch):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mine.yaml").write_text(
        "adapter: camera\ndescription: my camera\npaper: https://example.org/p\nsettings:\n"
        "  fps: 4            # slow, to look at\n  motion: zoom_in   # in, not out:\n"
        "                    # zooms show the subject best\n  speed: 0.5\nlicence: MIT\n")
    monkeypatch.setenv("I2VBENCH_MODEL_PATH", str(cards))
    code, out, err = cli("list", "models", "mine")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "mine: my camera" and f"card {cards / 'mine.yaml'}" in lines[1]
    assert "  paper: https://example.org/p" in lines and "  licence: MIT" in lines
    settings = {line.split()[0]: line.split(None, 1)[1] for line in lines[lines.index(
        "settings (override with --set KEY=VALUE):") + 1:]}
    assert settings["fps"] == "4  # slow, to look at"
    assert settings["motion"] == "zoom_in  # in, not out: zooms show the subject best"  # continued comment
    assert settings["speed"] == "0.5" and settings["num_frames"] == "16"  # card value; the toolkit's default
    code, _, err = cli("list", "metrics", "mine")
    assert code == 2 and "'i2vbench list models NAME' shows one model" in err
    code, _, err = cli("list", "models", "nope")
    assert code == 2 and "unknown model 'nope'" in err


@pytest.fixture
def slow_writes(monkeypatch):
    """Video writing takes 0.3 s and notes when each video is done; ``fail`` names cases whose write fails."""
    import plugins

    from i2vbench import runner

    plugins.GENERATE_CALLS.clear()
    written, fail = [], set()
    real = runner.write_video

    def write(video, path, *args, **kwargs):
        time.sleep(0.3)
        if Path(path).stem in fail:
            raise OSError(f"disk full writing {path}")
        real(video, path, *args, **kwargs)
        written.append(("written", Path(path).stem, time.perf_counter()))

    monkeypatch.setattr(runner, "write_video", write)
    return plugins.GENERATE_CALLS, written, fail


def generate_timed(cli, tmp_path: Path, suite: Path, adapter: str = "TimedStatic") -> tuple[int, str, str, Path]:
    """``generate`` with a test adapter (batches of 2 cases) into ``tmp_path / adapter``: (code, out, err, run)."""
    card, run = write_card(tmp_path / f"{adapter}.yaml", f"plugins:{adapter}"), tmp_path / adapter
    return (*cli("--no-progress", "generate", "--model", card, "--suite", suite, "--out", run, *SMALL), run)


def test_videos_are_written_while_the_next_batch_is_made(cli, tmp_path, tiny_suite, slow_writes):
    calls, written, _ = slow_writes
    code, out, err, run = generate_timed(cli, tmp_path, tiny_suite)
    assert code == 0 and "generate: 3 done" in out, err
    (_, _, second_batch_asked), = [c for c in calls if c[1] == "case2"]
    first_batch_written = max(t for _, case, t in written if case in ("case0", "case1"))
    assert second_batch_asked < first_batch_written  # the adapter did not wait for the encoder
    assert rows(run, "SELECT COUNT(*) FROM videos") == [(3,)]


def test_ctrl_c_keeps_the_videos_still_being_written(cli, tmp_path, tiny_suite, slow_writes, monkeypatch):
    monkeypatch.setenv("INTERRUPT_AT_CALL", "2")  # while the first batch's videos are being written
    code, _, err, run = generate_timed(cli, tmp_path, tiny_suite)
    assert code != 0 and "interrupted" in err
    assert rows(run, "SELECT case_id FROM videos ORDER BY case_id") == [("case0",), ("case1",)]
    assert sorted(p.name for p in (run / "videos").iterdir()) == ["case0.mp4", "case1.mp4"]


def test_a_failed_write_stops_the_run_after_the_other_videos_are_recorded(cli, tmp_path, tiny_suite, slow_writes):
    _, _, fail = slow_writes
    fail.add("case0")
    code, _, err, run = generate_timed(cli, tmp_path, tiny_suite)
    assert code == 2 and "error: could not write the video of case 'case0'" in err and "disk full" in err
    # the error surfaces when the first batch is recorded, after the second was made: both others are kept
    assert rows(run, "SELECT case_id FROM videos ORDER BY case_id") == [("case1",), ("case2",)]
    assert rows(run, "SELECT case_id FROM cases WHERE status = 'done' ORDER BY case_id") == [("case1",), ("case2",)]


def test_a_video_the_encoder_refuses_fails_its_case_and_the_run_goes_on(cli, tmp_path, tiny_suite, monkeypatch):
    from i2vbench import runner

    real = runner.write_video

    def write(video, path, *args, **kwargs):
        if Path(path).stem == "case1":
            raise ValueError("frames the encoder refuses")
        real(video, path, *args, **kwargs)

    monkeypatch.setattr(runner, "write_video", write)
    code, out, err, run = generate_timed(cli, tmp_path, tiny_suite)
    assert code == 1 and "failed case1: could not write its video: ValueError: frames the encoder refuses" in out
    assert rows(run, "SELECT case_id, status FROM cases ORDER BY case_id") == [("case0", "done"), ("case1", "failed"),
                                                                               ("case2", "done")]


def test_a_video_damaged_since_it_was_written_is_made_again(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    args = ("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, "--metrics",
            "temporal_flickering", *SMALL)
    assert cli(*args)[0] == 0
    (run / "videos" / "case0.mp4").write_bytes(b"")  # what a power loss can leave
    code, out, err = cli(*args)
    assert code == 0, err
    assert "generate: 1 done, 2 already done" in out and "evaluate: 1 done, 2 already done" in out


@pytest.mark.parametrize("fps", ["0.0001", "0", "5000"])
def test_frame_rates_no_video_can_have_are_refused(cli, tmp_path, tiny_suite, fps):
    code, _, err = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", tmp_path / "r",
                       "--set", f"fps={fps}")
    assert code == 2 and "setting fps must be a number from 0.01 to 1000" in err and not (tmp_path / "r").exists()


class _Store:
    run_dir = Path(".")

    def __init__(self) -> None:
        self.recorded: list[str] = []

    def record_video(self, case_id, *args) -> None:
        self.recorded.append(case_id)


class _InterruptedOnce:
    """A write whose first wait is interrupted (Ctrl-C while the runner waits for it)."""

    def __init__(self) -> None:
        self.waits = 0

    def result(self):
        self.waits += 1
        if self.waits == 1:
            raise KeyboardInterrupt
        return "videos/x.mp4", "ab" * 32, 8.0, 16, 64, 64


def test_a_video_leaves_the_writer_queue_only_once_it_is_recorded():
    from types import SimpleNamespace

    from i2vbench.runner import StageSummary, VideoWriter

    store = _Store()
    cases = [SimpleNamespace(id=f"case{i}", category="c", prompt="p") for i in range(2)]
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(store, StageSummary(), workers=1) as writer:
            done = SimpleNamespace(result=lambda: ("videos/y.mp4", "cd" * 32, 8.0, 16, 64, 64))
            writer.pending = [(cases[0], 0, None, _InterruptedOnce()), (cases[1], 0, None, done)]
            writer.record()  # interrupted while waiting for case0: leaving the block waits again and records both
    assert store.recorded == ["case0", "case1"] and writer.pending == []


def test_ctrl_c_while_the_last_videos_are_awaited_still_records_them():
    from types import SimpleNamespace

    from i2vbench.runner import StageSummary, VideoWriter

    store = _Store()
    cases = [SimpleNamespace(id=f"case{i}", category="c", prompt="p") for i in range(2)]
    done = SimpleNamespace(result=lambda: ("videos/y.mp4", "cd" * 32, 8.0, 16, 64, 64))
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(store, StageSummary(), workers=1) as writer:
            writer.pending = [(cases[0], 0, None, _InterruptedOnce()), (cases[1], 0, None, done)]
    # the block ended normally; the interrupt came while leaving it waited, and is raised once both are recorded
    assert store.recorded == ["case0", "case1"] and writer.pending == []


def test_a_second_ctrl_c_abandons_the_videos_still_awaited():
    from types import SimpleNamespace

    from i2vbench.runner import StageSummary, VideoWriter

    class AlwaysInterrupted:
        def result(self):
            raise KeyboardInterrupt

    store = _Store()
    case = SimpleNamespace(id="case0", category="c", prompt="p")
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(store, StageSummary(), workers=1) as writer:
            writer.pending = [(case, 0, None, AlwaysInterrupted())]
    assert store.recorded == []  # not recorded: made again by the next run


def test_sigterm_stops_the_run_like_ctrl_c(cli, tmp_path, tiny_suite, slow_writes, monkeypatch):
    monkeypatch.setenv("TERMINATE_AT_CALL", "2")  # a scheduler's time limit while the first batch is written
    received = []

    def outer_handler(signum, frame):  # stands for the handler the command finds (and catches the signal if the
        received.append(signum)        # command installed none, instead of killing the test session)

    previous = signal.signal(signal.SIGTERM, outer_handler)
    try:
        code, _, err, run = generate_timed(cli, tmp_path, tiny_suite)
        restored = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [] and restored is outer_handler  # handled by the command, which put the old handler back
    assert code == 143 and "terminated: everything finished so far is saved" in err
    assert rows(run, "SELECT case_id FROM videos ORDER BY case_id") == [("case0",), ("case1",)]
    assert sorted(p.name for p in (run / "videos").iterdir()) == ["case0.mp4", "case1.mp4"]  # no temp files left


def test_temp_files_of_killed_writes_are_removed_when_the_run_is_opened_again(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    videos = run / "videos"
    killed_here = videos / f".case0.mp4.{dead.stdout.strip()}@{host}.k1ll3d.mp4"  # its writer has exited
    writing_here = videos / f".case1.mp4.{os.getppid()}@{host}.wr1t1ng.mp4"  # its writer lives
    # this process's own id: a restarted container's process may be given the id of the one that was killed
    reused_id = videos / f".case1.mp4.{os.getpid()}@{host}.r3u5ed.mp4"
    old_elsewhere, new_elsewhere = videos / ".case2.mp4.7@other.host.0ld.mp4", videos / ".case2.mp4.7@other.host.n3w.mp4"
    for temp in (killed_here, writing_here, reused_id, old_elsewhere, new_elsewhere):
        temp.write_bytes(b"half a video")
    os.utime(old_elsewhere, (time.time() - 3600, time.time() - 3600))
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    assert sorted(p.name for p in videos.iterdir() if p.name.startswith(".")) == sorted([writing_here.name, new_elsewhere.name])


def test_temp_names_carry_the_writers_pid_and_host(tmp_path):
    from i2vbench.video import atomic_path

    with atomic_path(tmp_path / "case0.mp4") as temp:
        assert Path(temp).name.startswith(f".case0.mp4.{os.getpid()}@{socket.gethostname()}.") and temp.endswith(".mp4")


def test_a_stopping_run_reports_why_it_stopped_before_a_failed_write(cli, tmp_path, tiny_suite, slow_writes, monkeypatch):
    _, _, fail = slow_writes
    fail.add("case0")
    monkeypatch.setenv("INTERRUPT_AT_CALL", "2")
    code, _, err, run = generate_timed(cli, tmp_path, tiny_suite)
    assert code == 130 and "interrupted" in err and "also: could not write the video of case 'case0'" in err
    assert rows(run, "SELECT case_id FROM videos") == [("case1",)]


def test_an_adapter_may_reuse_its_frame_buffers_for_the_next_batch(cli, tmp_path, tiny_suite, slow_writes):
    runs = {}
    for adapter in ("TimedStatic", "ReusingStatic"):
        code, _, err, run = generate_timed(cli, tmp_path, tiny_suite, adapter)
        assert code == 0, err
        runs[adapter] = rows(run, "SELECT case_id, sha256 FROM videos ORDER BY case_id")
    assert runs["ReusingStatic"] == runs["TimedStatic"]  # case0's video was not overwritten by case2's frames


@pytest.mark.parametrize("text, default, expected", [
    ("ugly: blurry, low quality", "", "ugly: blurry, low quality"),  # text settings keep the text as typed
    ("123", "", "123"),
    ("none", None, None), ("None", None, None), ("", None, None), ("null", 3, None),
    ("off", None, "off"), ("a: b", None, "a: b"),  # no default type: not turned into a boolean or a mapping
    ("25", 50, 25), ("0.3", 0.25, 0.3), ("true", False, True), ("reduce-overhead", False, "reduce-overhead"),
    ("[1, 2]", None, [1, 2]), ("1e3", 50, 1000), ("2.5e-1", 0.5, 0.25),  # YAML 1.1 reads these as text
    ("15.0", 50, 15), ("nan", 7.5, "nan"), ("inf", 7.5, "inf"),  # whole floats for counts; no non-finite numbers
])
def test_set_values_are_read_for_the_type_of_their_default(text, default, expected):
    from i2vbench.cli import typed_setting

    assert typed_setting(text, default) == expected


def test_settings_keep_the_type_of_their_default(cli, tmp_path):
    card = write_card(tmp_path / "typed.yaml", "plugins:TypedStatic")
    for setting, message in [("steps=25.7", "setting steps must be a whole number; got 25.7 (default 50)"),
                             ("flag=maybe", "setting flag must be true or false; got 'maybe' (default False)"),
                             ("flag=1", "setting flag must be true or false; got 1"),
                             ("sizes=512", "setting sizes must be a list (--set KEY=[a, b]); got 512"),
                             ("scale=nan", "setting scale must be a number; got 'nan'"),
                             ("scale=.inf", "setting scale must be a number; got '.inf'")]:
        code, _, err = cli("generate", "--model", card, "--out", tmp_path / "r", "--set", setting)
        assert code == 2 and f"model 'typed' (card {card}): {message}" in err, err
    bad_card = tmp_path / "quoted.yaml"
    bad_card.write_text('adapter: plugins:TypedStatic\nsettings: {flag: "false"}\n')  # quoted: text, and truthy
    code, _, err = cli("generate", "--model", bad_card, "--out", tmp_path / "r")
    assert code == 2 and "setting flag must be true or false; got 'false'" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("adapter, message", [
    ("plugins:not_an_adapter", "adapter 'plugins:not_an_adapter' is <function not_an_adapter"),
    ("plugins:Nameless", "adapter class 'plugins:Nameless' sets no name: give it one"),
    ("plugins:Unfinished", "could not be set up: TypeError: Can't instantiate abstract class Unfinished"),
    ("plugins:Fussy", "adapter 'plugins:Fussy' could not be set up: ValueError: ckpt must be given"),
    ("plugins.Fussy", "unknown adapter 'plugins.Fussy'; known adapters: camera, consisti2v, static, videos; to name "
                      "a class, write module:Class (plugins:Fussy)"),
])
def test_a_card_whose_adapter_is_no_usable_adapter_class_is_refused_by_name(cli, tmp_path, tiny_suite, monkeypatch,
                                                                          adapter, message):
    card = write_card(tmp_path / "cards" / "odd.yaml", adapter)
    code, _, err = cli("--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", tmp_path / "r")
    assert code == 2 and message in err, err
    assert not (tmp_path / "r").exists()
    monkeypatch.setenv("I2VBENCH_MODEL_PATH", str(card.parent))
    code, out, _ = cli("list", "models")  # one odd card does not hide the others
    assert code == 0 and "static" in out and "odd" in out


def test_bad_names_and_devices_are_refused_before_any_video_is_made(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    for args, message in [(("--metrics", "nosuch"), "unknown metric 'nosuch'"), (("--device", "tpu"), "unknown device 'tpu'"),
                          (("--set", "speed=fast"), "setting speed must be a number")]:
        code, _, err = cli("run", "--model", "camera", "--suite", tiny_suite, "--out", run, *SMALL, *args,
                           "--no-progress")  # --no-progress after the command works too
        assert code == 2 and message in err, err
        assert not run.exists()


@pytest.mark.parametrize("motion", ["pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out"])
def test_camera_windows_keep_the_frame_aspect_and_stay_inside_the_image(motion):
    from i2vbench.adapters.baselines import CameraAdapter

    adapter = CameraAdapter(motion=motion, speed=0.25, height=64, width=96, num_frames=5)
    boxes = np.array(adapter.boxes())
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert np.allclose(widths / heights, 96 / 64)  # never stretched
    assert (boxes[:, :2] >= -1e-9).all() and (boxes[:, 2] <= 96 + 1e-9).all() and (boxes[:, 3] <= 64 + 1e-9).all()
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    if motion.startswith("pan"):
        axis = 0 if motion in ("pan_left", "pan_right") else 1
        travel = centres[-1, axis] - centres[0, axis]
        assert travel == pytest.approx((0.25 if motion in ("pan_right", "pan_down") else -0.25) * (96, 64)[axis])
        assert np.allclose(centres[:, 1 - axis], (48, 32)[1 - axis])  # centred across the motion
    else:
        assert np.allclose(centres, (48, 32))
        assert widths[0 if motion == "zoom_in" else -1] == pytest.approx(96)  # the whole frame at one end


def test_a_metric_running_without_some_of_its_scores_says_which_and_why(cli, tmp_path, tiny_suite, weight_cache):
    run = tmp_path / "r"
    code, out, err = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL,
                         "--metrics", "frame0_fidelity")
    assert code == 0, err
    assert "frame0_fidelity: frame0_lpips left out: its weights are not cached" in out
    assert "i2vbench weights fetch lpips_alex alexnet_imagenet" in out


# ------------------------------------------------------------------------------------------- the store's edges

class _InterruptAfterCommit:
    """A connection whose COMMIT goes through and is then interrupted (a Ctrl-C landing just after it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str):
        return getattr(self._conn, name)

    def cursor(self):
        cur = self._conn.cursor()

        class Cursor:
            def execute(self, sql, *params):
                out = cur.execute(sql, *params)
                if sql == "COMMIT":
                    raise KeyboardInterrupt
                return out

        return Cursor()


def test_an_interrupt_just_after_commit_stays_an_interrupt_and_the_write_is_kept(tmp_path):
    store = RunStore(tmp_path / "r")
    real = store.conn
    store.conn = _InterruptAfterCommit(real)
    with pytest.raises(KeyboardInterrupt):
        store.record_scores("m", "c0", {"a": 0.5})
    store.conn = real
    assert store.scored_cases("m", ["a"]) == {"c0"}


def test_a_case_that_fails_after_it_was_scored_loses_its_scores(tmp_path):
    store = RunStore(tmp_path / "r")
    store.record_video("c0", "cat", "p", 1, "videos/c0.mp4", "ab", 8.0, 4, 32, 48)
    store.record_scores("m", "c0", {"a": 0.5}, {"a": [0.5, 0.5]})
    store.record_metric_error("n", "c0", "broken")
    store.record_failure("c0", "cat", "p", 1, "the video file is gone")
    for table in ("scores", "frame_scores", "metric_errors", "videos"):
        assert store.table(table).empty, table


def test_non_finite_scores_are_recorded_as_errors_not_as_missing_numbers(tmp_path):
    from i2vbench.metrics import MetricResult
    from i2vbench.runner import StageSummary, _score

    class Odd:
        name = "odd"

        def run(self, items, cache):
            return [MetricResult({"odd": float("nan")}), MetricResult({"odd": 0.5}, {"odd": [0.5, float("inf")]}),
                    MetricResult({"odd": 0.25}, {"odd": [0.25]})]

    store = RunStore(tmp_path / "r")
    items = [type("Item", (), {"case": type("Case", (), {"id": f"c{i}"})()})() for i in range(3)]
    summary = StageSummary()
    _score(store, Odd(), items, None, summary)
    assert store.scored_cases("odd", ["odd"]) == {"c2"}
    errors = dict(zip(store.table("metric_errors")["case_id"], store.table("metric_errors")["error"]))
    assert set(errors) == {"c0", "c1"} and all("non-finite value(s) for odd" in e for e in errors.values())
    assert set(summary.failed) == {"c0", "c1"}


@pytest.mark.parametrize("content", [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\x00" * 50],
                         ids=["other file", "truncated"])
def test_a_damaged_store_is_reported_not_raised(tmp_path, content, cli):
    run = tmp_path / "junk"
    run.mkdir()
    (run / "run.sqlite").write_bytes(content)
    code, out, err = cli("status", run)
    assert code == 2 and "is not a readable run store" in err and "Traceback" not in err


def test_one_unreadable_card_on_the_model_path_spoils_only_itself(cli, tmp_path, tiny_suite, monkeypatch):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mine.yaml").write_text("adapter: static\nsettings: {fps: 4, height: [\n")
    (cards / "other.yaml").write_text("adapter: static\nsettings: {fps: 4}\n")
    monkeypatch.setenv("I2VBENCH_MODEL_PATH", str(cards))
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", tmp_path / "r", *SMALL)[0] == 0
    code, out, err = cli("list", "models")
    assert code == 0 and "other" in out and "warning: model card" in err and "mine.yaml cannot be read" in err
    code, _, err = cli("generate", "--model", "mine", "--suite", tiny_suite, "--out", tmp_path / "m")
    assert code == 2 and "mine.yaml cannot be read" in err  # the card meant, and what is wrong with it
    code, _, err = cli("generate", "--model", tmp_path / "nothere.yaml", "--suite", tiny_suite)
    assert code == 2 and "nothere.yaml not found" in err


def test_videos_of_different_formats_in_one_run_are_pointed_out(cli, tmp_path, tiny_suite):
    made, bigger = tmp_path / "made", tmp_path / "bigger"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", made, *SMALL)[0] == 0
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", bigger,
               "--set", "num_frames=8", "--set", "height=64", "--set", "width=96")[0] == 0
    (made / "videos" / "case1.mp4").write_bytes((bigger / "videos" / "case1.mp4").read_bytes())
    code, out, err = cli("--no-progress", "evaluate", "--videos", made / "videos", "--suite", tiny_suite,
                         "--out", tmp_path / "r", "--metrics", "temporal_flickering")
    assert code == 0, err
    assert ("the run's videos differ in format: 2 64x64, 6 frames at 8 fps (case0, case2); 1 96x64, 8 frames at "
            "8 fps (case1). Each is scored as it is" in out)
    code, out, _ = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", made, *SMALL)
    assert code == 0 and "differ in format" not in out  # the run's own videos (its record of them) agree


def test_a_videos_folder_that_cannot_be_written_stops_the_run(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    run.mkdir()
    (run / "videos").write_text("a file where the videos folder goes")
    code, _, err = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)
    assert code == 2 and f"cannot write into {run / 'videos'}" in err and "choose a writable folder" in err
    assert rows(run, "SELECT COUNT(*) FROM cases WHERE status = 'failed'")[0][0] == 0  # not blamed on the cases


def test_a_store_locked_by_another_process_stops_with_the_reason(tmp_path):
    from i2vbench.errors import StorageError

    with RunStore(tmp_path / "r") as store:
        store.conn.execute("PRAGMA busy_timeout = 100")
        other = sqlite3.connect(tmp_path / "r" / "run.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError, match="another process kept it locked"):
                store.request(["a"])
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.request(["a"])  # free again: the store works on
        assert store.requested() == ["a"]


def test_the_run_leaderboard_never_outlives_the_scores_it_shows(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    base = ("--no-progress", "--suite", tiny_suite, "--out", run, *SMALL)
    assert cli("run", "--model", "static", "--metrics", "temporal_flickering", *base)[0] == 0
    assert pd.read_csv(run / "leaderboard.csv").loc[0, "scored"] == 3
    (run / "videos" / "case0.mp4").unlink()  # made again by the next generate, which forgets its scores
    assert cli("generate", "--model", "static", *base)[0] == 0
    assert pd.read_csv(run / "leaderboard.csv").loc[0, "scored"] == 2
    code, _, err = cli("generate", "--model", "static", *base, "--set", "fps=4", "--force")  # another configuration
    assert code == 0, err
    assert not (run / "leaderboard.csv").exists() and not (run / "leaderboard_by_category.csv").exists()


def test_the_readme_metric_example_runs_as_written(cli, tmp_path, tiny_suite, monkeypatch):
    text = (REPO / "README.md").read_text()
    code = text.split("# mypkg/metric.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "metric.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("mypkg", "mypkg.adapter", "mypkg.metric"):  # another test's mypkg, from another folder
        monkeypatch.delitem(sys.modules, module, raising=False)
    run = tmp_path / "r"
    result = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL,
                 "--metrics", "mypkg.metric:Brightness")
    assert result[0] == 0, result[2]
    assert 0 < pd.read_csv(run / "leaderboard.csv").loc[0, "brightness"] < 100


def test_the_readme_adapter_example_runs_as_written(cli, tmp_path, tiny_suite, monkeypatch):
    text = (REPO / "README.md").read_text()
    code = text.split("# mypkg/adapter.py\n", 1)[1].split("```", 1)[0]
    card = text.split("# models/mymodel.yaml (or any folder listed in I2VBENCH_MODEL_PATH)\n", 1)[1].split("```", 1)[0]
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "adapter.py").write_text(code)
    (tmp_path / "mymodel.yaml").write_text(card)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("mypkg", "mypkg.adapter", "mypkg.metric"):  # another test's mypkg, from another folder
        monkeypatch.delitem(sys.modules, module, raising=False)
    run = tmp_path / "r"
    result = cli("--no-progress", "run", "--model", tmp_path / "mymodel.yaml", "--suite", tiny_suite, "--out", run,
                 *SMALL, "--metrics", "frame0_fidelity")
    assert result[0] == 0, result[2]
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", tmp_path / "s",
               *SMALL)[0] == 0  # the example's stand-in repeats the fitted input image, as `static` does
    assert rows(run, "SELECT case_id, sha256 FROM videos") == rows(tmp_path / "s", "SELECT case_id, sha256 FROM videos")
    code, _, err = cli("--no-progress", "generate", "--model", tmp_path / "mymodel.yaml", "--suite", tiny_suite,
                       "--out", tmp_path / "g", "--set", "guidance=0.5")
    assert code == 2 and "mymodel: guidance must be at least 1; got 0.5" in err


def test_a_plugin_that_cannot_be_imported_says_how_to_make_it_importable(cli, tmp_path, tiny_suite):
    code, _, err = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", tmp_path / "r",
                       *SMALL, "--metrics", "nopkg_here.metric:Brightness")
    assert code == 2 and "make sure 'nopkg_here.metric' is importable" in err and "PYTHONPATH" in err


def test_cases_can_be_left_out_of_a_run(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    code, out, _ = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL,
                       "--exclude-cases", "case1")
    assert code == 0 and "generate: 2 done" in out
    assert rows(run, "SELECT case_id FROM requested ORDER BY case_id") == [("case0",), ("case2",)]
