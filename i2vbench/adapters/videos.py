"""Score videos made elsewhere: each case is matched to a file in a folder, by case id or by prompt."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, VideoError
from ..suite import Case
from ..video import VIDEO_EXTENSIONS
from .base import Adapter

_SAMPLE_SUFFIX = re.compile(r"[-_](\d+)$")
_SUPPORTED = "/".join(VIDEO_EXTENSIONS)


def normalize_prompt(text: str) -> str:
    """Prompt text as it survives in a file name: one Unicode form (macOS writes names decomposed), lower case,
    no path separators, single spaces."""
    text = unicodedata.normalize("NFC", text).lower().replace("/", " ").replace("\\", " ")
    return re.sub(r"\s+", " ", text).strip(" .")


def _key_variants(stem: str) -> list[str]:
    """The stem itself, then the stem without a VBench-style sample index ("-0", "_3")."""
    base = _SAMPLE_SUFFIX.sub("", stem)
    return [stem] if base == stem else [stem, base]


class VideosAdapter(Adapter):
    """Look up ``<dir>/<case id>.mp4`` (or ``<prompt>-0.mp4``, VBench's naming) instead of generating.

    ``match`` is ``id``, ``prompt`` or ``auto`` (id first, then prompt); ids match whatever the letter case of the
    file name (a suite's ids never differ by case alone). With several files for one case (``x-0.mp4``,
    ``x-1.mp4``) the first is used (files in the folder itself before those in subfolders, then in name order)
    and the others are listed in the report.
    """

    name = "videos"
    description = "videos generated elsewhere, matched to cases by id or prompt"
    defaults: dict[str, Any] = {"dir": None, "match": "auto"}
    default_batch_size = 64
    makes_videos = False  # frame count, size and fps are each file's own, recorded per video
    path_settings = ("dir",)

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        folder = self.settings["dir"]
        if not folder:
            raise ConfigError("the videos model needs a folder: --videos DIR (or --set dir=DIR)")
        self.folder = Path(folder).expanduser()
        if self.folder.is_file():
            raise ConfigError(f"{self.folder} is a file; --videos takes the folder that holds the videos "
                              f"(--videos {self.folder.parent})")
        if not self.folder.is_dir():
            raise ConfigError(f"videos folder {self.folder} does not exist")
        if self.settings["match"] not in ("auto", "id", "prompt"):
            raise ConfigError(f"match must be auto, id or prompt; got {self.settings['match']!r}")
        everything = sorted(self.folder.rglob("*"), key=lambda p: (len(p.parts), p))  # the folder's own files first
        self.files = [p for p in everything if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
        #: what is not read, for hints: files of other types, and folders (of frames, say)
        self.unread = [p for p in everything if p.suffix.lower() not in VIDEO_EXTENSIONS and not p.name.startswith(".")]
        self._matches: dict[str, list[Path]] | None = None

    def reads_from(self) -> list[Path]:
        return [self.folder]

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.folder))

    def source_of(self, case: Case) -> Path | None:
        paths = (self._matches or {}).get(case.id)
        return paths[0] if paths else None

    def _case_for(self, stem: str, by_id: dict[str, Case], by_prompt: dict[str, Case]) -> Case | None:
        mode = self.settings["match"]
        for key in _key_variants(stem):
            case = by_id.get(key.casefold()) if mode in ("auto", "id") else None
            if case is None and mode in ("auto", "prompt"):
                case = by_prompt.get(normalize_prompt(key))
            if case is not None:
                return case
        return None

    def _lookups(self, cases: Sequence[Case]) -> tuple[dict[str, Case], dict[str, Case]]:
        shared = self._shared_prompts(cases)
        return ({c.id.casefold(): c for c in cases},
                {normalize_prompt(c.prompt): c for c in cases if normalize_prompt(c.prompt) not in shared})

    def _match(self, cases: Sequence[Case]) -> dict[str, list[Path]]:
        by_id, by_prompt = self._lookups(cases)
        matches: dict[str, list[Path]] = {c.id: [] for c in cases}
        for path in self.files:
            if (case := self._case_for(path.stem, by_id, by_prompt)) is not None:
                matches[case.id].append(path)
        return matches

    def _unread_for(self, cases: Sequence[Case]) -> dict[str, list[Path]]:
        """For the cases without a video: files of unread types and folders named like them, what their user most
        likely meant as their videos."""
        if all(self._matches.get(c.id) for c in cases):
            return {}
        by_id, by_prompt = self._lookups(cases)
        found: dict[str, list[Path]] = {}
        for path in self.unread:
            case = self._case_for(path.stem if path.is_file() else path.name, by_id, by_prompt)
            if case is not None and not self._matches.get(case.id):
                found.setdefault(case.id, []).append(path)
        return found

    def _unread_hint(self, paths: Sequence[Path]) -> str:
        names = ", ".join(self._rel(p) + ("/" if p.is_dir() else "") for p in paths[:3])
        return (f"; found {names}, which is not read: videos are read from {_SUPPORTED} files (encode a folder of "
                "frames into one, e.g. ffmpeg -framerate 8 -i frames/%05d.png -pix_fmt yuv420p video.mp4)")

    @staticmethod
    def _shared_prompts(cases: Sequence[Case]) -> set[str]:
        """Prompts of more than one case: a file named after one cannot say which case it belongs to."""
        seen: dict[str, int] = {}
        for c in cases:
            key = normalize_prompt(c.prompt)
            seen[key] = seen.get(key, 0) + 1
        return {k for k, n in seen.items() if n > 1}

    def _naming_hint(self, case: Case) -> str:
        mode = self.settings["match"]
        by_id = f"<case id>.mp4 (e.g. {case.id}.mp4)"
        by_prompt = "<prompt>-<n>.mp4 as VBench does"
        if mode == "id":
            return f"name each file {by_id}, or match by prompt as well with --match auto"
        if mode == "prompt":
            return f"name each file {by_prompt}, or match by case id as well with --match auto"
        return f"name each file {by_id} or {by_prompt}"

    def check_cases(self, cases: Sequence[Case]) -> None:
        """At least one case must have a video, or the folder (or the suite) is the wrong one."""
        self._matches = self._match(cases)
        if cases and not any(self._matches.values()):
            seen = ", ".join(map(self._rel, self.files[:3]))
            if not seen:
                others = ", ".join(map(self._rel, self.unread[:3]))
                seen = f"no {_SUPPORTED} files" + (f"; other entries: {others}" if others else "")
            raise ConfigError(f"no video in {self.folder} matches any of the {len(cases)} cases (found: {seen}); "
                              f"{self._naming_hint(cases[0])}, or pick the suite the videos were made for with --suite")

    def prepare(self, cases: Sequence[Case]) -> dict[str, Any]:
        self.check_cases(cases)
        matched = {p for paths in self._matches.values() for p in paths}
        rel = self._rel
        return {
            "folder": str(self.folder),
            "matched": sum(1 for paths in self._matches.values() if paths),
            "cases_without_video": sorted(cid for cid, paths in self._matches.items() if not paths),
            "videos_matching_no_case": [rel(p) for p in self.files if p not in matched],
            "extra_videos_ignored": {cid: {"used": rel(paths[0]), "ignored": [rel(p) for p in paths[1:]]}
                                     for cid, paths in self._matches.items() if len(paths) > 1},
            "prompts_shared_by_several_cases": sorted(self._shared_prompts(cases)),
            "not_read": {cid: [rel(p) for p in paths] for cid, paths in self._unread_for(cases).items()},
        }

    def generate(self, cases: Sequence[Case], *, seeds: Sequence[int]) -> list[Path]:
        if self._matches is None:
            self.check_cases(cases)
        unread = self._unread_for(cases)
        out = []
        for case in cases:
            paths = self._matches.get(case.id) or []
            if not paths:
                hint = self._unread_hint(unread[case.id]) if case.id in unread else f"; {self._naming_hint(case)}"
                raise VideoError(f"no video in {self.folder} matches case {case.id!r} (by id or prompt){hint}")
            out.append(paths[0])
        return out
