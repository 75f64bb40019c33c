"""Score videos made elsewhere: each case is matched to a file in a folder, by case id or by prompt."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, VideoError
from ..suite import Case
from ..video import VIDEO_EXTENSIONS
from .base import Adapter

_SAMPLE_SUFFIX = re.compile(r"[-_](\d+)$")


def normalize_prompt(text: str) -> str:
    """Prompt text as it survives in a file name: lower case, no path separators, single spaces."""
    text = text.lower().replace("/", " ").replace("\\", " ")
    return re.sub(r"\s+", " ", text).strip(" .")


def _key_variants(stem: str) -> list[str]:
    """The stem itself, then the stem without a VBench-style sample index ("-0", "_3")."""
    base = _SAMPLE_SUFFIX.sub("", stem)
    return [stem] if base == stem else [stem, base]


class VideosAdapter(Adapter):
    """Look up ``<dir>/<case id>.mp4`` (or ``<prompt>-0.mp4``, VBench's naming) instead of generating.

    ``match`` is ``id``, ``prompt`` or ``auto`` (id first, then prompt). With several files for one case
    (``x-0.mp4``, ``x-1.mp4``) the first in name order is used and the others are listed in the report.
    """

    name = "videos"
    description = "videos generated elsewhere, matched to cases by id or prompt"
    defaults: dict[str, Any] = {"dir": None, "match": "auto"}
    default_batch_size = 64
    makes_videos = False  # frame count, size and fps are each file's own, recorded per video

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        folder = self.settings["dir"]
        if not folder:
            raise ConfigError("the videos model needs a folder: --videos DIR (or --set dir=DIR)")
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise ConfigError(f"videos folder {self.folder} does not exist")
        if self.settings["match"] not in ("auto", "id", "prompt"):
            raise ConfigError(f"match must be auto, id or prompt; got {self.settings['match']!r}")
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        self._matches: dict[str, list[Path]] | None = None

    def _match(self, cases: Sequence[Case]) -> dict[str, list[Path]]:
        by_id = {c.id: c for c in cases}
        shared = self._shared_prompts(cases)
        by_prompt = {normalize_prompt(c.prompt): c for c in cases if normalize_prompt(c.prompt) not in shared}
        mode = self.settings["match"]
        matches: dict[str, list[Path]] = {c.id: [] for c in cases}
        for path in self.files:
            for key in _key_variants(path.stem):
                case = by_id.get(key) if mode in ("auto", "id") else None
                if case is None and mode in ("auto", "prompt"):
                    case = by_prompt.get(normalize_prompt(key))
                if case is not None:
                    matches[case.id].append(path)
                    break
        return matches

    @staticmethod
    def _shared_prompts(cases: Sequence[Case]) -> set[str]:
        """Prompts of more than one case: a file named after one cannot say which case it belongs to."""
        seen: dict[str, int] = {}
        for c in cases:
            key = normalize_prompt(c.prompt)
            seen[key] = seen.get(key, 0) + 1
        return {k for k, n in seen.items() if n > 1}

    def check_cases(self, cases: Sequence[Case]) -> None:
        """At least one case must have a video, or the folder (or the suite) is the wrong one."""
        self._matches = self._match(cases)
        used = {p for paths in self._matches.values() for p in paths[:1]}
        if cases and not used:
            seen = ", ".join(p.name for p in self.files[:3]) or "no video files at all"
            raise ConfigError(f"no video in {self.folder} matches any of the {len(cases)} cases (found: {seen}). Name "
                              f"each file <case id>.mp4 (e.g. {cases[0].id}.mp4) or <prompt>-<n>.mp4 as VBench does, "
                              "or pick the suite the videos were made for with --suite")

    def prepare(self, cases: Sequence[Case]) -> dict[str, Any]:
        self.check_cases(cases)
        used = {p for paths in self._matches.values() for p in paths[:1]}
        matched = {p for paths in self._matches.values() for p in paths}
        return {
            "folder": str(self.folder),
            "matched": len(used),
            "cases_without_video": sorted(cid for cid, paths in self._matches.items() if not paths),
            "videos_matching_no_case": [str(p.relative_to(self.folder)) for p in self.files if p not in matched],
            "extra_videos_ignored": {cid: [p.name for p in paths[1:]] for cid, paths in self._matches.items() if len(paths) > 1},
            "prompts_shared_by_several_cases": sorted(self._shared_prompts(cases)),
        }

    def generate(self, cases: Sequence[Case], *, seeds: Sequence[int]) -> list[Path]:
        if self._matches is None:
            self.prepare(cases)
        out = []
        for case in cases:
            paths = self._matches.get(case.id) or []
            if not paths:
                raise VideoError(f"no video in {self.folder} matches case {case.id!r} (by id or prompt)")
            out.append(paths[0])
        return out
