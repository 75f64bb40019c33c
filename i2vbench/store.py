"""The run store: one SQLite file per run folder holding configuration, case status, videos and scores.

Plain tables, readable with any SQLite client::

    run(id=1, config TEXT json, fingerprint TEXT, created_at)
    cases(case_id PK, category, prompt, seed, status 'done'|'failed', error, updated_at)
    videos(case_id PK, path, sha256, fps, num_frames, height, width, created_at,
           gen_seconds: the adapter's time for the video (its batch's time over the batch size; NULL for videos
           made elsewhere))
    metrics(metric PK, metric_group, status 'ran'|'skipped', reason, specs TEXT json, updated_at,
            precision 'fp32'|'bf16' of the scores)
    scores(case_id, metric, score, value, PK(case_id, score))
    frame_scores(case_id, score, frame, value, PK(case_id, score, frame))
    metric_errors(case_id, metric, error, PK(case_id, metric))
    requested(case_id PK): every case a generation stage was asked for (the suite, or its --cases/--categories
            selection), so that a run stopped part-way is told apart from a finished one

Every write is one transaction, and primary keys make a row impossible to write twice: a run that is
killed and started again finds exactly the rows that were committed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pandas as pd

from .errors import ConfigError, StorageError

STORE_NAME = "run.sqlite"
#: (table, column, type) added since the first schema; older stores gain them when opened
_ADDED_COLUMNS = (("metrics", "precision", "TEXT"), ("videos", "gen_seconds", "REAL"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    config TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY,
    category TEXT,
    prompt TEXT,
    seed INTEGER,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS videos (
    case_id TEXT PRIMARY KEY REFERENCES cases(case_id),
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    fps REAL,
    num_frames INTEGER,
    height INTEGER,
    width INTEGER,
    created_at REAL NOT NULL,
    gen_seconds REAL
);
CREATE TABLE IF NOT EXISTS metrics (
    metric TEXT PRIMARY KEY,
    metric_group TEXT,
    status TEXT NOT NULL CHECK (status IN ('ran', 'skipped')),
    reason TEXT,
    specs TEXT NOT NULL,
    updated_at REAL NOT NULL,
    precision TEXT
);
CREATE TABLE IF NOT EXISTS scores (
    case_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    score TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (case_id, score)
);
CREATE TABLE IF NOT EXISTS frame_scores (
    case_id TEXT NOT NULL,
    score TEXT NOT NULL,
    frame INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (case_id, score, frame)
);
CREATE TABLE IF NOT EXISTS metric_errors (
    case_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (case_id, metric)
);
CREATE TABLE IF NOT EXISTS requested (
    case_id TEXT PRIMARY KEY
);
"""
_TABLES = ("run", "cases", "videos", "metrics", "scores", "frame_scores", "metric_errors", "requested")


#: parts of a run's configuration that older stores lack: ``weights``, the digest of the model's weights
_RECORDED_SINCE = ("weights",)


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (``settings.width``)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {_shown(a)} in the folder, {_shown(b)} now")
    return out


def _shown(value: object) -> str:
    text = "unset" if value is None else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _existing_store(run_dir: str | Path) -> Path:
    """The store file of a run folder that must already hold one (evaluation, reports, status)."""
    path = Path(run_dir) / STORE_NAME
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no {STORE_NAME} in it); make one with 'i2vbench run'")
    return path


class RunStore:
    """Access to one run folder's SQLite store."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / STORE_NAME
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the run store in {self.run_dir} ({exc}); choose a writable folder with --out"
            ) from exc
        try:
            self.conn.executescript(_SCHEMA)
            self._migrate()
            self.conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            self.conn.close()
            raise ConfigError(
                f"cannot open the run store {self.path} ({exc}); choose a writable folder with --out"
            ) from exc
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            self.conn.close()
            raise ConfigError(f"{self.path} is not a readable run store ({exc}): it is damaged or is another file; "
                              "move it away and run again to start afresh") from exc

    def _migrate(self) -> None:
        """Bring a store written by an earlier version up to the current schema. A current store is only read;
        an old one is altered in a write transaction that checks again, so processes opening it together
        migrate it once."""
        def missing(cur: sqlite3.Cursor) -> list[tuple[str, str, str]]:
            return [(table, column, kind) for table, column, kind in _ADDED_COLUMNS
                    if column not in {row[1] for row in cur.execute(f"PRAGMA table_info({table})")}]

        if not missing(self.conn.cursor()):
            return
        with self._transaction() as cur:
            for table, column, kind in missing(cur):
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    @classmethod
    def open_existing(cls, run_dir: str | Path) -> "RunStore":
        """Open a run folder that must already hold a store (for evaluation and reports)."""
        _existing_store(run_dir)
        return cls(run_dir)

    @classmethod
    def open_readonly(cls, run_dir: str | Path) -> "RunStore":
        """Open a run folder's store for reading only (reports, status): no row or schema is written (a store from
        an earlier version is read as it is), so runs on read-only storage, or shared with colleagues, can be read;
        SQLite itself keeps its shared-memory files (``-shm``, ``-wal``) beside the store where it can. Tables and
        columns an older store lacks read as empty."""
        path = _existing_store(run_dir)
        store = cls.__new__(cls)
        store.run_dir, store.path = Path(run_dir), path
        uri = path.resolve().as_uri()
        try:
            # mode=ro needs the write-ahead log's shared-memory file beside a WAL store. On storage where it cannot
            # be made, immutable=1 reads the file as it is: right only when no committed rows wait in the log
            # (a run that closed normally leaves it empty), so anything else is reported, not read half.
            def connect(options: str) -> sqlite3.Connection:
                conn = sqlite3.connect(f"{uri}?{options}", uri=True, timeout=60, isolation_level=None)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn

            try:
                store.conn = connect("mode=ro")
            except sqlite3.OperationalError as exc:
                log = path.with_name(path.name + "-wal")
                if "unable to open" not in str(exc) or (log.exists() and log.stat().st_size > 0):
                    raise
                store.conn = connect("immutable=1")
        except sqlite3.OperationalError as exc:
            raise ConfigError(f"cannot read the run store {path} ({exc})") from exc
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            raise ConfigError(f"{path} is not a readable run store ({exc}): it is damaged or is another file") from exc
        return store

    def _has(self, table: str, column: str | None = None) -> bool:
        """Whether the store holds ``table`` (and its ``column``): a store from an earlier version, opened read-only,
        may lack them."""
        columns = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
        return bool(columns) and (column is None or column in columns)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction (all or nothing), taken at once so that other processes wait for it. A store that
        cannot be written (full disk, read-only, held by another process past the timeout) stops the run."""
        cur = self.conn.cursor()
        try:  # BEGIN inside: an interrupt just after it still rolls back, leaving no transaction open
            cur.execute("BEGIN IMMEDIATE")
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:  # not when the interrupt came after COMMIT had already returned
                cur.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise self._write_error(exc) from exc
            raise

    def _write_error(self, exc: sqlite3.OperationalError) -> StorageError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            why = ("another process kept it locked for over a minute (a second run on this folder? processes of "
                   "one torchrun share a run; separate runs need separate --out folders)")
        elif "full" in text:
            why = "the disk is full; free space and run the same command again to resume"
        else:
            why = "check that the folder is writable, then run the same command again to resume"
        return StorageError(f"cannot write the run store {self.path} ({text}): {why}")

    def _tx(self, statements: Iterable[tuple[str, Sequence]]) -> None:
        """Run statements in one transaction."""
        with self._transaction() as cur:
            for sql, params in statements:
                cur.execute(sql, params)

    # run configuration -------------------------------------------------------------------------
    def config(self) -> dict | None:
        row = self.conn.execute("SELECT config FROM run WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def fingerprint(self) -> str | None:
        row = self.conn.execute("SELECT fingerprint FROM run WHERE id = 1").fetchone()
        return row[0] if row else None

    def init_run(self, config: dict, fingerprint: str) -> None:
        """Record the configuration of a new run; refuse a folder holding a different one."""
        existing = self.fingerprint()
        if existing is None:  # another process may insert first (two runs started at once): then it is compared
            self._tx([("INSERT OR IGNORE INTO run VALUES (1, ?, ?, ?)",
                       (json.dumps(config, sort_keys=True), fingerprint, time.time()))])
            existing = self.fingerprint()
        if existing != fingerprint:
            old = (self.config() or {}).get("generation", {})
            new = json.loads(json.dumps(config.get("generation", {}), default=str))
            # a store from before a part of the configuration was recorded does not differ in that part
            diff = _differences(old, {k: v for k, v in new.items() if k in old or k not in _RECORDED_SINCE})
            if not diff:  # equal values written differently (fps 8 in one card, 8.0 in another): the same videos
                return
            # A folder with nothing in it yet is still refused: its run may be loading its model right now.
            lost = ("--force to discard it and start again" if self._holds_results() else
                    "--force to start again: it holds no video or score yet, so nothing is lost (unless that run "
                    "is still going, loading its model)")
            raise ConfigError(
                f"{self.run_dir} holds a run made with a different configuration (differs in: {'; '.join(diff)}); "
                f"use another --out folder, or {lost}"
            )

    def _holds_results(self) -> bool:
        """Whether any video or score is recorded (what a configuration change would throw away)."""
        return any(self.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                   for table in ("videos", "scores", "frame_scores", "metric_errors"))

    def reset(self) -> None:
        """Delete every row (for --force)."""
        self._tx([(f"DELETE FROM {t}", ()) for t in reversed(_TABLES)])  # rows that name a case before the case

    def request(self, case_ids: Iterable[str]) -> None:
        """Record cases a generation stage was asked for (a later stage may ask for more). Nothing new, nothing
        written: a finished run on storage it cannot write to still runs again as a no-op."""
        new = set(case_ids) - set(self.requested() or ())
        if new:
            self._tx([("INSERT OR IGNORE INTO requested VALUES (?)", (cid,)) for cid in sorted(new)])

    def requested(self) -> list[str] | None:
        """The cases generation was asked for, sorted; ``None`` for a store from before they were recorded."""
        if not self._has("requested"):
            return None
        ids = [row[0] for row in self.conn.execute("SELECT case_id FROM requested ORDER BY case_id")]
        return ids or None

    # cases and videos --------------------------------------------------------------------------
    def case_status(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT case_id, status FROM cases"))

    def record_video(self, case_id: str, category: str, prompt: str, seed: int, path: str, sha256: str,
                     fps: float, num_frames: int, height: int, width: int, gen_seconds: float | None = None) -> None:
        now = time.time()
        self._tx([*self._forget_scores(case_id),  # a new video makes the case's old scores meaningless
            ("INSERT OR REPLACE INTO cases VALUES (?, ?, ?, ?, 'done', NULL, ?)", (case_id, category, prompt, seed, now)),
            ("INSERT OR REPLACE INTO videos (case_id, path, sha256, fps, num_frames, height, width, created_at, "
             "gen_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (case_id, path, sha256, fps, num_frames, height, width, now, gen_seconds)),
        ])

    def video_changed(self, case_id: str, sha256: str, fps: float | None, num_frames: int | None,
                      height: int | None, width: int | None) -> None:
        """The file of a recorded video now holds other bytes: record them and what the file now is, and forget
        the case's scores."""
        self._tx([*self._forget_scores(case_id),
                  ("UPDATE videos SET sha256 = ?, fps = ?, num_frames = ?, height = ?, width = ?, created_at = ? "
                   "WHERE case_id = ?", (sha256, fps, num_frames, height, width, time.time(), case_id))])

    @staticmethod
    def _forget_scores(case_id: str) -> list[tuple[str, Sequence]]:
        return [(f"DELETE FROM {table} WHERE case_id = ?", (case_id,)) for table in ("frame_scores", "scores", "metric_errors")]

    def record_failure(self, case_id: str, category: str, prompt: str, seed: int, error: str) -> None:
        self._tx([*self._forget_scores(case_id),  # scores of a video that is gone must not count any more
            ("DELETE FROM videos WHERE case_id = ?", (case_id,)),
            ("INSERT OR REPLACE INTO cases VALUES (?, ?, ?, ?, 'failed', ?, ?)", (case_id, category, prompt, seed, error, time.time())),
        ])

    def videos(self) -> dict[str, dict]:
        cur = self.conn.execute("SELECT case_id, path, sha256, fps, num_frames, height, width FROM videos ORDER BY case_id")
        cols = [c[0] for c in cur.description]
        return {row[0]: dict(zip(cols, row)) for row in cur}

    # metrics and scores ------------------------------------------------------------------------
    def set_metric_status(self, metric: str, group: str, status: str, specs: list[dict], reason: str | None = None,
                          precision: str | None = None) -> None:
        """Record that a metric ran (in which ``precision``) or was skipped (with why), and how its scores
        aggregate (``specs``); a row that already says so is left as it is."""
        if self.metric_info().get(metric) == {"group": group, "status": status, "reason": reason,
                                               "specs": json.loads(json.dumps(specs)), "precision": precision}:
            return
        self._tx([("INSERT OR REPLACE INTO metrics (metric, metric_group, status, reason, specs, updated_at, precision) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (metric, group, status, reason, json.dumps(specs), time.time(), precision))])

    def metric_info(self) -> dict[str, dict]:
        """metric -> {group, status, reason, specs, precision}."""
        precision = "precision" if self._has("metrics", "precision") else "NULL"
        cur = self.conn.execute(f"SELECT metric, metric_group, status, reason, specs, {precision} FROM metrics "
                                "ORDER BY metric")
        return {m: {"group": g, "status": s, "reason": r, "specs": json.loads(sp), "precision": p}
                for m, g, s, r, sp, p in cur}

    def has_scores(self, metric: str) -> bool:
        """Whether any video holds a score of ``metric``."""
        return self.conn.execute("SELECT 1 FROM scores WHERE metric = ? LIMIT 1", (metric,)).fetchone() is not None

    def scored_cases(self, metric: str, score_names: Sequence[str]) -> set[str]:
        """Cases holding a value of every one of ``metric``'s scores. Cases with a recorded error are not
        among them, so a later run tries them again (the error may have been a passing one)."""
        marks = ", ".join("?" * len(score_names))
        cur = self.conn.execute(
            f"SELECT case_id FROM scores WHERE metric = ? AND score IN ({marks}) "
            "GROUP BY case_id HAVING COUNT(DISTINCT score) = ?",
            (metric, *score_names, len(score_names)),
        )
        return {r[0] for r in cur}

    def score_owners(self) -> dict[str, str]:
        """score name -> the metric that wrote it."""
        return dict(self.conn.execute("SELECT DISTINCT score, metric FROM scores"))

    def record_scores(self, metric: str, case_id: str, values: dict[str, float],
                      frame_values: dict[str, Sequence[float]] | None = None) -> None:
        """Write one video's scores for one metric (and its per-frame values) in one transaction."""
        stmts: list[tuple[str, Sequence]] = [("DELETE FROM metric_errors WHERE case_id = ? AND metric = ?", (case_id, metric))]
        stmts += [("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", (case_id, metric, k, float(v))) for k, v in values.items()]
        for score, frames in (frame_values or {}).items():
            stmts += [("INSERT OR REPLACE INTO frame_scores VALUES (?, ?, ?, ?)", (case_id, score, i, float(v)))
                      for i, v in enumerate(frames)]
        self._tx(stmts)

    def record_metric_error(self, metric: str, case_id: str, error: str) -> None:
        self._tx([("INSERT OR REPLACE INTO metric_errors VALUES (?, ?, ?)", (case_id, metric, error))])

    def clear_metric(self, metric: str) -> None:
        """Forget every result of one metric (to recompute it)."""
        self._tx([
            ("DELETE FROM frame_scores WHERE score IN (SELECT DISTINCT score FROM scores WHERE metric = ?)", (metric,)),
            ("DELETE FROM scores WHERE metric = ?", (metric,)),
            ("DELETE FROM metric_errors WHERE metric = ?", (metric,)),
            ("DELETE FROM metrics WHERE metric = ?", (metric,)),
        ])

    # export ------------------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """One table as a DataFrame (``cases``, ``videos``, ``scores``, ``frame_scores``, ...)."""
        if name not in _TABLES:
            raise ConfigError(f"unknown store table {name!r}")
        return pd.read_sql_query(f"SELECT * FROM {name}", self.conn)
