"""One run shared by several processes (torchrun): each takes its own cases, together they make exactly the
videos and scores one process would, rank 0 alone discards the folder or writes the leaderboard, and a
misconfigured shared run stops with its error instead of waiting forever."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest
from helpers import REPO, make_suite

from i2vbench.errors import ConfigError
from i2vbench.shard import Shard, current_shard

SMALL = ["--metrics", "temporal_flickering", "--set", "num_frames=4", "--set", "height=32", "--set", "width=32"]


def test_shards_partition_the_cases_in_a_stable_order():
    cases = [f"c{i}" for i in range(7)]
    parts = [Shard(r, 3).take(cases) for r in range(3)]
    assert parts == [["c0", "c3", "c6"], ["c1", "c4"], ["c2", "c5"]]
    assert Shard().take(cases) == cases and Shard().label() == "" and Shard(1, 3).label() == "[rank 1/3] "


def test_a_process_reads_its_shard_from_torchruns_environment(monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert current_shard() == Shard(2, 4)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert current_shard() == Shard(0, 1)


@pytest.mark.parametrize("rank, world", [(2, 2), (-1, 2), (0, 0)])
def test_an_impossible_rank_is_refused(rank, world):
    with pytest.raises(ConfigError, match="RANK and WORLD_SIZE"):
        Shard(rank, world)


def torchrun(cwd, *args: str, processes: int = 2, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "-m", "i2vbench",
               "--no-progress", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def table(run, sql):
    with sqlite3.connect(run / "run.sqlite") as conn:
        return sorted(conn.execute(sql).fetchall())


def test_two_processes_make_what_one_makes(cli, tmp_path):
    suite = make_suite(tmp_path / "suite", n=5)
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    assert cli("--no-progress", "run", "--model", "static", "--suite", suite, "--out", alone, *SMALL)[0] == 0

    done = torchrun(tmp_path, "run", "--model", "static", "--suite", suite, "--out", shared, *SMALL)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[rank 0/2] generate: 3 done" in out and "[rank 1/2] generate: 2 done" in out
    assert "[rank 0/2] evaluate: 3 done" in out and "[rank 1/2] evaluate: 2 done" in out
    assert out.count("leaderboard:") == 1 and out.count("run folder:") == 1
    for sql in ("SELECT case_id, sha256 FROM videos", "SELECT case_id, score, value FROM scores"):
        assert table(shared, sql) == table(alone, sql)
    board = pd.read_csv(shared / "leaderboard.csv").loc[0]
    assert (board["videos"], board["scored"]) == (5, 5)

    again = torchrun(tmp_path, "run", "--model", "static", "--suite", suite, "--out", shared, *SMALL)
    assert again.returncode == 0, again.stderr
    assert "[rank 1/2] generate: 0 done, 2 already done" in again.stdout

    forced = torchrun(tmp_path, "run", "--model", "static", "--suite", suite, "--out", shared, *SMALL, "--force",
                      "--set", "fps=4")
    assert forced.returncode == 0, forced.stderr
    assert "[rank 0/2] generate: 3 done, 0 already done" in forced.stdout
    assert len(table(shared, "SELECT case_id FROM videos")) == 5


def test_a_shared_run_on_a_foreign_folder_stops_with_the_error(cli, tmp_path):
    suite = make_suite(tmp_path / "suite", n=3)
    run = tmp_path / "run"
    assert cli("--no-progress", "generate", "--model", "static", "--suite", suite, "--out", run, *SMALL[2:])[0] == 0
    failed = torchrun(tmp_path, "generate", "--model", "static", "--suite", suite, "--out", run, "--seed", "7", *SMALL[2:])
    assert failed.returncode != 0
    assert "different configuration" in failed.stderr and "seed" in failed.stderr


def test_a_world_without_ranks_or_across_machines_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ConfigError, match="RANK is not set"):
        current_shard()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    with pytest.raises(ConfigError, match="several machines"):
        current_shard()


def test_each_process_of_a_shared_run_takes_its_own_gpu(monkeypatch):
    import torch

    from i2vbench.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda") == "cuda:3" == resolve_device("auto")
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cpu") == "cpu"
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device("cuda") == "cuda"


def test_a_gpu_this_machine_lacks_is_refused_at_once(monkeypatch):
    import torch

    from i2vbench.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match="has 2 CUDA device"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match="no usable CUDA GPU"):
        resolve_device("cuda")


def test_a_process_whose_cases_failed_waits_for_the_others_before_it_exits(tmp_path):
    suite = make_suite(tmp_path / "suite", n=5)
    card = tmp_path / "slow.yaml"  # rank 1's cases fail at once, while rank 0's take a while
    card.write_text(json.dumps({"name": "slow", "adapter": "plugins:SlowOnRankZero", "settings": {}}))
    run = tmp_path / "run"
    env = {"PYTHONPATH": str(REPO / "tests"), "SLOW_STATIC_SECONDS": "1.5"}
    finished = torchrun(tmp_path, "generate", "--model", card, "--suite", suite, "--out", run, *SMALL[2:], env=env)
    assert finished.returncode != 0 and "[rank 1/2] generate: 0 done, 0 already done, 2 failed" in finished.stdout
    assert "[rank 0/2] generate: 3 done" in finished.stdout and "terminated" not in finished.stderr
    assert table(run, "SELECT status, COUNT(*) FROM cases GROUP BY status") == [("done", 3), ("failed", 2)]
