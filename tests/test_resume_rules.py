"""What a rerun redoes: lost videos, scoring errors, new scores; what it keeps: scores of a metric that
cannot run on this machine; what it refuses: clashing score names, bad batch sizes, odd frame sizes."""

from __future__ import annotations

import sqlite3

import numpy as np
import plugins
import pytest

from i2vbench.errors import ConfigError
from i2vbench.metrics import FeatureCache
from i2vbench.runner import evaluate, load_run_suite
from i2vbench.store import RunStore
from i2vbench.video import Video, file_sha256, write_video

SMALL = ["--set", "num_frames=4", "--set", "height=32", "--set", "width=32"]


def rows(run, sql):
    with sqlite3.connect(run / "run.sqlite") as conn:
        return conn.execute(sql).fetchall()


def test_a_lost_video_is_made_again_and_scored_again(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    (run / "videos" / "case1.mp4").unlink()
    code, out, _ = cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)
    assert code == 0 and "generate: 1 done, 2 already done" in out and "evaluate: 1 done, 2 already done" in out
    assert rows(run, "SELECT COUNT(*) FROM scores WHERE score = 'temporal_flickering'") == [(3,)]


def test_scoring_errors_are_tried_again(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    video = run / "videos" / "case0.mp4"
    good = video.read_bytes()
    video.write_bytes(b"broken for a moment")
    assert cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering")[0] == 1  # one video unscored
    assert rows(run, "SELECT case_id FROM metric_errors") == [("case0",)]
    video.write_bytes(good)
    code, out, _ = cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering")
    assert code == 0 and "evaluate: 1 done, 2 already done" in out
    assert rows(run, "SELECT COUNT(*) FROM metric_errors") == [(0,)]


def test_a_batch_a_metric_cannot_hold_in_memory_is_scored_video_by_video(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    with RunStore.open_existing(run) as store:
        summary = evaluate(store, load_run_suite(store), [plugins.GreedyMeanPixel()], progress=False)
    assert summary.failed == {} and summary.done == 3
    assert rows(run, "SELECT COUNT(*) FROM scores WHERE metric = 'greedy_mean_px'") == [(3,)]


def test_a_video_a_metric_cannot_score_counts_as_failed_not_done(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    with RunStore.open_existing(run) as store:
        summary = evaluate(store, load_run_suite(store), [plugins.MeanPixel(), plugins.PickyMeanPixel()], progress=False)
    assert summary.done == 2 and summary.failed == {"case1": "picky_mean_px: nothing to score"}


def test_evaluation_batches_hold_a_bounded_amount_of_decoded_frames():
    from i2vbench.runner import _batches_within

    def video(frames: int, side: int) -> dict:
        return {"num_frames": frames, "height": side, "width": side}

    small, big = video(16, 256), video(121, 1024)  # 3 MB and 380 MB of frames
    videos = {"a": small, "b": small, "c": big, "d": big, "e": big, "f": small, "g": {"num_frames": None}}
    assert _batches_within(list(videos), videos, 16, budget=1 << 30) == [["a", "b", "c", "d"], ["e", "f", "g"]]
    assert _batches_within(list(videos), videos, 2, budget=1 << 30) == [["a", "b"], ["c", "d"], ["e", "f"], ["g"]]
    assert _batches_within(["c", "d"], videos, 16, budget=1) == [["c"], ["d"]]  # one video over budget still goes


def test_a_metric_that_cannot_run_here_keeps_its_earlier_scores(cli, tmp_path, tiny_suite, monkeypatch):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    with RunStore.open_existing(run) as store:
        suite = load_run_suite(store)
        evaluate(store, suite, [plugins.MeanPixel()], progress=False)
        monkeypatch.setitem(plugins.AVAILABLE, "mean_px", False)
        summary = evaluate(store, suite, [plugins.MeanPixel()], recompute=True, progress=False)
        assert any("earlier scores are kept" in n for n in summary.notes)
        assert store.metric_info()["mean_px"]["status"] == "ran"
    assert rows(run, "SELECT COUNT(*) FROM scores WHERE metric = 'mean_px'") == [(3,)]


def test_two_metrics_may_not_share_a_score_name(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    with RunStore.open_existing(run) as store:
        suite = load_run_suite(store)
        evaluate(store, suite, [plugins.MeanPixel()], progress=False)
        with pytest.raises(ConfigError, match="both report a score named 'mean_px'"):
            evaluate(store, suite, [plugins.MeanPixelClash()], progress=False)
    assert rows(run, "SELECT DISTINCT metric FROM scores WHERE score = 'mean_px'") == [("mean_px",)]


def test_a_score_added_to_a_metric_is_computed_on_the_next_run(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0

    class Grown(plugins.MeanPixel):
        scores = plugins.MeanPixel.scores + (plugins.ScoreSpec("max_px"),)

        def score(self, items, cache: FeatureCache):
            return [plugins.MetricResult({"mean_px": 0.5, "max_px": 1.0}) for _ in items]

    with RunStore.open_existing(run) as store:
        suite = load_run_suite(store)
        evaluate(store, suite, [plugins.MeanPixel()], progress=False)
        assert evaluate(store, suite, [Grown()], progress=False).done == 3
    assert rows(run, "SELECT COUNT(*) FROM scores WHERE score = 'max_px'") == [(3,)]


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--batch-size", "-1"], ["--eval-batch-size", "0"]])
def test_batch_sizes_below_one_are_refused(cli, tmp_path, tiny_suite, args):
    with pytest.raises(SystemExit):
        cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", tmp_path / "r", *args)


def test_odd_frame_sizes_are_refused(cli, tmp_path, tiny_suite):
    code, _, err = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", tmp_path / "r",
                       "--set", "height=33")
    assert code == 2 and "must be even" in err
    code, _, err = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", tmp_path / "r",
                       "--set", "num_frames=1")
    assert code == 2 and "num_frames must be at least 2" in err and not (tmp_path / "r").exists()


def test_force_deletes_only_the_videos_the_run_wrote(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    keep = run / "videos" / "not-mine.mp4"
    keep.write_bytes(b"a user's file")
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL, "--force")[0] == 0
    assert keep.read_bytes() == b"a user's file"


def test_force_drops_the_report_of_the_run_it_discards(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    (run).mkdir()
    (run / "adapter_report.json").write_text('{"matched": 1}')  # as a run of videos made elsewhere leaves it
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    assert (run / "adapter_report.json").exists()  # not a forced run: nothing of the folder is touched
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL,
               "--force")[0] == 0
    assert not (run / "adapter_report.json").exists()


def test_runtime_settings_may_change_on_resume_and_others_are_named(cli, tmp_path, tiny_suite):
    card = tmp_path / "rt.yaml"
    card.write_text('{"name": "rt", "adapter": "plugins:RuntimeStatic"}')
    run = tmp_path / "r"
    base = ["--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", run, *SMALL]
    assert cli(*base, "--set", "chunk=1")[0] == 0
    code, out, _ = cli(*base, "--set", "chunk=4")
    assert code == 0 and "generate: 0 done, 3 already done" in out
    code, _, err = cli(*base, "--set", "width=64")
    assert code == 2 and "differs in: settings.width 32 in the folder, 64 now" in err


def test_equal_numbers_written_differently_resume_the_run(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    for fps in ("8", "8.0"):  # a card edited from 8 to 8.0 makes the same videos
        card = tmp_path / "c.yaml"
        card.write_text('{"name": "c", "adapter": "static", "settings": {"fps": %s}}' % fps)
        code, out, err = cli("--no-progress", "generate", "--model", card, "--suite", tiny_suite, "--out", run, *SMALL)
        assert code == 0, err
    assert "generate: 0 done, 3 already done" in out


def test_evaluating_a_run_whose_manifest_changed_is_refused(cli, tmp_path, tiny_suite):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    tiny_suite.write_text(tiny_suite.read_text().replace("number 0", "number zero"))
    code, _, err = cli("--no-progress", "evaluate", run)
    assert code == 2 and "changed since" in err


def test_a_run_whose_suite_moved_finds_it_by_name_or_by_suite(cli, tmp_path, tiny_suite, monkeypatch):
    run = tmp_path / "r"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)[0] == 0
    moved = tmp_path / "elsewhere" / "suite"
    moved.parent.mkdir()
    tiny_suite.parent.parent.rename(moved)  # <suite>/prompts/tiny.jsonl: the whole suite folder moves
    code, _, err = cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering")
    assert code == 2 and "is not there (moved" in err and "--suite" in err
    code, out, err = cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering", "--suite", moved)
    assert code == 0 and "evaluate: 3 done" in out, err
    assert "\nvideos: 3 cases asked for: 3 made, 0 failed, 0 not made yet\n" in cli("status", run)[1]
    monkeypatch.setenv("I2VBENCH_SUITE_PATH", str(moved))  # found by its name on the search path
    assert "\nvideos: 3 cases asked for: 3 made, 0 failed, 0 not made yet\n" in cli("status", run)[1]
    code, out, err = cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering", "--recompute")
    assert code == 0 and "evaluate: 3 done" in out, err


def test_a_video_made_elsewhere_that_changed_is_recorded_and_scored_again(cli, tmp_path, tiny_suite):
    folder = tmp_path / "elsewhere"
    for model in ("static", "camera"):
        assert cli("--no-progress", "generate", "--model", model, "--suite", tiny_suite, "--out", tmp_path / model,
                   *SMALL)[0] == 0
    (tmp_path / "static" / "videos").rename(folder)
    run = tmp_path / "scored"
    args = ("--no-progress", "evaluate", "--videos", folder, "--suite", tiny_suite, "--out", run,
            "--metrics", "temporal_flickering")
    assert cli(*args)[0] == 0
    still = rows(run, "SELECT value FROM scores WHERE case_id = 'case1'")
    (tmp_path / "camera" / "videos" / "case1.mp4").replace(folder / "case1.mp4")  # re-rendered in place
    code, out, _ = cli(*args)
    assert code == 0 and "generate: 1 done, 2 already done" in out and "evaluate: 1 done, 2 already done" in out
    moving = rows(run, "SELECT value FROM scores WHERE case_id = 'case1'")
    assert moving[0][0] < still[0][0]  # the camera's pan flickers more than a still image
    assert rows(run, "SELECT sha256 FROM videos WHERE case_id = 'case1'") == [(file_sha256(folder / "case1.mp4"),)]

    frames = np.random.default_rng(0).integers(0, 255, (7, 32, 48, 3), dtype=np.uint8)
    write_video(Video(frames, 16.0), folder / "case2.mp4")  # longer, faster, wider: and evaluated as a run folder
    code, out, _ = cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering")
    assert code == 0 and "changed since they were recorded and are scored again: case2" in out
    assert "evaluate: 1 done, 2 already done" in out
    assert rows(run, "SELECT sha256, fps, num_frames, height, width FROM videos WHERE case_id = 'case2'") == [
        (file_sha256(folder / "case2.mp4"), 16.0, 7, 32, 48)]


def test_a_run_that_made_nothing_says_force_loses_nothing(tmp_path):
    """A folder whose run stopped before its first video (a model that would not load) holds nothing to lose, and
    the refusal says so; it is still refused, since its run may be loading its model at this moment."""
    def config(width: int) -> dict:
        return {"generation": {"model": "m", "settings": {"width": width}, "seed": 0, "suite": "s"}}

    with RunStore(tmp_path / "r") as store:
        store.init_run(config(32), "a")
        store.record_failure("c1", "cat", "a cat", 1, "every case failed under the first settings")
        with pytest.raises(ConfigError, match="holds no video or score yet, so nothing is lost"):
            store.init_run(config(64), "b")
        store.record_video("c1", "cat", "a cat", 1, "videos/c1.mp4", "0" * 64, 8.0, 4, 32, 32)
        with pytest.raises(ConfigError, match="or --force to discard it and start again$"):
            store.init_run(config(96), "c")
        assert store.fingerprint() == "a"


def test_a_store_from_before_weight_digests_resumes_with_them(tmp_path):
    old = {"generation": {"model": "m", "settings": {"width": 32}, "seed": 0, "suite": "s"}}
    new = {"generation": {**old["generation"], "weights": {"unet_sha256": "ab" * 32}}}
    with RunStore(tmp_path / "r") as store:
        store.init_run(old, "old")
        store.record_video("c1", "cat", "a cat", 1, "videos/c1.mp4", "0" * 64, 8.0, 4, 32, 32)
        store.init_run(new, "new")  # the digest was not recorded then: nothing to compare it with
        changed = {"generation": {**new["generation"], "seed": 1}}
        with pytest.raises(ConfigError, match="differs in: seed 0 in the folder, 1 now"):
            store.init_run(changed, "changed")


def test_an_evaluation_stopped_part_way_leaves_a_true_leaderboard_and_reports_say_so(cli, tmp_path, tiny_suite,
                                                                                      monkeypatch):
    import pandas as pd

    from i2vbench import runner

    run = tmp_path / "r"
    assert cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL,
               "--metrics", "temporal_flickering")[0] == 0
    assert pd.read_csv(run / "leaderboard.csv").loc[0, "scored"] == 3
    score = runner._score
    calls = []

    def stopped_after_one_batch(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return score(*args, **kwargs)

    monkeypatch.setattr(runner, "_score", stopped_after_one_batch)
    code, _, _ = cli("--no-progress", "evaluate", run, "--metrics", "temporal_flickering", "--recompute",
                     "--eval-batch-size", "1")
    assert code == 130
    assert pd.read_csv(run / "leaderboard.csv").loc[0, "scored"] == 1  # the store's state, not the old numbers
    code, out, _ = cli("compare", run)
    assert code == 0 and "static: values over fewer than its 3 videos (videos scored: temporal_flickering 1)" in out
    assert cli("report", run, "-o", tmp_path / "report.html")[0] == 0
    assert "values over fewer than its 3 videos" in (tmp_path / "report.html").read_text()


def test_a_leaderboard_left_behind_by_a_killed_process_is_brought_up_to_date_by_the_next(cli, tmp_path, tiny_suite):
    import pandas as pd

    run = tmp_path / "r"
    assert cli("--no-progress", "run", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL,
               "--metrics", "temporal_flickering")[0] == 0
    with RunStore(run) as store:  # what a generate killed right after re-recording case0's video leaves
        row = store.videos()["case0"]
        store.record_video("case0", "pattern", "p", 0, row["path"], row["sha256"], 8.0, 6, 64, 64)
    assert pd.read_csv(run / "leaderboard.csv").loc[0, "scored"] == 3  # stale
    code, out, _ = cli("--no-progress", "generate", "--model", "static", "--suite", tiny_suite, "--out", run, *SMALL)
    assert code == 0 and "generate: 0 done, 3 already done" in out  # this process changes nothing itself
    assert pd.read_csv(run / "leaderboard.csv").loc[0, "scored"] == 2


def _sees_no_run_at_first(store: RunStore, monkeypatch) -> None:
    """``store`` finds no run recorded on its first look, as a process that looked just before another one
    recorded its run would."""
    looks = []

    def fingerprint():
        looks.append(1)
        return None if len(looks) == 1 else RunStore.fingerprint(store)

    monkeypatch.setattr(store, "fingerprint", fingerprint)


def test_two_processes_creating_one_run_folder_at_once_agree_or_are_refused_cleanly(tmp_path, monkeypatch):
    config = {"generation": {"model": "static", "settings": {"num_frames": 6}}}
    other = {"generation": {"model": "static", "settings": {"num_frames": 8}}}
    with RunStore(tmp_path / "a") as first, RunStore(tmp_path / "a") as second:
        _sees_no_run_at_first(second, monkeypatch)
        first.init_run(config, "same")
        second.init_run(config, "same")  # no UNIQUE-constraint crash: the same run
        assert second.config() == config
    with RunStore(tmp_path / "b") as first, RunStore(tmp_path / "b") as second:
        _sees_no_run_at_first(second, monkeypatch)
        first.init_run(config, "one")
        with pytest.raises(ConfigError, match="holds a run made with a different configuration"):
            second.init_run(other, "two")
