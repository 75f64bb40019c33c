"""One self-contained HTML report: the sortable leaderboard, the plots, and every case's input image beside each
model's video with its scores, filterable by category and model.

CSS, JavaScript, plots (SVG as data URIs) and input-image thumbnails are inline; videos are linked by a path
relative to the report's folder, or copied into ``<report>_files/videos/`` with ``copy_videos``. Every piece
of text that comes from a run (prompts, ids, model names, file names, errors) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

import pandas as pd
from PIL import Image

from ..errors import ConfigError, I2VBenchError
from ..suite import load_suite, recorded_manifest
from ..video import browser_unplayable, read_video, write_video
from .aggregate import VBENCH_COLUMNS, RunData, Score, labels, load_runs, ordered_scores
from .caveats import caveats
from .leaderboard import leaderboard_tables
from .plots import PlotSet, write_plots
from .published import published_vbench_i2v

THUMBNAIL = 256  # longest side of the embedded input images, in pixels
BOARD_COLUMNS = ("model", "run", "suite", "videos", "failed", "scored", "score_errors", "seconds_per_video")


def esc(value: object) -> str:
    """Text or attribute value, escaped (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def files_dir(out: Path) -> Path:
    """The folder beside the report that holds its plots (and copied videos)."""
    return out.with_name(f"{out.stem}_files")


def _thumbnail(path: Path | None) -> str | None:
    """The image as a base64 JPEG data URI, longest side at most :data:`THUMBNAIL`; ``None`` if unreadable."""
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=85)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _case_images(run: RunData) -> dict[str, Path]:
    """Case id -> input image, from the run's suite manifest (found where the suite has moved, too); empty when
    it is nowhere to be found."""
    try:
        manifest = recorded_manifest(run.config)
    except I2VBenchError:  # changed since: its images are still the best there is; gone: none
        manifest = run.config.get("suite_manifest")
    if not manifest:
        return {}
    try:
        return {case.id: case.image for case in load_suite(manifest, check_images=False).cases}
    except I2VBenchError:
        return {}


@dataclass
class _Clip:
    """How the page shows one video: its URL, as a ``<video>`` or (a GIF) an ``<img>``, and a note for the reader."""

    url: str
    tag: str = "video"
    note: str = ""


@dataclass
class _Media:
    out_dir: Path
    copy_to: Path | None

    def clip(self, run_index: int, run: RunData, case_id: str, rel: str) -> _Clip | None:
        src = Path(rel) if Path(rel).is_absolute() else run.run_dir / rel
        if not src.is_file():
            return None
        unplayable = browser_unplayable(src)
        note = f"its format ({unplayable}) may not play in a browser" if unplayable else ""
        if self.copy_to is not None:
            folder = self.copy_to / f"{run_index}-{run.name}"
            folder.mkdir(parents=True, exist_ok=True)
            src, note = self._copy(src, folder / case_id, unplayable, note)
        elif unplayable:
            note += "; --copy-videos makes playable copies"
        # absolute, not resolved: a browser climbs '..' from the path it was given, not from a symlink's target
        url = quote(os.path.relpath(os.path.abspath(src), os.path.abspath(self.out_dir)).replace(os.sep, "/"))
        return _Clip(url, "img" if src.suffix.lower() == ".gif" else "video", note)

    @staticmethod
    def _copy(src: Path, stem: Path, unplayable: str | None, note: str) -> tuple[Path, str]:
        """``src`` copied to ``stem`` (the case's id, so that two cases' files never meet) with its suffix; one a
        browser would not play is re-encoded as H.264 instead, once (a copy newer than its source is kept). The
        scores stay those of the original."""
        if unplayable:
            dst = stem.with_name(stem.name + ".mp4")
            try:
                if not (dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime):
                    write_video(read_video(src), dst)
                return dst, f"shown as an H.264 copy (the file is {unplayable})"
            except I2VBenchError:  # cannot be decoded here either: copied as it is, with the note
                pass
        dst = stem.with_name(stem.name + src.suffix)
        shutil.copy2(src, dst)
        return dst, note


def _leaderboard_html(board: pd.DataFrame, scores: Sequence[Score]) -> str:
    value_cols = [c for c in board.columns if c.startswith("group_") or c in VBENCH_COLUMNS] + [s.column for s in scores]
    cols = [c for c in BOARD_COLUMNS if c in board] + value_cols
    head = "".join(f'<th data-col="{esc(c)}" title="click to sort">{esc(c)}</th>' for c in cols)
    body = []
    for _, row in board.iterrows():
        cells = "".join(f"<td>{esc(_fmt(row[c]))}</td>" for c in cols)
        body.append(f'<tr data-model="{esc(row["model"])}" title="{esc(row.get("settings"))}">{cells}</tr>')
    return (f'<table id="leaderboard" class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _published_html() -> str:
    table = published_vbench_i2v()
    cols = list(table.scores) + list(VBENCH_COLUMNS)
    head = "<th>model</th>" + "".join(f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    for r in table.rows:
        vals = r.with_aggregates()
        rows.append(f"<tr><td>{esc(r.model)}</td>" + "".join(f"<td>{esc(_fmt(vals.get(c)))}</td>" for c in cols) + "</tr>")
    return (f'<h2>Published reference ({esc(table.benchmark)}, a different suite)</h2>'
            f'<p class="note">{esc(table.suite_note)} Source: {esc(table.source)} The VBench columns are computed '
            f'here from the published dimensions.</p>'
            f'<table id="published" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _plots_html(plots: PlotSet, out_dir: Path) -> str:
    parts = []
    for p in plots.plots:
        data = base64.b64encode(p.svg.read_bytes()).decode()
        parts.append(f'<figure class="plot"><img alt="{esc(p.title)}" src="data:image/svg+xml;base64,{data}">'
                     f'<figcaption>{esc(p.title)} (<a href="{esc(quote(os.path.relpath(p.png, out_dir).replace(os.sep, "/")))}">PNG</a>)'
                     f'</figcaption></figure>')
    notes = "".join(f"<li>{esc(n)}</li>" for n in plots.notes)
    return "".join(parts) + (f'<ul class="note">{notes}</ul>' if notes else "")


def _suite_groups(runs: Sequence[RunData]) -> list[list[int]]:
    """Indices of the runs made on each suite (by name and manifest digest), in order of first appearance: a case
    id of one suite may stand for another image and prompt in another suite."""
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault((run.suite, run.generation.get("suite_manifest_sha256")), []).append(i)
    return list(groups.values())


def _cases_html(runs: Sequence[RunData], names: Sequence[str], scores: Sequence[Score], media: _Media) -> str:
    groups = _suite_groups(runs)
    sections, categories = [], set()
    for members in groups:
        suite_label = f" ({runs[members[0]].suite})" if len(groups) > 1 else ""
        section_list, cats = _suite_cases_html(runs, names, scores, media, members, suite_label)
        sections += section_list
        categories |= cats
    options = '<option value="">all categories</option>' + "".join(f'<option value="{esc(c)}">{esc(c)}</option>'
                                                                   for c in sorted(categories))
    boxes = "".join(f'<label><input type="checkbox" class="model-filter" value="{esc(n)}" checked> {esc(n)}</label>'
                    for n in names)
    return (f'<div class="filters"><label>category <select id="category-filter">{options}</select></label>'
            f'<span class="models">{boxes}</span></div><div id="cases">{"".join(sections)}</div>')


def _suite_cases_html(runs: Sequence[RunData], names: Sequence[str], scores: Sequence[Score], media: _Media,
                      members: Sequence[int], suite_label: str) -> tuple[list[str], set[str]]:
    """The sections of the cases of the runs ``members`` (one suite): each case's input image and prompt, and
    each of those runs' video with its scores."""
    images = [_case_images(runs[i]) for i in members]
    info: dict[str, tuple[str, str]] = {}
    for i in members:
        for cid, row in runs[i].cases.iterrows():
            info.setdefault(str(cid), ("" if pd.isna(row["category"]) else str(row["category"]), str(row["prompt"] or "")))
    sections = []
    for cid in sorted(info, key=lambda c: (info[c][0], c)):
        category, prompt = info[cid]
        image = next((imgs[cid] for imgs in images if cid in imgs), None)
        thumb = _thumbnail(image)
        figs = [f'<figure class="input"><img alt="input image of {esc(cid)}" src="{thumb}"><figcaption>input image'
                f'<br><span class="file">{esc(image.name if image else "")}</span></figcaption></figure>' if thumb else
                '<figure class="input missing"><div>input image not found</div></figure>']
        for i in members:
            run, name = runs[i], names[i]
            if cid not in run.cases.index:
                continue
            case = run.cases.loc[cid]
            rel = run.videos["path"].get(cid) if "path" in run.videos else None
            clip = media.clip(i, run, cid, rel) if rel else None
            if clip:
                body = (f'<img alt="video of {esc(cid)}" src="{esc(clip.url)}">' if clip.tag == "img" else
                        f'<video src="{esc(clip.url)}" autoplay muted loop playsinline preload="auto"></video>')
                body += f'<span class="file">{esc(Path(rel).name)}</span>'
                if clip.note:
                    body += f'<span class="file clip-note">{esc(clip.note)}</span>'
            elif case["status"] == "failed":
                body = f'<div class="failed">failed: {esc(case["error"])}</div>'
            else:
                body = '<div class="failed">video file not found</div>'
            rows = "".join(f"<tr><th>{esc(s.column)}</th><td>{esc(_fmt(v))}</td></tr>"
                           for s in scores if (v := run.case_score(s.name, cid)) is not None)
            figs.append(f'<figure class="clip" data-model="{esc(name)}">{body}<figcaption>{esc(name)}</figcaption>'
                        f'<table class="scores">{rows}</table></figure>')
        sections.append(f'<section class="case" data-category="{esc(category)}" data-case="{esc(cid)}">'
                        f'<h3>{esc(cid)}{esc(suite_label)} <span class="cat">{esc(category)}</span></h3>'
                        f'<p class="prompt">{esc(prompt)}</p><div class="row">{"".join(figs)}</div></section>')
    return sections, {c for c, _ in info.values()}


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;background:#fff}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.scroll{overflow-x:auto}.note{color:#666;font-size:13px}.warn{color:#a33}
.plot{display:inline-block;margin:0 1em 1em 0;vertical-align:top}figure.plot img{width:auto;max-width:min(760px,95vw);background:#fff}
.filters{position:sticky;top:0;background:#fafafa;padding:.5em 0;z-index:1}.filters label{margin-right:1em}
.case{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
.case h3{margin:.2em 0}.cat{font-size:12px;color:#fff;background:#888;border-radius:3px;padding:1px 6px}
.prompt{font-style:italic;white-space:pre-wrap}.row{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figure img,figure video{width:256px;height:auto;display:block;background:#000}
.file{font-size:11px;color:#888;word-break:break-all}.clip-note{display:block;width:256px;color:#a60}
.scores{font-size:11px;margin-top:.3em}.scores th{font-weight:normal;text-align:left}
.failed{width:256px;color:#b00;font-size:12px}
"""

JS = """
(function(){
  function cellValue(row, i){
    var t = row.cells[i] ? row.cells[i].textContent.trim() : "";
    var n = parseFloat(t);
    return {empty: t === "", num: isNaN(n) ? null : n, text: t};
  }
  function sortTable(table, index, descending){
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = cellValue(a, index), y = cellValue(b, index);
      if (x.empty !== y.empty) return x.empty ? 1 : -1;
      var c = (x.num !== null && y.num !== null) ? x.num - y.num : x.text.localeCompare(y.text);
      return descending ? -c : c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, i){
      if (i === index) th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
  }
  document.querySelectorAll("table.sortable").forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, i){
      th.addEventListener("click", function(){
        sortTable(table, i, th.getAttribute("aria-sort") === "ascending");
      });
    });
  });
  var hash = location.hash || "";
  try { hash = decodeURIComponent(hash); } catch (e) {}  // a mangled link must not stop the page's scripts
  var m = /^#sort=(-?)(.+)$/.exec(hash);
  var board = document.getElementById("leaderboard");
  if (m && board) {
    Array.prototype.forEach.call(board.tHead.rows[0].cells, function(th, i){
      if (th.dataset.col === m[2]) sortTable(board, i, m[1] === "-");
    });
  }
  function applyFilters(){
    var cat = document.getElementById("category-filter").value;
    var shown = {};
    document.querySelectorAll(".model-filter").forEach(function(b){ shown[b.value] = b.checked; });
    document.querySelectorAll(".case").forEach(function(s){
      s.hidden = cat !== "" && s.dataset.category !== cat;
    });
    document.querySelectorAll("[data-model]").forEach(function(el){
      el.hidden = shown[el.dataset.model] === false;
    });
  }
  var select = document.getElementById("category-filter");
  if (select) {
    select.addEventListener("change", applyFilters);
    document.querySelectorAll(".model-filter").forEach(function(b){ b.addEventListener("change", applyFilters); });
  }
  var videos = document.querySelectorAll("video");
  videos.forEach(function(v){
    v.addEventListener("timeupdate", function(){ if (v.currentTime > 0) v.dataset.played = "1"; });
  });
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function(entries){
      entries.forEach(function(e){
        if (e.isIntersecting) { var p = e.target.play(); if (p && p.catch) p.catch(function(){}); }
        else e.target.pause();
      });
    });
    videos.forEach(function(v){ io.observe(v); });
  }
})();
"""


def build_report(run_dirs: Sequence[str | Path], out: str | Path, published: bool = False,
                 copy_videos: bool = False) -> tuple[Path, PlotSet]:
    """Write the report page (and its plots, PNG + SVG, into ``<report>_files/plots/``)."""
    out = Path(out)
    runs = load_runs(run_dirs)
    names = labels(runs)
    scores = ordered_scores(runs)
    board, by_category = leaderboard_tables(runs)
    extra = files_dir(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        plots = write_plots(board, by_category, scores, extra / "plots", published=published)
        media = _Media(out.parent, extra / "videos" if copy_videos else None)
        cases = _cases_html(runs, names, scores, media)
    except OSError as exc:
        raise ConfigError(f"cannot write the report next to {out}: {exc}; choose a writable path with -o") from exc
    title = "i2vbench report: " + ", ".join(names)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{esc(title)}</title><style>{CSS}</style></head>
<body>
<h1>i2vbench report</h1>
<p class="note">Runs: {esc(", ".join(f"{n} ({r.run_dir})" for n, r in zip(names, runs)))}. Scores in percent
(fractions) or their unit; empty cells: metric skipped or not scored. Group scores are the mean of the group's
fraction scores; VBench columns use VBench-I2V's normalisation and weights (see docs/reports.md).</p>
<h2>Leaderboard</h2>
<p class="note">Click a column header to sort.</p>
<div class="scroll">{_leaderboard_html(board, scores)}</div>
{"".join(f'<p class="note warn">{esc(note)}</p>' for note in caveats(runs, names))}
{f'<div class="scroll">{_published_html()}</div>' if published else ""}
<h2>Plots</h2>
{_plots_html(plots, out.parent)}
<h2>Cases</h2>
{cases}
<script>{JS}</script>
</body></html>
"""
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}; choose a writable path with -o") from exc
    return out, plots
