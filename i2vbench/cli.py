"""The ``i2vbench`` command: one sub-command a verb."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from .errors import ConfigError, I2VBenchError, WeightsError
from .shard import Shard, current_shard

DEFAULT_SUITE = "i2vbench-mini"

EPILOG = """examples:
  i2vbench run --model static                      generate + evaluate the built-in suite
  i2vbench run --model camera --set motion=zoom_in --set speed=0.3
  i2vbench evaluate --videos my_videos/ --suite i2vbench-mini
  i2vbench leaderboard runs/* -o leaderboard.csv
  i2vbench compare runs/consisti2v-i2vbench-mini runs/static-i2vbench-mini --baseline runs/static-i2vbench-mini --format latex
  i2vbench report runs/* -o report.html
  i2vbench status runs/static-i2vbench-mini          how far a run got, per stage and metric
  i2vbench list models | metrics | suites
  i2vbench weights fetch consisti2v
  torchrun --nproc-per-node 8 -m i2vbench run --model consisti2v
                                                   one run shared by 8 GPUs (one process per GPU)
"""


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    """``--set key=value`` pairs, values as typed (see :func:`typed_settings`)."""
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value; got {pair!r}")
        settings[key.strip()] = value
    return settings


_NULL_WORDS = ("", "null", "none", "~")


def typed_setting(text: str, default: Any) -> Any:
    """A ``--set`` value read for the type of the setting's default: a text setting keeps the text as typed
    (a negative prompt with a colon in it stays that prompt); otherwise ``null``/``none``/empty is None and
    the rest is read as YAML (numbers, booleans, lists), except that a setting without a default type
    (None) keeps text that YAML would turn into a mapping or a boolean (``camera_motion=off``), and a numeric
    setting reads ``1e3`` as a number."""
    if isinstance(default, str):
        return text
    if _is_null(text):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if default is None and isinstance(value, (dict, bool)):
        return text
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and isinstance(value, str):
        try:  # YAML 1.1 reads 1e3 (no dot) as text
            value = float(value)
        except ValueError:
            return value
    if numeric and isinstance(value, float) and not math.isfinite(value):
        return text  # nan and inf: refused as not a number
    if numeric and isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)  # steps=15.0 is 15
    return value


def typed_settings(raw: dict[str, str], defaults: dict[str, Any], paths: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`typed_setting` for each ``--set`` value, against ``defaults`` (unknown keys are read as YAML and
    refused later with the list of known ones); the settings in ``paths`` name files and keep their text."""
    return {key: (None if _is_null(text) else text) if key in paths else typed_setting(text, defaults.get(key))
            for key, text in raw.items()}


def _is_null(text: str) -> bool:
    """Whether a --set value means "no value" (null, none, ~ or nothing)."""
    return text.strip().lower() in _NULL_WORDS


def _split(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _add_progress_arg(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: given before the command (i2vbench --no-progress run) it must not be reset here
    p.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS, help="hide progress bars")


def _add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model card name (see 'i2vbench list models') or path to a card YAML")
    p.add_argument("--suite", default=DEFAULT_SUITE,
                   help=f"suite name, manifest .jsonl or suite folder (default: {DEFAULT_SUITE})")
    p.add_argument("--out", help="run folder (default: runs/<model>-<suite>)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model setting, e.g. --set num_frames=16 --set motion=zoom_in (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="run seed; each case's seed derives from it and the case id (default 0)")
    p.add_argument("--cases", action="append", help="only these case ids (comma-separated, repeatable)")
    p.add_argument("--categories", action="append",
                   help="only these categories (comma-separated, repeatable); with --cases, the cases in both")
    p.add_argument("--exclude-cases", action="append", metavar="CASES",
                   help="leave these case ids out (comma-separated, repeatable), e.g. one that hangs the model")
    p.add_argument("--batch-size", type=positive_int, help="cases per generate call (default: the adapter's)")
    p.add_argument("--videos", help="folder of videos for the 'videos' model (same as --set dir=DIR)")
    p.add_argument("--weights", metavar="DIR", help="a local copy of the model's weights, such as the ConsistI2V "
                   "folder (same as --set weights=DIR; default: the Hugging Face cache)")
    p.add_argument("--force", action="store_true",
                   help="discard what the run folder holds (videos, rows, scores) and redo everything")


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", action="append",
                   help="metrics to compute (comma-separated, repeatable; default: all installed)")
    p.add_argument("--device", default="auto", help="device for metric networks: auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="metric numerics: auto = bf16 autocast on CUDA for the networks that keep their accuracy in it "
                        "(DINO, CLIP, ViCLIP, OWLv2, BLIP), fp32 otherwise; fp32 = the reference implementations' "
                        "numerics everywhere (slower). Recorded per metric; a run folder keeps one (default auto)")
    p.add_argument("--eval-batch-size", type=positive_int, default=16, help="videos decoded and scored together (default 16)")
    p.add_argument("--recompute", action="store_true", help="recompute the chosen metrics even where scores exist")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="i2vbench", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Benchmark image-to-video models: generate videos from a suite of images and prompts, "
                    "score them on the I2V-Bench dimensions, and build leaderboards.")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="generate videos, then evaluate them, then write leaderboard.csv in the run folder",
                       description="Generate every missing video of the suite with the model, score them with every "
                                   "metric that can run, and write <run>/leaderboard.csv. Running it again resumes.")
    _add_generation_args(p)
    _add_eval_args(p)
    _add_progress_arg(p)

    p = sub.add_parser("generate", help="generate videos only",
                       description="Generate every missing video of the suite; running it again resumes.")
    _add_generation_args(p)
    _add_progress_arg(p)

    p = sub.add_parser("evaluate", help="score the videos of a run folder, or a folder of videos made elsewhere",
                       description="Score a run folder's videos (i2vbench evaluate RUN), or match a folder of videos "
                                   "to a suite's cases and score them (i2vbench evaluate --videos DIR --suite S).")
    p.add_argument("run", nargs="?", help="run folder made by 'run' or 'generate'")
    p.add_argument("--videos", help="folder of videos made elsewhere, named <case id>.mp4 or <prompt>-<n>.mp4")
    p.add_argument("--suite", help=f"suite for --videos (default: {DEFAULT_SUITE}); with RUN, where the run's suite is "
                                   "now, if it has moved since the run was made")
    p.add_argument("--match", default="auto", choices=["auto", "id", "prompt"], help="how --videos files are matched (default auto)")
    p.add_argument("--out", help="run folder for --videos (default: runs/videos-<folder name>)")
    p.add_argument("--name", help="with --videos: the model's name in leaderboards and reports (default: the folder's "
                                  "name); recorded with the run, so changing it later needs --force")
    p.add_argument("--force", action="store_true",
                   help="with --videos: discard what the run folder holds (records and scores; the videos themselves "
                        "are never touched) and start again, e.g. after changing --suite or --match")
    _add_eval_args(p)
    _add_progress_arg(p)

    p = sub.add_parser("leaderboard", help="one CSV row per run, one column per metric (percent)",
                       description="Write one CSV row per run (model, settings, suite, case counts, group scores, "
                                   "VBench-I2V Quality/I2V/Total, one column per score in percent) and, beside it, "
                                   "<name>_by_category.csv with one row per run and category. Skipped metrics stay "
                                   "empty. See docs/reports.md.")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("-o", "--output", default="leaderboard.csv", help="CSV path (default leaderboard.csv)")

    p = sub.add_parser("compare", help="models x scores table with bootstrap intervals and a paired test (md, LaTeX, CSV)",
                       description="Compare runs: each value with its bootstrap confidence interval over cases, the "
                                   "best value in bold, and with --baseline a dagger where a run differs significantly "
                                   "from the baseline (paired bootstrap on shared cases). See docs/reports.md.")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--format", choices=["md", "latex", "csv"], default="md", help="output format (default md)")
    p.add_argument("--baseline", help="run folder to test the others against (added to the table if not listed)")
    p.add_argument("--published", action="store_true",
                   help="add the published VBench-I2V reference rows (another suite) in a block of their own")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("-o", "--output", help="file to write (default: print)")

    p = sub.add_parser("report", help="one HTML page: sortable leaderboard, plots, each case's image beside the videos",
                       description="Write a self-contained HTML report (plots and input images inline; videos linked "
                                   "relative to the report, or copied with --copy-videos) plus the plots as PNG and "
                                   "SVG in <report>_files/plots/.")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("-o", "--output", default="report.html", help="HTML path (default report.html)")
    p.add_argument("--published", action="store_true", help="add the published VBench-I2V reference rows and points")
    p.add_argument("--copy-videos", action="store_true", help="copy the videos into <report>_files/videos/ (re-encoding as H.264 those a browser would not play)")

    p = sub.add_parser("status", help="where a run stands: videos made, failed and left; each metric's progress",
                       description="Read a run folder's store (also while the run is going) and say how many videos "
                                   "were made, which failed and why, and per metric how many videos it scored, in "
                                   "which precision, with which errors, or why it was skipped. Loads no model.")
    p.add_argument("run", help="run folder")

    p = sub.add_parser("list", help="list models, metrics or suites",
                       description="List models, metrics or suites; 'list models NAME' shows one model's card and "
                                   "every setting it takes, with its default and what it means.")
    p.add_argument("what", choices=["models", "metrics", "suites"])
    p.add_argument("name", nargs="?", help="with models: the model to show in full (a card name or YAML path)")

    p = sub.add_parser("weights", help="download pretrained weights into the cache, or check which are there",
                       description="Weights go to the Hugging Face cache (HF_HOME) or $I2VBENCH_CACHE. Nothing else "
                                   "in i2vbench downloads: runs only look in the cache.")
    wsub = p.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    w = wsub.add_parser("fetch", help="download weights (those of every metric when no name is given)",
                        description="Download weights by name, or those the given metrics use; with neither, the "
                                    "weights of every metric (model weights such as consisti2v are fetched by "
                                    "name). Weights already cached are not downloaded again unless a checksum "
                                    "shows them damaged (or --force); a failed download does not stop the others.")
    w.add_argument("names", nargs="*", help="weight names (see 'i2vbench weights check')")
    w.add_argument("--metrics", action="append",
                   help="fetch the weights these metrics use (comma-separated, repeatable; see 'i2vbench list metrics')")
    w.add_argument("--force", action="store_true",
                   help="download again what is cached (a damaged file that no checksum catches)")
    wsub.add_parser("check", help="list every known weight, its source and licence, and whether it is cached "
                                  "(where, and whether it passes its checksum)")

    p = sub.add_parser("suite", help="validate or import suites")
    ssub = p.add_subparsers(dest="suite_command", required=True, metavar="ACTION")
    v = ssub.add_parser("validate", help="check a manifest and decode every image; lists every problem at once")
    v.add_argument("suite", help="suite name, manifest .jsonl or suite folder")
    imp = ssub.add_parser("import", help="build a suite folder from another layout (see docs/suites.md)")
    isub = imp.add_subparsers(dest="source", required=True, metavar="SOURCE")
    f = isub.add_parser("folder", help="a folder of images plus a CSV/JSONL of prompts")
    f.add_argument("images", help="folder of images")
    f.add_argument("prompts", help="CSV (columns image|filename, prompt[, id, category, object, scene]) or JSONL")
    f.add_argument("--default-category", default="uncategorized", help="category of rows that give none")
    vb = isub.add_parser("vbench-i2v", help="VBench-I2V's vbench2_i2v_full_info.json with its crop folders")
    vb.add_argument("info_json", help="path to vbench2_i2v_full_info.json")
    vb.add_argument("crops", help="folder holding the crop sub-folders (1-1, 8-5, 7-4, 16-9)")
    vb.add_argument("--aspect-ratio", default="16-9", help="which crop folder to use (default 16-9)")
    vb.add_argument("--dimensions", action="append",
                    help="only entries evaluated on these VBench-I2V dimensions (comma-separated, repeatable)")
    ib = isub.add_parser("i2v-bench", help="the I2V-Bench release: a folder of videos plus a captions file")
    ib.add_argument("videos", help="folder of videos")
    ib.add_argument("captions", help="captions file: CSV or JSON/JSONL mapping video file name to caption")
    ib.add_argument("--height", type=int, default=256, help="first-frame height (default 256)")
    ib.add_argument("--width", type=int, default=256, help="first-frame width (default 256)")
    for q in (f, vb, ib):
        q.add_argument("--out", required=True, help="suite folder to write (prompts/ + reference_images/)")
        q.add_argument("--name", help="suite name (default: from the source)")
        q.add_argument("--overwrite", action="store_true", help="replace an existing manifest of that name")
    return parser


def _print_summary(stage: str, summary: Any, shard: Shard) -> None:
    line = f"{shard.label()}{stage}: {summary.done} done, {summary.skipped} already done"
    if summary.failed:
        line += f", {len(summary.failed)} failed"
    print(line)
    for note in summary.notes:
        print(f"  {note}")
    for cid, reason in list(summary.failed.items())[:20]:
        print(f"  failed {cid}: {reason}")


def _generation(args: argparse.Namespace):
    from . import runner
    from .registry import find_card
    from .suite import load_suite

    suite = load_suite(args.suite, check_images=False).select(ids=_split(args.cases), categories=_split(args.categories),
                                                              exclude=_split(getattr(args, "exclude_cases", None)))
    card = find_card(args.model)
    if getattr(args, "name", None):  # videos made elsewhere, under the name of the model that made them
        card = dataclasses.replace(card, name=args.name)
    cls = runner.adapter_class(card)
    overrides = typed_settings(parse_settings(args.settings), {**cls.known_settings(), **card.settings},
                               paths=cls.path_settings)
    if args.videos:
        overrides["dir"] = args.videos
    if args.weights:
        overrides["weights"] = args.weights
    plan = runner.make_plan(card, overrides, suite, args.seed)
    run_dir = runner.run_dir_for(args.out, card.name, suite)
    shard = current_shard()
    adapter = runner.make_adapter(plan)  # bad settings, paths or cases are refused before the run folder is made
    adapter.check_cases(list(plan.suite))
    store = runner.open_run(run_dir, plan, force=args.force, shard=shard, keep=adapter.reads_from())
    if shard.is_main:
        shared = f", shared by {shard.world} processes" if shard.world > 1 else ""
        print(f"run folder: {run_dir}  ({card.name} on {suite.name}, {len(suite)} cases{shared})")
    with _leaderboard_kept_true(store, shard):
        summary = runner.generate(store, plan, batch_size=args.batch_size, progress=not args.no_progress,
                                  shard=shard, adapter=adapter)
    _print_summary("generate", summary, shard)
    return store, suite, summary


def _metrics(args: argparse.Namespace) -> list:
    """The chosen metrics on the chosen device: resolved before any video is made, so that a typo in
    ``--metrics`` or ``--device`` is reported at once rather than after hours of generation."""
    from . import runner
    from .devices import resolve_device

    metrics = runner.resolve_metrics(_split(args.metrics), resolve_device(args.device), args.precision)
    if args.metrics:  # asked for by name: one that cannot run is a mistake, not something to skip quietly
        blocked = {m.name: reason for m in metrics if (reason := m.unavailable_reason())}
        if blocked:
            lines = "".join(f"\n  {name}: {reason}" for name, reason in blocked.items())
            raise ConfigError(f"{len(blocked)} metric(s) named in --metrics cannot run here:{lines}\n"
                              f"fetch what they need (i2vbench weights fetch --metrics {','.join(blocked)}) or leave "
                              "them out of --metrics (without --metrics, every metric that can run does, and the "
                              "others are recorded as skipped)")
    return metrics


def _evaluation(args: argparse.Namespace, store, suite, metrics: list):
    from . import runner

    shard = current_shard()
    with _leaderboard_kept_true(store, shard, finished_too=False):  # written below once every process is done
        summary = runner.evaluate(store, suite, metrics, batch_size=args.eval_batch_size,
                                  recompute=args.recompute, progress=not args.no_progress, shard=shard)
    _print_summary("evaluate", summary, shard)
    shard.barrier()  # the leaderboard needs every process's scores
    if shard.is_main:
        print(f"leaderboard: {_write_run_leaderboard(store)}")
    return summary


@contextlib.contextmanager
def _leaderboard_kept_true(store, shard, finished_too: bool = True):
    """A stage, finished or stopped part-way (Ctrl-C, an error), has the run's leaderboard.csv, if there is one,
    brought up to date from the store, so that it never shows numbers the store no longer holds: a video made
    again forgets its old scores, --recompute clears a metric first, and a process killed before it could do so
    left its changes to the next one. A file that already says the same is left as it is (a finished run on
    read-only storage runs again as a no-op). A finished stage waits for the other processes of the run first;
    ``finished_too=False``: the caller writes it after a finished stage itself."""
    try:
        yield
    except BaseException:
        _rewrite_run_leaderboard(store, shard)
        raise
    if finished_too:
        shard.barrier()
        _rewrite_run_leaderboard(store, shard)


def _rewrite_run_leaderboard(store, shard) -> None:
    from .runner import RUN_LEADERBOARD

    board = store.run_dir / RUN_LEADERBOARD
    if shard.is_main and board.exists():
        try:
            _write_run_leaderboard(store)
        except Exception as exc:  # a stage's own error is the one to report
            print(f"could not bring {board} up to date ({exc}); delete it, or run 'i2vbench leaderboard "
                  f"{store.run_dir} -o {board}'", file=sys.stderr)


def _write_run_leaderboard(store) -> Path:
    """The run folder's own leaderboard.csv, from its store."""
    from .report.leaderboard import write_leaderboard
    from .runner import RUN_LEADERBOARD

    return write_leaderboard([store.run_dir], store.run_dir / RUN_LEADERBOARD)[0]


def _exit_code(store, *summaries) -> int:
    """1 when a case failed to generate or a video could not be scored (said once more at the end, for
    scripts and logs), else 0. Processes sharing the run wait for each other first: torchrun stops every
    process as soon as one exits with an error, which would cut the others' work short."""
    current_shard().barrier()
    failed = sum(len(s.failed) for s in summaries)
    if not failed:
        return 0
    print(f"finished with {failed} failure(s) (listed above); 'i2vbench status {store.run_dir}' shows them all",
          file=sys.stderr)
    return 1


def cmd_run(args: argparse.Namespace) -> int:
    metrics = _metrics(args)
    store, suite, made = _generation(args)
    return _exit_code(store, made, _evaluation(args, store, suite, metrics))


def cmd_generate(args: argparse.Namespace) -> int:
    store, _, made = _generation(args)
    return _exit_code(store, made)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import runner
    from .store import RunStore

    if bool(args.run) == bool(args.videos):
        raise ConfigError("give either a run folder (i2vbench evaluate RUN) or --videos DIR, not both or neither")
    if args.force and not args.videos:
        raise ConfigError("--force goes with --videos; to score a run folder's videos again, use --recompute")
    if args.name and not args.videos:
        raise ConfigError("--name goes with --videos: a run folder keeps the name it was made with")
    metrics = _metrics(args)
    if args.videos:
        folder = Path(args.videos)
        out = args.out or f"runs/videos-{folder.resolve().name}"
        ns = argparse.Namespace(model="videos", name=args.name or _recorded_model(out) or folder.resolve().name,
                                suite=args.suite or DEFAULT_SUITE, out=out,
                                settings=[f"match={args.match}"], seed=0, cases=None, categories=None,
                                batch_size=None, videos=args.videos, weights=None, force=args.force, no_progress=args.no_progress)
        store, suite, found = _generation(ns)  # a case without a video fails there, as in 'run --model videos'
    else:
        store = RunStore.open_existing(args.run)
        suite = runner.load_run_suite(store, args.suite)
        found = runner.StageSummary()
    return _exit_code(store, found, _evaluation(args, store, suite, metrics))


def _recorded_model(run_dir: str | Path) -> str | None:
    """The model name a run folder's store already records (None where there is none): what evaluate --videos
    keeps without --name, so that the same command resumes a run made before names were given."""
    from .store import RunStore

    try:  # no store yet (refused by open_readonly as not a run folder), or one that cannot be read: none recorded
        with RunStore.open_readonly(run_dir) as store:
            return (store.config() or {}).get("generation", {}).get("model")
    except I2VBenchError:
        return None


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from .report.leaderboard import category_path, write_leaderboard

    path, notes = write_leaderboard(args.runs, args.output)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"leaderboard: {path}\nby category: {category_path(path)}")


def cmd_compare(args: argparse.Namespace) -> None:
    from .report.aggregate import load_runs, unique_dirs
    from .report.tables import RENDERERS, compare_runs

    if args.resamples < 100:
        raise ConfigError(f"--resamples {args.resamples} is too few for a 95 % interval; use at least 100 "
                          "(1000 or more for stable bounds; default 2000)")
    dirs = unique_dirs(args.runs)
    baseline = None
    if args.baseline:
        resolved = [d.resolve() for d in dirs]
        if Path(args.baseline).resolve() not in resolved:
            dirs.insert(0, Path(args.baseline))
            resolved.insert(0, Path(args.baseline).resolve())
        baseline = resolved.index(Path(args.baseline).resolve())
    table = compare_runs(load_runs(dirs), baseline=baseline, published=args.published,
                         resamples=args.resamples, seed=args.seed)
    text = RENDERERS[args.format](table)
    if not args.output:
        print(text, end="")
        return
    try:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc.strerror}; choose a writable path with -o") from exc
    print(f"comparison: {args.output}")


def cmd_report(args: argparse.Namespace) -> None:
    from .report.html import build_report

    path, plots = build_report(args.runs, args.output, published=args.published, copy_videos=args.copy_videos)
    for note in plots.notes:
        print(f"  {note}")
    print(f"report: {path}")


def cmd_status(args: argparse.Namespace) -> None:
    from .report.status import run_status
    from .store import RunStore

    with RunStore.open_readonly(args.run) as store:
        print("\n".join(run_status(store)))


def _model_details(model: str) -> list[str]:
    """One model in full: what it is, where its card and weights are, and every setting with its default."""
    from .registry import find_card, setting_notes
    from .runner import adapter_class

    card = find_card(model)
    cls = adapter_class(card)
    settings = cls.resolve_settings(card.settings)
    lines = [f"{card.name}: {card.description or cls.description}",
             f"  adapter {card.adapter} ({cls.requirements}); default batch {cls.default_batch_size}"
             + (f"; card {card.path}" if card.path else "")]
    lines += [f"  {label}: {value}" for label, value in
              (("paper", card.paper), ("licence", card.licence), ("weights", card.weights)) if value]
    notes = setting_notes(card)
    width = max(len(k) for k in settings) if settings else 0
    lines.append("settings (override with --set KEY=VALUE):" if settings else "settings: none")
    for key, value in settings.items():
        note = f"  # {notes[key]}" if notes.get(key) else ""
        lines.append(f"  {key:<{width}}  {_as_set_value(value)}{note}")
    return lines


def _as_set_value(value: object) -> str:
    """A default as it would be written after ``--set KEY=`` (YAML's spelling: null, true, "")."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return '""' if value == "" else str(value)


def cmd_list(args: argparse.Namespace) -> None:
    if args.name and args.what != "models":
        raise ConfigError(f"'i2vbench list {args.what}' takes no name; 'i2vbench list models NAME' shows one model")
    if args.name:
        print("\n".join(_model_details(args.name)))
    elif args.what == "models":
        from .registry import list_cards
        from .runner import adapter_class

        broken: dict = {}
        cards = list_cards(broken)
        for reason in broken.values():
            print(f"warning: {reason}", file=sys.stderr)
        for name, card in sorted(cards.items()):
            try:
                cls = adapter_class(card)
                desc, needs = card.description or cls.description, cls.requirements
            except I2VBenchError as exc:
                desc, needs = f"(cannot load: {exc})", "?"
            print(f"{name:<16} {needs:<12} {desc}")
    elif args.what == "metrics":
        from .metrics import get_metric, metric_names

        for name in metric_names():
            cls = get_metric(name)
            reason = cls().unavailable_reason()
            state = "ready" if reason is None else f"unavailable: {reason}"
            numerics = "bf16 on CUDA" if cls.bf16_ok else "fp32"
            print(f"{name:<22} {cls.group:<15} {numerics:<13} {cls.description}  [{state}]")
    else:
        from .suite import list_suites

        for name, path in sorted(list_suites().items()):
            print(f"{name:<20} {path}")


def cmd_suite(args: argparse.Namespace) -> None:
    from . import suite as suites

    if args.suite_command == "validate":
        suite, warnings = suites.validate_suite(args.suite)
        for w in warnings:
            print(f"warning: {w}")
        print(f"{suite.manifest}: {len(suite)} cases, all images decode")
        return
    common = {"overwrite": args.overwrite, **({"name": args.name} if args.name else {})}
    if args.source == "folder":
        name = args.name or Path(args.images).resolve().name
        path = suites.import_folder(args.images, args.prompts, args.out, name,
                                    default_category=args.default_category, overwrite=args.overwrite)
    elif args.source == "vbench-i2v":
        path = suites.import_vbench_i2v(args.info_json, args.crops, args.out, aspect_ratio=args.aspect_ratio,
                                        dimensions=_split(args.dimensions), **common)
    else:
        path = suites.import_i2vbench(args.videos, args.captions, args.out, height=args.height, width=args.width, **common)
    print(f"wrote {path}")


def _weight_state(weights, name: str) -> str:
    """``cached at PATH``, or why not (missing, damaged) with the command that fixes it."""
    try:
        path = weights.locate(name)
    except WeightsError as exc:
        if incomplete := getattr(exc, "incomplete", None):
            return f"INCOMPLETE: {incomplete} ({weights.fetch_command(name)})"
        return f"missing ({weights.fetch_command(name)})"
    damaged = weights.damage(name)
    return f"DAMAGED: {damaged} ({weights.fetch_command(name)})" if damaged else f"cached at {path}"


def cmd_weights(args: argparse.Namespace) -> None:
    from . import weights

    if args.weights_command == "check":
        rows = sorted(weights.WEIGHTS.items())
        width = max(len(name) for name, _ in rows)
        for name, spec in rows:
            state = _weight_state(weights, name)
            print(f"{name:<{width}}  {spec.source}  [{spec.licence}]  used by {', '.join(spec.used_by)}: {state}")
        return
    from .metrics import get_metric, metric_names

    chosen = _split(args.metrics) or ([] if args.names else metric_names())
    for metric in chosen:
        get_metric(metric)  # unknown names are refused with the known ones
    if metric_like := [n for n in args.names if n in metric_names()]:
        raise ConfigError(f"{', '.join(metric_like)} is a metric, not a weight: fetch what it uses with "
                          f"'i2vbench weights fetch --metrics {','.join(metric_like)}'")
    names = list(dict.fromkeys([*args.names, *weights.weights_for(chosen)]))
    for name in names:
        weights.get_spec(name)
    if not names:
        print(f"{', '.join(chosen)} need(s) no weights: nothing to fetch")
        return
    failed = []
    for name in names:
        try:
            print(f"{name}: {weights.fetch(name, force=args.force)}")
        except WeightsError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed.append(name)
    if failed:
        raise WeightsError(f"{len(failed)} of {len(names)} downloads failed ({', '.join(failed)}); run the same "
                           "command again to retry them (finished ones are kept)")


COMMANDS = {"run": cmd_run, "generate": cmd_generate, "evaluate": cmd_evaluate, "leaderboard": cmd_leaderboard,
            "compare": cmd_compare, "report": cmd_report, "status": cmd_status,
            "list": cmd_list, "suite": cmd_suite,
            "weights": cmd_weights}


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit or preemption, ``kill``, torchrun stopping its workers): the run
    stops as on Ctrl-C, recording what is finished."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import signal
    import threading

    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    try:
        return COMMANDS[args.command](args) or 0
    except I2VBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        what, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        again = " (without --recompute, which would start the scoring over)" if getattr(args, "recompute", False) else ""
        print(f"{what}: everything finished so far is saved; run the same command again{again} to resume",
              file=sys.stderr)
        return code
    except BrokenPipeError:  # output piped into a reader that stopped early (| head): nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
