"""Generate and evaluate: batches cases through an adapter, writes videos and rows, scores with metrics.

Both stages resume: they skip what the store already holds, write each case in one transaction, and
isolate failures (a bad case is recorded with its reason and the run goes on). Generated videos are encoded on
worker threads while the adapter makes the next batch (:class:`VideoWriter`).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from tqdm.auto import tqdm

from . import __version__, weights
from .adapters.base import Adapter
from .errors import AdapterError, ConfigError, I2VBenchError, ModelLoadError, NetworkLoadError, VideoError, WeightsError
from .metrics import PRECISIONS, EvalItem, FeatureCache, Metric, MetricResult, get_metric, metric_names
from .registry import ADAPTER_GROUP, ModelCard, load_plugin
from .shard import Shard
from .store import RunStore
from .suite import Case, Suite
from .video import Video, file_sha256, probe_video, read_video, remove_stale_temps, write_text_if_changed, write_video

VIDEO_DIR = "videos"


#: what an adapter found in the whole suite before generating (``Adapter.prepare``), in the run folder
ADAPTER_REPORT = "adapter_report.json"
#: the leaderboard each run folder holds (and its per-category table beside it)
RUN_LEADERBOARD = "leaderboard.csv"
RUN_LEADERBOARD_BY_CATEGORY = "leaderboard_by_category.csv"


def case_seed(run_seed: int, case_id: str) -> int:
    """A case's seed from the run seed and the case id: stable across runs, batches and machines."""
    digest = hashlib.sha256(f"{run_seed}:{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def environment_info() -> dict[str, Any]:
    """Package versions and the git revision of this checkout, recorded with every run."""
    versions = {"i2vbench": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for module in ("torch", "torchvision", "numpy", "av", "transformers", "open_clip", "diffusers"):
        mod = sys.modules.get(module)
        if mod is None:
            try:
                mod = __import__(module)
            except Exception:  # an optional package may be absent or broken; record that
                versions[module] = None
                continue
        versions[module] = getattr(mod, "__version__", None)
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    return {"versions": versions, "git_revision": rev}


@dataclass
class RunPlan:
    """Everything that defines a run's videos; its fingerprint guards the run folder."""

    card: ModelCard
    settings: dict[str, Any]
    suite: Suite
    seed: int
    runtime_keys: tuple[str, ...] = ()
    #: the adapter's :meth:`~i2vbench.adapters.base.Adapter.weights_identity` (filled by :func:`make_adapter`)
    weights: dict[str, str] = field(default_factory=dict)

    def generation_config(self) -> dict[str, Any]:
        """What the videos depend on (runtime-only settings such as the device or chunk sizes excluded)."""
        config = {
            "model": self.card.name,
            "adapter": self.card.adapter,
            "settings": {k: v for k, v in self.settings.items() if k not in self.runtime_keys},
            "seed": self.seed,
            "suite": self.suite.name,
            "suite_manifest_sha256": file_sha256(self.suite.manifest),
        }
        if self.weights:  # only where there are weights, so that the other runs' fingerprints stay as they were
            config["weights"] = self.weights
        return config

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.generation_config(), sort_keys=True, default=str).encode()).hexdigest()

    def config(self) -> dict[str, Any]:
        runtime = {k: v for k, v in self.settings.items() if k in self.runtime_keys}
        return {"generation": self.generation_config(), "runtime": runtime, "suite_manifest": str(self.suite.manifest),
                "card": self.card.as_dict(), **environment_info()}


def adapter_class(card: ModelCard) -> type[Adapter]:
    return load_plugin(ADAPTER_GROUP, card.adapter, "adapter", Adapter)


def make_plan(card: ModelCard, overrides: dict[str, Any], suite: Suite, seed: int) -> RunPlan:
    """Resolve the card's settings with ``--set`` overrides (unknown keys are refused)."""
    cls = adapter_class(card)
    label = f"model {card.name!r}" + (f" (card {card.path})" if card.path else "")
    settings = cls.resolve_settings({**card.settings, **overrides}, label)
    return RunPlan(card=card, settings=settings, suite=suite, seed=seed, runtime_keys=tuple(cls.runtime_settings))


def open_run(run_dir: Path, plan: RunPlan, force: bool = False, shard: Shard = Shard(),
             keep: Sequence[Path] = ()) -> RunStore:
    """Open (or create) the run folder for ``plan``; a folder made by another plan needs ``force``, which never
    deletes a file inside ``keep`` (the folders the new plan reads its videos from). When processes share the
    run, rank 0 creates (or discards) it and the others open it after."""
    if shard.is_main:
        store = RunStore(run_dir)
        remove_stale_temps(run_dir / VIDEO_DIR)
        if force:  # delete only the files this run wrote: never a user's folder that happens to be there
            kept = [Path(folder).resolve() for folder in keep]
            for row in store.videos().values():
                path = (run_dir / row["path"]).resolve()
                if not Path(row["path"]).is_absolute() and not any(path.is_relative_to(k) for k in kept):
                    path.unlink(missing_ok=True)
            store.reset()
            for derived in (ADAPTER_REPORT, RUN_LEADERBOARD, RUN_LEADERBOARD_BY_CATEGORY):
                (run_dir / derived).unlink(missing_ok=True)
        store.init_run(plan.config(), plan.fingerprint())
    shard.barrier()
    if not shard.is_main:
        store = RunStore(run_dir)
        store.init_run(plan.config(), plan.fingerprint())
    return store


@dataclass
class StageSummary:
    """What one stage did: counts, and the reasons of failures."""

    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: cases whose video has one value in every pixel of every frame (what NaN frames cast to uint8 look like)
    uniform: list[str] = field(default_factory=list)


def make_adapter(plan: RunPlan) -> Adapter:
    """The plan's adapter (which checks its settings, paths and weights before anything is written); the weights
    it found become part of the plan."""
    cls = adapter_class(plan.card)
    try:
        adapter = cls(**plan.settings)
    except I2VBenchError:
        raise
    except Exception as exc:  # an abstract class, a setting the adapter's own code trips over
        raise ConfigError(f"model {plan.card.name!r}: adapter {plan.card.adapter!r} could not be set up: "
                          f"{type(exc).__name__}: {exc}") from exc
    plan.weights = adapter.weights_identity()
    return adapter


def generate(store: RunStore, plan: RunPlan, batch_size: int | None = None, progress: bool = True,
             shard: Shard = Shard(), adapter: Adapter | None = None) -> StageSummary:
    """Make the videos of this process's shard that are missing (or failed before) and record them, with
    ``adapter`` (default: a new one from the plan)."""
    summary = StageSummary()
    adapter = adapter or make_adapter(plan)
    try:
        if shard.is_main:  # what was asked for, so that reports can tell a run stopped part-way from a finished one
            store.request(c.id for c in plan.suite)
        report = adapter.prepare(list(plan.suite))
        if report is not None and shard.is_main:
            write_text_if_changed(store.run_dir / ADAPTER_REPORT, json.dumps(report, indent=2))
            summary.notes.append(_describe_report(report, store.run_dir))
        status, videos = store.case_status(), store.videos()
        mine = shard.take(list(plan.suite))
        todo = [c for c in mine if status.get(c.id) != "done" or not _video_current(store, videos.get(c.id))
                or _source_moved(adapter, c, videos[c.id])]
        summary.skipped = len(mine) - len(todo)
        if todo:
            _load(adapter, plan)
        size = max(1, batch_size or adapter.default_batch_size)
        bar = tqdm(total=len(todo), desc=f"{shard.label()}generate {plan.card.name}", unit="video",
                   disable=not progress or not shard.is_main)
        with VideoWriter(store, summary) as writer:
            while todo:
                batch, todo = todo[:size], todo[size:]
                queued = len(writer.pending)
                too_big = _generate_batch(store, plan, adapter, batch, summary, writer)
                writer.record(leave=len(writer.pending) - queued)  # the batch before was written meanwhile
                bar.update(len(batch))
                if too_big:
                    size, note = _smaller_batches(len(batch), too_big, batch_size, size)
                    if note not in summary.notes:
                        summary.notes.append(note)
        bar.close()
    finally:
        adapter.close()
    if summary.uniform:
        summary.notes.append(f"{len(summary.uniform)} video(s) hold a single value in every pixel of every frame "
                             f"({_some(summary.uniform)}): "
                             "NaN frames cast to uint8 look so; they are scored as they are")
    if shard.is_main and (note := _mixed_formats(store.videos())):
        summary.notes.append(note)
    return summary


def _smaller_batches(failed: int, error: str, fixed: int | None, size: int) -> tuple[int, str]:
    """The batch size after a batch of ``failed`` cases that succeeded only case by case, and the note that says
    so: half of it (results do not depend on the batch), unless ``--batch-size`` (``fixed``) set the size."""
    said = f"a batch of {failed} failed ({error}) while each of its cases alone succeeded"
    if fixed:
        return size, f"{said}: a --batch-size below {fixed} would spare these retries"
    size = max(1, failed // 2)
    return size, f"{said}: later batches hold {size} (--batch-size sets it)"


def _some(names: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` names, comma-separated, with "..." where there are more."""
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def _mixed_formats(videos: dict[str, dict]) -> str | None:
    """A note when the run's videos differ in size, length or frame rate (videos made elsewhere, say): the
    metrics score each as it is, so the run's numbers then mix formats."""
    by_format: dict[tuple, list[str]] = {}
    for cid, row in sorted(videos.items()):
        key = (row["width"], row["height"], row["num_frames"], row["fps"])
        if None not in key:  # a file that could not be probed is reported by the metrics that fail on it
            by_format.setdefault(key, []).append(cid)
    if len(by_format) < 2:
        return None
    parts = "; ".join(f"{len(ids)} {w}x{h}, {n} frames at {fps:g} fps ({_some(ids, 3)})"
                      for (w, h, n, fps), ids in sorted(by_format.items(), key=lambda item: -len(item[1])))
    return (f"the run's videos differ in format: {parts}. Each is scored as it is, so the run's values mix "
            "these formats")


def _load(adapter: Adapter, plan: RunPlan) -> None:
    """Load the model before the first batch: a model that cannot load fails the run once, with its reason."""
    try:
        adapter.load()
    except I2VBenchError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"model {plan.card.name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc


class VideoWriter:
    """Encodes and hashes generated videos on worker threads while the adapter makes the next batch (the GPU
    would otherwise idle while the host encodes), and records them in the store from the calling thread.

    Leaving the ``with`` block, however it is left (an error, Ctrl-C), waits for the videos being written and
    records them, so nothing finished is lost; a video leaves the queue only once it is recorded.
    """

    def __init__(self, store: RunStore, summary: StageSummary, workers: int | None = None) -> None:
        self.store, self.summary = store, summary
        self.pool = ThreadPoolExecutor(max_workers=workers or min(4, _usable_cpus()),
                                       thread_name_prefix="i2vbench-video")
        self.pending: list[tuple[Case, int, float | None, Future]] = []

    def submit(self, case: Case, seed: int, output: Video | str | Path, seconds: float | None = None) -> None:
        """Write ``output``; ``seconds``: the adapter's time for it, recorded with the video."""
        if isinstance(output, Video):  # the adapter may reuse its buffers for the next batch while this one is encoded
            output = Video(output.frames.copy(), output.fps)
        future = self.pool.submit(_write_output, self.store.run_dir, case, output)
        self.pending.append((case, seed, seconds, future))

    def record(self, leave: int = 0) -> None:
        """Wait for all but the newest ``leave`` videos and record them, oldest first; the first error of the
        disk (``OSError``) is raised once the others are recorded, any other fails only its case."""
        error = None
        while len(self.pending) > leave:
            case, seed, seconds, future = self.pending[0]
            try:
                stored, sha, fps, t, h, w = future.result()
            except OSError as exc:  # a full disk, a lost mount: no later video would fare better, so the run stops
                error = error or I2VBenchError(f"could not write the video of case {case.id!r}: {exc}")
            except Exception as exc:  # this video's own problem (e.g. frames the encoder refuses): this case fails
                reason = str(exc) if isinstance(exc, VideoError) else f"could not write its video: {type(exc).__name__}: {exc}"
                self.store.record_failure(case.id, case.category, case.prompt, seed, reason)
                self.summary.failed[case.id] = reason
            else:
                self.store.record_video(case.id, case.category, case.prompt, seed, stored, sha, fps, t, h, w, seconds)
                self.summary.done += 1
            self.pending.pop(0)
        if error is not None:
            raise error

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        interrupted = None
        try:
            while True:
                try:
                    self.record()
                    break
                except KeyboardInterrupt as stop:
                    if interrupted is not None:  # asked twice: leave the rest unrecorded (made again next time)
                        raise
                    interrupted = stop
                    print(f"stopping: recording the {len(self.pending)} video(s) being written "
                          "(interrupt again to abandon them)", file=sys.stderr)
        except Exception as error:
            if exc_type is None and interrupted is None:
                raise
            # the run is stopping for another reason, which stays the one reported
            print(f"also: {error}", file=sys.stderr)
        finally:
            self.pool.shutdown(cancel_futures=True)
        if interrupted is not None and exc_type is None:
            raise interrupted


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity, where the platform tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _write_output(run_dir: Path, case: Case, out: Video | str | Path) -> tuple:
    """Write a generated video (or take a video made elsewhere) and hash it: what the store records of it."""
    if isinstance(out, Video):
        path = run_dir / VIDEO_DIR / f"{case.id}.mp4"
        write_video(out, path)
        h, w = (side + side % 2 for side in out.size)  # the file holds even sizes (yuv420p)
        return str(path.relative_to(run_dir)), _video_sha(path), out.fps, out.num_frames, h, w
    path = Path(out).resolve()
    try:
        sha = _video_sha(path)
    except OSError as exc:  # this file's problem (gone since the folder was listed, no permission), not the disk's
        raise VideoError(f"cannot read {path}: {exc.strerror or exc}") from exc
    fps, t, h, w = probe_video(path) or (None, None, None, None)  # an unreadable file: decoding says why later
    return str(path), sha, fps, t, h, w


@functools.lru_cache(maxsize=4096)
def _sha_of(path: str, inode: int, mtime_ns: int, size: int) -> str:
    return file_sha256(Path(path))


def _video_sha(path: Path) -> str:
    """sha256 of a video file, hashed once per process for a given file state (recording a video made
    elsewhere and checking it again before scoring read it once)."""
    state = path.stat()
    return _sha_of(str(path), state.st_ino, state.st_mtime_ns, state.st_size)


def _changed_sha(row: dict) -> str | None:
    """The new sha256 of a video made elsewhere (an absolute path) whose bytes differ from the recorded ones;
    None for videos this run wrote, unchanged files and missing files (decoding reports those)."""
    path = Path(row["path"])
    if not path.is_absolute() or not path.is_file():
        return None
    sha = _video_sha(path)
    return sha if sha != row["sha256"] else None


def _rehash_external(store: RunStore, videos: dict[str, dict]) -> list[str]:
    """Record the videos made elsewhere whose bytes changed (which forgets their scores); their case ids."""
    changed = []
    for cid, row in videos.items():
        sha = _changed_sha(row)
        if sha is not None:
            store.video_changed(cid, sha, *(probe_video(Path(row["path"])) or (None, None, None, None)))
            row["sha256"] = sha
            changed.append(cid)
    return changed


def _video_current(store: RunStore, row: dict | None) -> bool:
    """Whether a done case's video is still the one recorded: a file that has gone missing, or that this run
    wrote and that has changed since (a crash before the disk had it, a copy cut short), is made again; a video
    made elsewhere whose bytes changed is recorded again, so its old scores go."""
    if row is None or not (path := video_path(store, row["path"])).is_file():
        return False
    if Path(row["path"]).is_absolute():
        return _changed_sha(row) is None
    return _video_sha(path) == row["sha256"]


def _source_moved(adapter: Adapter, case: Case, row: dict) -> bool:
    """Whether the adapter now takes another existing file for ``case`` than the one recorded (a better match
    was added to the folder): the case is then taken again, as a fresh run would take it."""
    source = adapter.source_of(case)
    return source is not None and str(source.resolve()) != row["path"]


def _describe_report(report: dict[str, Any], run_dir: Path) -> str:
    missing = report.get("cases_without_video") or []
    stray = report.get("videos_matching_no_case") or []
    line = f"matched {report.get('matched', 0)} videos"
    if missing:
        line += f"; {len(missing)} case(s) have no video ({_some(missing)})"
    if stray:
        line += f"; {len(stray)} video(s) match no case ({_some(stray)})"
    extra = report.get("extra_videos_ignored") or {}
    if extra:
        line += (f"; {sum(len(v['ignored']) for v in extra.values())} further sample(s) of {len(extra)} case(s) "
                 "not scored (the first file of each case is: the folder's own before subfolders', then by name)")
    unread = report.get("not_read") or {}
    if unread:
        line += (f"; {len(unread)} case(s) have only files or folders of a type that is not read "
                 f"({_some(list(unread))})")
    return line + f"; details in {run_dir / ADAPTER_REPORT}"


def _generate_batch(store: RunStore, plan: RunPlan, adapter: Adapter, batch: Sequence[Case], summary: StageSummary,
                    writer: VideoWriter) -> str | None:
    """Make and queue the batch's videos; a batch that fails is tried again case by case. Returns the batch's
    error when it failed as a whole but every case alone succeeded (too big for memory, most likely)."""
    seeds = tuple(case_seed(plan.seed, c.id) for c in batch)
    reason = None
    try:
        start = time.perf_counter()
        outputs = adapter.generate(tuple(batch), seeds=seeds)  # a tuple: an adapter cannot reorder the cases
        seconds = (time.perf_counter() - start) / len(batch)
        _check_outputs(plan, adapter, batch, outputs)
    except (ConfigError, WeightsError, AdapterError):  # the whole run is misconfigured: no case can succeed
        raise
    except Exception as exc:
        reason, outputs = f"{type(exc).__name__}: {exc}", None
    # Retried outside the except block: the failed call's frames, and the (GPU) memory they hold after an
    # out-of-memory error, are released before the cases are tried one by one.
    if reason is not None:
        if len(batch) > 1:
            _release_memory()
            failed = len(summary.failed)
            for case in batch:
                _generate_batch(store, plan, adapter, [case], summary, writer)
            return reason if len(summary.failed) == failed else None
        case = batch[0]
        store.record_failure(case.id, case.category, case.prompt, seeds[0], reason)
        summary.failed[case.id] = reason
        return None
    for case, seed, out in zip(batch, seeds, outputs):
        if isinstance(out, Video) and out.frames.min() == out.frames.max():
            summary.uniform.append(case.id)
        writer.submit(case, seed, out, seconds if isinstance(out, Video) else None)  # files made elsewhere: no time
    return None


def _check_outputs(plan: RunPlan, adapter: Adapter, batch: Sequence[Case], outputs: Any) -> None:
    """Refuse (``AdapterError``) outputs that break the adapter contract: one ``Video`` or file path per case, and
    videos of the frame count and size the settings ask for (else metrics would score, and reports would label
    with the settings, videos other than those asked for)."""
    name = plan.card.adapter
    if not isinstance(outputs, (list, tuple)) or len(outputs) != len(batch):
        got = f"{len(outputs)} outputs" if isinstance(outputs, (list, tuple)) else f"a {type(outputs).__name__}"
        raise AdapterError(f"adapter {name!r} returned {got} for {len(batch)} cases; generate returns a list with "
                           "one video per case, in order")
    want = tuple(plan.settings.get(k) for k in ("num_frames", "height", "width")) if adapter.makes_videos else None
    for case, out in zip(batch, outputs):
        if isinstance(out, (str, Path)):
            continue
        if not isinstance(out, Video):
            raise AdapterError(f"adapter {name!r} returned a {type(out).__name__} for case {case.id!r}; generate "
                               "returns an i2vbench.video.Video (uint8 frames [T, H, W, 3] and fps) or the path of "
                               "a video file per case")
        got = (out.num_frames, *out.size)
        if want is not None and got != want:
            raise AdapterError(
                f"adapter {name!r} made a video of {got[0]} frames of {got[1]}x{got[2]} (height x width) for case "
                f"{case.id!r}, but its settings ask for {want[0]} frames of {want[1]}x{want[2]}: an adapter makes "
                "exactly the length and size it is set to (the first-frame metrics compare frame 0 with the input "
                "image fitted to that size, e.g. by i2vbench.video.fit_image)")


def _release_memory() -> None:
    """After a failed batch: free what reference cycles with the exception hold (its frames, activations) and hand
    cached GPU memory back (only where torch is in use already), before its cases are tried one by one."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def resolve_metrics(names: Sequence[str] | None, device: str, precision: str = "auto") -> list[Metric]:
    """Instantiate the named metrics (all installed ones when ``names`` is empty) on ``device`` in
    ``precision`` (see :data:`.metrics.base.PRECISIONS`); two metrics may not report a score under the same name."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    metrics = [get_metric(n)(device=device, precision=precision) for n in dict.fromkeys(names or metric_names())]
    _check_score_names(metrics, {})
    return metrics


def _check_score_names(metrics: Sequence[Metric], owners: dict[str, str]) -> None:
    """Refuse a score name claimed by two metrics (``owners``: names already in the store)."""
    owners = dict(owners)
    for metric in metrics:
        for spec in metric.scores:
            other = owners.setdefault(spec.name, metric.name)
            if other != metric.name:
                raise ConfigError(f"metrics {other!r} and {metric.name!r} both report a score named {spec.name!r}; "
                                  "rename one of them (score names are columns of the run store)")


def _recorded_precision(metric: Metric, info: dict[str, dict]) -> str:
    """The precision of a metric's stored scores; a store from before precisions were recorded says nothing,
    which is fp32 for a metric that never runs in bf16 and unknown otherwise."""
    recorded = info.get(metric.name, {}).get("precision")
    return recorded or ("unknown" if metric.bf16_ok else "fp32")


def _check_precisions(store: RunStore, metrics: Sequence[Metric], info: dict[str, dict]) -> None:
    """Refuse to add scores in another precision to a metric's earlier scores: the two would be averaged."""
    clashes = [f"{m.name} (scored in {_recorded_precision(m, info)} precision, now {m.precision})" for m in metrics
               if _recorded_precision(m, info) != m.precision and store.has_scores(m.name)]
    if clashes:
        raise ConfigError(f"{store.run_dir} holds scores made in another precision: {'; '.join(clashes)}. Score in "
                          "the recorded precision (--precision), or pass --recompute to score every video again")


def video_path(store: RunStore, stored: str) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else store.run_dir / path


def evaluate(store: RunStore, suite: Suite, metrics: Sequence[Metric], batch_size: int = 16,
             recompute: bool = False, progress: bool = True, shard: Shard = Shard()) -> StageSummary:
    """Score every recorded video of this process's shard with every runnable metric that has not scored it
    yet. Rank 0 records the metrics' statuses (and clears them for ``recompute``) before any process scores."""
    summary = StageSummary()
    if batch_size < 1:
        raise ConfigError(f"the evaluation batch size must be at least 1; got {batch_size}")
    _check_score_names(metrics, store.score_owners())
    runnable = []
    info = store.metric_info()
    reasons = {m.name: m.unavailable_reason() for m in metrics}
    uncached: dict[str, str] = {}  # metric -> the weights it misses: said in short, with one fetch command for all
    if not recompute:
        _check_precisions(store, [m for m in metrics if reasons[m.name] is None], info)
    for metric in metrics:
        specs = [s.__dict__ for s in metric.scores]
        reason = reasons[metric.name]
        if reason and info.get(metric.name, {}).get("status") == "ran":
            summary.notes.append(f"{metric.name}: not run here ({reason}); its earlier scores are kept")
        elif reason:
            if shard.is_main:
                store.set_metric_status(metric.name, metric.group, "skipped", specs, reason)
            if isinstance(reason, weights.MissingWeights):
                uncached[metric.name] = reason.weights
                summary.notes.append(f"{metric.name}: skipped (weights '{reason.weights}' not cached)")
            else:
                summary.notes.append(f"{metric.name}: skipped ({reason})")
        else:
            if shard.is_main:
                if recompute:
                    store.clear_metric(metric.name)
                # recorded before scoring, so that scores of an interrupted evaluation already show in reports
                store.set_metric_status(metric.name, metric.group, "ran", specs, precision=metric.precision)
            runnable.append(metric)
            if note := metric.left_out():
                summary.notes.append(f"{metric.name}: {note}")
    if uncached:
        summary.notes.append(
            f"fetch what they need with 'i2vbench weights fetch --metrics {','.join(uncached)}' on a machine with "
            "internet access (then copy its caches, HF_HOME and I2VBENCH_CACHE, here); 'i2vbench status "
            f"{store.run_dir}' keeps each reason")
    shard.barrier()
    cases = {c.id: c for c in shard.take(list(suite))}
    videos = {cid: row for cid, row in store.videos().items() if cid in cases}
    changed = _rehash_external(store, videos)
    if changed:
        summary.notes.append(f"{len(changed)} video(s) made elsewhere changed since they were recorded and are "
                             f"scored again: {_some(changed)}")
    todo = {m.name: set(videos) - store.scored_cases(m.name, [s.name for s in m.scores]) for m in runnable}
    pending = sorted(set().union(*todo.values())) if todo else []
    summary.skipped = len(videos) - len(pending)
    bar = tqdm(total=len(pending), desc=f"{shard.label()}evaluate", unit="video", disable=not progress or not shard.is_main)
    for batch_ids, decoded in _prefetch(store, _batches_within(pending, videos, batch_size), videos):
        items = []
        for cid, video in zip(batch_ids, decoded):
            if isinstance(video, Exception):
                for m in runnable:
                    if cid in todo[m.name]:
                        store.record_metric_error(m.name, cid, str(video))
                summary.failed[cid] = str(video)
            else:
                items.append(EvalItem(cases[cid], video))
        cache = FeatureCache()
        for metric in runnable:
            mine = [it for it in items if it.case.id in todo[metric.name]]
            if mine:
                bar.set_postfix_str(metric.name, refresh=True)  # a batch of long videos takes a while per metric
                _score(store, metric, mine, cache, summary)
        summary.done += sum(1 for it in items if it.case.id not in summary.failed)  # the others: failed, with why
        bar.update(len(batch_ids))
    bar.close()
    return summary


def _score(store: RunStore, metric: Metric, items: list[EvalItem], cache: FeatureCache, summary: StageSummary) -> None:
    reason = None
    try:
        results = metric.run(items, cache)
        if len(results) != len(items):
            raise I2VBenchError(f"metric {metric.name} returned {len(results)} results for {len(items)} videos")
    except NetworkLoadError as exc:  # no video of this metric can be scored: said once, not retried per video
        note = f"{metric.name}: {exc}; none of its videos were scored"
        if note not in summary.notes:
            summary.notes.append(note)
        for item in items:
            store.record_metric_error(metric.name, item.case.id, str(exc))
            summary.failed.setdefault(item.case.id, f"{metric.name}: its network could not be loaded (see above)")
        return
    except Exception as exc:
        reason, results = f"{type(exc).__name__}: {exc}", None
    if reason is not None:  # a failing batch: score one by one (memory of the failed call released first)
        if len(items) > 1:
            _release_memory()
            for item in items:
                _score(store, metric, [item], FeatureCache(), summary)
            return
        results = [MetricResult(error=reason)]
    for item, result in zip(items, results):
        if not result.error and (bad := _non_finite(result)):
            result = MetricResult(error=f"non-finite value(s) for {bad}: no score is recorded for this video")
        if result.error:
            store.record_metric_error(metric.name, item.case.id, result.error)
            summary.failed.setdefault(item.case.id, f"{metric.name}: {result.error}")
        else:
            store.record_scores(metric.name, item.case.id, result.values, result.frame_values)


def _non_finite(result: MetricResult) -> str:
    """The names of the scores with a NaN or infinite value (SQLite would store NaN as NULL), comma-joined."""
    bad = [k for k, v in result.values.items() if not math.isfinite(v)]
    bad += [k for k, frames in (result.frame_values or {}).items() if not all(math.isfinite(v) for v in frames)]
    return ", ".join(dict.fromkeys(bad))


def _decode(store: RunStore, row: dict) -> Video | Exception:
    try:
        return read_video(video_path(store, row["path"]))
    except I2VBenchError as exc:
        return VideoError(f"{exc}; replace the file or re-encode it (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p "
                          "OUT.mp4), then run the same command again to score just that video")


#: most bytes of decoded frames in one evaluation batch (two are held: the one scored and the next one decoding):
#: 16 videos of 256x256x16 take 50 MB, but eight 720p videos of 121 frames would take 2.7 GB
DECODED_BYTES_PER_BATCH = 1 << 30


def _batches_within(ids: Sequence[str], videos: dict[str, dict], batch_size: int,
                    budget: int = DECODED_BYTES_PER_BATCH) -> list[list[str]]:
    """``ids`` in batches of at most ``batch_size`` videos and, but for a single larger video, ``budget`` bytes
    of decoded frames (from the sizes recorded with each video; an unprobed one counts as nothing)."""
    batches: list[list[str]] = []
    current, size = [], 0
    for cid in ids:
        row = videos[cid]
        nbytes = 3 * math.prod(row.get(k) or 0 for k in ("num_frames", "height", "width"))
        if current and (len(current) >= batch_size or size + nbytes > budget):
            batches.append(current)
            current, size = [], 0
        current.append(cid)
        size += nbytes
    return batches + [current] if current else batches


def _prefetch(store: RunStore, batches: list[list[str]], videos: dict[str, dict]) -> Iterator[tuple[list[str], list]]:
    """Yield (ids, decoded videos) per batch while the next batch decodes in background threads."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.map(_decode, [store] * len(b), [videos[c] for c in b]) for b in batches[:1]]
        for i, batch in enumerate(batches):
            if i + 1 < len(batches):
                nxt = batches[i + 1]
                futures.append(pool.map(_decode, [store] * len(nxt), [videos[c] for c in nxt]))
            yield batch, list(futures[i])


def run_dir_for(out: str | None, model: str, suite: Suite) -> Path:
    return Path(out) if out else Path("runs") / f"{Path(model).stem}-{suite.name}"


def load_run_suite(store: RunStore, override: str | Path | None = None) -> Suite:
    """The suite a run was made on (see :func:`.suite.recorded_manifest`; ``override``: the --suite given)."""
    from .suite import load_suite, recorded_manifest

    config = store.config()
    if not config:
        raise ConfigError(f"{store.run_dir} has no run configuration; create it with 'i2vbench run' or 'generate'")
    return load_suite(recorded_manifest(config, override), check_images=False)
