"""Benchmark suites: cases (image + prompt + labels) read from JSONL manifests, validated, and imported.

A suite folder is ``<root>/prompts/<name>.jsonl`` plus ``<root>/reference_images/...``; image paths in the
manifest are relative to ``<root>`` and may not leave it. Every problem in a manifest is reported at once, each
as ``<manifest>:<line>: field '<name>': what is wrong; how to fix``. The importers turn other benchmarks'
layouts (a folder of images, VBench-I2V, I2V-Bench) into such a folder; ``docs/suites.md`` describes them.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import video
from .errors import SuiteError, VideoError

REQUIRED_FIELDS = ("id", "image", "prompt", "category")
OPTIONAL_FIELDS = ("object", "scene", "licence", "source")
MANIFEST_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
SUITE_PATH_ENV = "I2VBENCH_SUITE_PATH"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MIN_SHORT_SIDE = 256
MAX_ID_LENGTH = 100
_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Case:
    """One benchmark case: a reference image (absolute path), the prompt for the video, and its labels."""

    id: str
    image: Path
    prompt: str
    category: str
    object: str | None = None
    scene: str | None = None
    licence: str | None = None
    source: str | None = None

    def load_image(self) -> np.ndarray:
        """The reference image as uint8 RGB ``[H, W, 3]``."""
        return video.load_image(self.image)


class ManifestError(SuiteError):
    """A manifest or importer input with one or more problems; ``problems`` lists each one."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = list(problems)
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        super().__init__(f"{what}: {count}:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class Suite:
    """An ordered list of cases read from one manifest, with the categories the suite declares (if any)."""

    name: str
    root: Path
    manifest: Path
    cases: list[Case]
    categories: list[str] | None = None
    _by_id: dict[str, Case] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id = {case.id: case for case in self.cases}

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    @property
    def known_categories(self) -> list[str]:
        """The declared categories, or else those the cases use."""
        return list(self.categories) if self.categories is not None else sorted({c.category for c in self.cases})

    def get(self, case_id: str) -> Case:
        """The case with this id; an unknown id is a SuiteError naming close matches."""
        try:
            return self._by_id[case_id]
        except KeyError:
            raise _unknown("case id", case_id, list(self._by_id), f"in suite {self.name!r}") from None

    def select(self, ids: list[str] | None = None, categories: list[str] | None = None,
               exclude: list[str] | None = None) -> Suite:
        """The cases with the given ids and/or categories, both when both are given (manifest order kept), less
        those in ``exclude``; unknown names are errors, and so is a selection that leaves no case (a run of
        nothing would pass for a result)."""
        cases = self.cases
        if ids is not None:
            wanted = {self.get(case_id).id for case_id in ids}
            cases = [c for c in cases if c.id in wanted]
        if categories is not None:
            known = self.known_categories
            for category in categories:
                if category not in known:
                    raise _unknown("category", category, known, f"in suite {self.name!r}")
            cases = [c for c in cases if c.category in categories]
        if not cases and ids is not None and categories is not None:
            raise SuiteError(f"no case of suite {self.name!r} is both among the cases {', '.join(ids)} and in the "
                             f"categories {', '.join(categories)}: widen --cases or --categories, or give one of them")
        if not cases and categories is not None:
            raise SuiteError(f"suite {self.name!r} has no case in the categories {', '.join(categories)}")
        if exclude is not None:
            dropped = {self.get(case_id).id for case_id in exclude}
            cases = [c for c in cases if c.id not in dropped]
            if not cases:
                raise SuiteError(f"--exclude-cases leaves no case of suite {self.name!r} to run")
        return Suite(self.name, self.root, self.manifest, list(cases), self.categories)


def _unknown(kind: str, name: str, known: list[str], where: str) -> SuiteError:
    """An unknown name, with the close matches and (the first 30 of) the known ones."""
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = sorted(known)[:30]
    more = f" ... and {len(known) - len(shown)} more" if len(known) > len(shown) else ""
    return SuiteError(f"unknown {kind} {name!r} {where}{hint}; known: {', '.join(shown) or '(none)'}{more}")


# ----------------------------------------------------------------------------------------------------------
# Finding and loading suites


def builtin_suite_dirs() -> list[Path]:
    """Folders searched for suites by name: the repository's ``prompts/``, then each folder in $I2VBENCH_SUITE_PATH."""
    dirs = [Path(__file__).resolve().parents[1] / "prompts"]
    dirs += [Path(p).expanduser() for p in os.environ.get(SUITE_PATH_ENV, "").split(os.pathsep) if p.strip()]
    return dirs


def list_suites() -> dict[str, Path]:
    """Suite name -> manifest path, for every ``*.jsonl`` in (or under ``prompts/`` of) a suite folder; first wins."""
    found: dict[str, Path] = {}
    for folder in builtin_suite_dirs():
        for manifest in sorted(folder.glob("*.jsonl")) + sorted(folder.glob("prompts/*.jsonl")):
            found.setdefault(manifest.stem, manifest.resolve())
    return found


def suite_root(manifest: Path) -> Path:
    """The folder image paths are relative to: the manifest's folder, or its parent when that is ``prompts/``."""
    folder = manifest.resolve().parent
    return folder.parent if folder.name == "prompts" else folder


def find_manifest(spec: str | Path) -> Path:
    """Resolve a suite name, a ``.jsonl`` path, or a suite folder to the manifest path."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        manifests = sorted(path.glob("prompts/*.jsonl")) or sorted(path.glob("*.jsonl"))
        if len(manifests) == 1:
            return manifests[0].resolve()
        found = ", ".join(m.name for m in manifests) if manifests else "no .jsonl file"
        raise SuiteError(
            f"suite folder {path} should hold exactly one manifest prompts/<name>.jsonl; found {found}. "
            "Pass the manifest path itself instead."
        )
    suites = list_suites()
    if str(spec) in suites:
        return suites[str(spec)]
    if path.suffix == ".jsonl" or os.sep in str(spec):
        raise SuiteError(f"suite manifest not found: {path}")
    error = _unknown("suite", str(spec), list(suites), "on the suite search path")
    raise SuiteError(
        f"{error}. Give a built-in name, a path to a .jsonl manifest, or a suite folder; "
        f"more folders can be listed in ${SUITE_PATH_ENV}"
    )


def recorded_manifest(config: dict, override: str | Path | None = None) -> Path:
    """The manifest a run was made on (``config``: the run's stored configuration): ``override`` when given,
    else the path the run recorded, else, where the suite or the run folder has moved, the suite's name on the
    search path; in each case only if its bytes are those the run recorded."""
    generation = config.get("generation", {})
    recorded = generation.get("suite_manifest_sha256")
    where = config.get("suite_manifest") or "?"
    candidates = [override] if override else [config.get("suite_manifest"), generation.get("suite")]
    changed = None
    for spec in filter(None, candidates):
        try:
            path = find_manifest(spec)
        except SuiteError:
            continue
        if not recorded or video.file_sha256(path) == recorded:
            return path
        changed = changed or path
    if changed is not None:
        raise SuiteError(f"the suite manifest {changed} changed since the run was made: its prompts or labels may no "
                         "longer be those of the videos. Restore it, or make the videos again with 'i2vbench run' "
                         "(another --out folder, or --force to discard this one)")
    raise SuiteError(f"the run's suite manifest {override or where} is not there (moved, or the run folder was copied "
                     "from another machine); give its place with --suite")


def load_suite(spec: str | Path, check_images: bool = True) -> Suite:
    """Load a suite by name, manifest path or folder, checking every line; any problem raises a ManifestError.

    ``check_images`` checks that each image exists and opens its header (cheap); ``validate_suite`` decodes
    every image in full. The runner loads with ``check_images=False``: a missing or broken image then fails
    its own case, with the reason recorded, and the rest of the run goes on. A path leaving the root is
    always an error.
    """
    return _load(find_manifest(spec), "header" if check_images else None)[0]


def validate_suite(spec: str | Path) -> tuple[Suite, list[str]]:
    """Load a suite and decode every image; return it with warnings, or raise listing every problem found."""
    return _load(find_manifest(spec), "decode")


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSON-lines text: split at line feeds only (``str.splitlines`` also splits at U+2028, U+0085
    and other characters that JSON strings may hold as they are), a carriage return before one dropped."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _load(manifest: Path, check: str | None) -> tuple[Suite, list[str]]:
    try:
        text = manifest.read_text(encoding="utf-8-sig")  # a byte-order mark, as some editors write, is no case
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read suite manifest {manifest}: {exc}") from exc
    checker = _ManifestCheck(manifest, check)
    cases = []
    for lineno, line in enumerate(jsonl_lines(text), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            case = checker.line(lineno, line)
            if case is not None:
                cases.append(case)
    if not cases and not checker.problems:
        checker.problems.append(f"{manifest}: the manifest holds no cases; add one JSON object a line")
    if checker.problems:
        raise ManifestError(f"suite manifest {manifest}", checker.problems)
    return Suite(manifest.stem, checker.root, manifest, cases, checker.categories), checker.warnings


class _ManifestCheck:
    """Checks manifest lines one by one, collecting every problem and warning (with file:line:field)."""

    def __init__(self, manifest: Path, check: str | None) -> None:
        self.manifest, self.check = manifest, check
        self.root = suite_root(manifest)
        self.sidecar = manifest.with_name(f"{manifest.stem}.categories.txt")
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.first_line: dict[str, int] = {}
        self.folded: dict[str, str] = {}  # casefolded id -> the id
        self.pairs: dict[tuple[Path, str], int] = {}
        self.categories = self._read_categories()

    def _read_categories(self) -> list[str] | None:
        """The optional sidecar ``<stem>.categories.txt``: one allowed category a line (``#`` comments allowed)."""
        if not self.sidecar.is_file():
            return None
        lines = [ln.strip() for ln in self.sidecar.read_text(encoding="utf-8").splitlines()]
        categories = list(dict.fromkeys(ln for ln in lines if ln and not ln.startswith("#")))
        if not categories:
            self.problems.append(
                f"{self.sidecar}:1: the categories file lists no category; add one a line or delete it"
            )
        return categories or None

    def line(self, lineno: int, text: str) -> Case | None:
        """Check one manifest line; return its Case when it is sound."""
        where = f"{self.manifest}:{lineno}"
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            self.problems.append(
                f"{where}: invalid JSON at column {exc.colno} ({exc.msg}); write one JSON object a line"
            )
            return None
        if not isinstance(record, dict):
            self.problems.append(f'{where}: expected a JSON object {{"id": ..., ...}}, found {type(record).__name__}')
            return None
        before = len(self.problems)
        for name in sorted(set(record) - set(MANIFEST_FIELDS)):
            close = difflib.get_close_matches(name, MANIFEST_FIELDS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed fields: {', '.join(MANIFEST_FIELDS)}"
            self.problems.append(f"{where}: field {name!r}: unknown field; {hint}")
        values = {name: self._string(record.get(name), name, where, name in record) for name in MANIFEST_FIELDS}
        self._check_id(values["id"], lineno, where)
        self._check_category(values["category"], where)
        image = self._image(values.pop("image"), where) if values["image"] is not None else None
        if len(self.problems) > before or image is None:
            return None
        if values["licence"] is None:
            self.warnings.append(
                f"{where}: field 'licence': none recorded; add the image's licence so results can be shared"
            )
        pair = (image, values["prompt"])
        if pair in self.pairs:
            self.warnings.append(
                f"{where}: same image and prompt as line {self.pairs[pair]}; the two cases are redundant"
            )
        self.pairs.setdefault(pair, lineno)
        return Case(image=image, **values)

    def _string(self, value: object, name: str, where: str, present: bool = False) -> str | None:
        """A field's text; None (with a problem when the field is required or malformed) otherwise."""
        required = name in REQUIRED_FIELDS
        if value is None:
            if required:
                what = "null, not a string" if present else "missing"
                self.problems.append(f"{where}: field {name!r}: {what}; every case needs {', '.join(REQUIRED_FIELDS)}")
        elif not isinstance(value, str):
            self.problems.append(f"{where}: field {name!r}: must be a string, found {type(value).__name__} {value!r}")
        elif not value.strip():
            what = "empty or whitespace-only prompt" if name == "prompt" else "empty"
            fix = "write the text" if required else "give a value or remove the field"
            self.problems.append(f"{where}: field {name!r}: {what}; {fix}")
        else:
            return value
        return None

    def _check_id(self, case_id: str | None, lineno: int, where: str) -> None:
        if case_id is None:
            return
        if not (_ID_RE.fullmatch(case_id) and len(case_id) <= MAX_ID_LENGTH):
            self.problems.append(
                f"{where}: field 'id': {case_id!r} is not safe as a file name; use at most {MAX_ID_LENGTH} of "
                f"A-Z a-z 0-9 . _ - (not starting with '.'), e.g. {sanitize_id(case_id)!r}"
            )
        elif case_id in self.first_line:
            self.problems.append(
                f"{where}: field 'id': duplicate id {case_id!r}, also on line {self.first_line[case_id]}; "
                "give every case a unique id"
            )
        elif (twin := self.folded.get(case_id.casefold())) is not None:
            self.problems.append(
                f"{where}: field 'id': {case_id!r} differs from {twin!r} (line {self.first_line[twin]}) only in "
                "letter case; their videos would be one file on macOS and Windows disks; rename one"
            )
        else:
            self.first_line[case_id] = lineno
            self.folded[case_id.casefold()] = case_id

    def _check_category(self, category: str | None, where: str) -> None:
        if category is None or self.categories is None or category in self.categories:
            return
        close = difflib.get_close_matches(category, self.categories, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        self.problems.append(
            f"{where}: field 'category': {category!r} is not declared in {self.sidecar.name}; {hint}"
            f"declared: {', '.join(self.categories)}; fix the typo or add the category there"
        )

    def _image(self, image: str, where: str) -> Path | None:
        """The image's path inside the root; a path that leaves it, a missing or unreadable file is a problem."""
        root = self.root
        if os.path.isabs(image) or re.match(r"^[A-Za-z]:[\\/]", image):
            self.problems.append(
                f"{where}: field 'image': absolute path {image!r}; give a path relative to the suite root {root}"
            )
            return None
        path = Path(os.path.normpath(root / image))
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            self.problems.append(
                f"{where}: field 'image': {image!r} leaves the suite root {root} (resolves to {resolved}); "
                "copy the image under reference_images/ and point at it there"
            )
            return None
        if self.check is None:
            return path
        if not path.is_file():
            self.problems.append(f"{where}: field 'image': file not found: {path}; check the name or add the file")
            return None
        problem = _image_problem(path, decode=self.check == "decode")
        if problem:
            self.problems.append(f"{where}: field 'image': {problem}; replace it with a valid PNG or JPEG")
            return None
        if self.check == "decode":
            with Image.open(path) as im:
                if min(im.size) < MIN_SHORT_SIDE:
                    self.warnings.append(
                        f"{where}: field 'image': {im.size[0]}x{im.size[1]} is below {MIN_SHORT_SIDE} px on the "
                        "short side; models will upsample it"
                    )
        return path


def _image_problem(path: Path, decode: bool) -> str | None:
    """None when ``path`` opens as an image (and, with ``decode``, decodes in full), else what is wrong with it."""
    try:
        with Image.open(path) as im:
            if decode:
                im.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        return f"image {path} cannot be decoded ({exc})"
    return None


# ----------------------------------------------------------------------------------------------------------
# Writing suites (shared by the importers)


def sanitize_id(text: str) -> str:
    """A file-name-safe case id from any text: unsafe runs become ``_``, at most MAX_ID_LENGTH characters."""
    cleaned = _UNSAFE_ID_CHARS.sub("_", text).strip("._-")[:MAX_ID_LENGTH].rstrip("._-")
    return cleaned or "case"


class _IdMaker:
    """Unique case ids: from an explicit id, or from an image stem; a further prompt for the same image
    gets the words in which it differs from the first as a suffix (``stem--camera_pans_left``). Unique even where
    letter case is ignored (``X`` and ``x`` would be one video file on macOS and Windows disks)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()  # casefolded
        self.first_prompt: dict[str, str] = {}

    def make(self, stem: str, prompt: str, wanted: str | None = None) -> str | None:
        """A new id, or None when an explicit ``wanted`` id is already taken."""
        if wanted:
            case_id = sanitize_id(wanted)
            return case_id if self._claim(case_id) else None
        base = sanitize_id(stem)
        first = self.first_prompt.setdefault(base, prompt)
        if first != prompt:
            n = len(os.path.commonprefix([first, prompt]))
            if not (n == len(first) and not prompt[n : n + 1].isalnum()):
                while n and prompt[n - 1].isalnum():
                    n -= 1
            suffix = sanitize_id(prompt[n:])[:40]
            base = f"{base[: MAX_ID_LENGTH - len(suffix) - 2]}--{suffix}"
        case_id, count = base, 1
        while not self._claim(case_id):
            count += 1
            case_id = f"{base[: MAX_ID_LENGTH - 4]}-{count}"
        return case_id

    def _claim(self, case_id: str) -> bool:
        """Take ``case_id`` if no id taken so far equals it up to letter case."""
        if case_id.casefold() in self.taken:
            return False
        self.taken.add(case_id.casefold())
        return True


def _prepare_output(out_dir: str | Path, name: str, overwrite: bool) -> tuple[Path, Path]:
    """Check the suite name and output folder; return (manifest path, image folder). Nothing is created yet."""
    if not _ID_RE.fullmatch(name):
        raise SuiteError(
            f"suite name {name!r} is not safe as a file name; use A-Z a-z 0-9 . _ -, e.g. {sanitize_id(name)!r}"
        )
    out = Path(out_dir).expanduser().resolve()
    manifest = out / "prompts" / f"{name}.jsonl"
    if manifest.exists() and not overwrite:
        raise SuiteError(
            f"suite manifest {manifest} already exists; choose another name or pass overwrite=True (--overwrite)"
        )
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SuiteError(f"cannot write the suite into {out}: {existing} is not a writable folder; choose another one")
    return manifest, out / "reference_images" / name


def _write_manifest(manifest: Path, records: list[dict]) -> Path:
    """Write records as JSONL (atomically), then load the suite to prove it valid; return the manifest path."""
    text = "".join(
        json.dumps({k: r[k] for k in MANIFEST_FIELDS if r.get(k) is not None}, ensure_ascii=False) + "\n"
        for r in records
    )
    with video.atomic_path(manifest) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    load_suite(manifest)
    return manifest


def _unique_file_name(name: str, taken: set[str]) -> str:
    """A file-name-safe copy of ``name``, unlike every name in ``taken`` (casefolded) even on a disk that ignores
    letter case: names that differ only in what sanitising drops get a short digest of the original name."""
    stem, suffix = sanitize_id(Path(name).stem), Path(name).suffix.lower()
    if f"{stem}{suffix}".casefold() not in taken:
        return f"{stem}{suffix}"
    digest = hashlib.sha256(name.encode()).hexdigest()
    for length in range(8, len(digest) + 1):
        candidate = f"{stem[:MAX_ID_LENGTH - length - 1]}-{digest[:length]}{suffix}"
        if candidate.casefold() not in taken:
            return candidate
    raise SuiteError(f"no unique file name for {name!r}")  # 64 hex digits all taken: not in this universe


def _relative(path: Path, manifest: Path) -> str:
    """``path`` relative to the suite root of ``manifest``, as a manifest writes it."""
    return path.relative_to(suite_root(manifest)).as_posix()


def _copy(src: Path, dst: Path) -> None:
    if dst.exists() and dst.resolve() == src.resolve():
        return
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise SuiteError(f"cannot copy {src} to {dst}: {exc.strerror}") from exc


def _raise_problems(what: str, problems: list[str]) -> None:
    if problems:
        raise ManifestError(what, problems)


# ----------------------------------------------------------------------------------------------------------
# Reading tables of prompts (CSV, JSONL, JSON) for the importers; each row comes with where it was found


def _read_rows(path: Path, expected: str, mapping: tuple[str, str] | None = None) -> list[tuple[str, dict]]:
    """(location, row) pairs from a CSV with a header, a JSONL file, or a JSON list of objects.

    With ``mapping=(key_column, value_column)`` a JSON object ``{key: value or {...}}`` is read as rows too.
    Column names are lower-cased.
    """
    if not path.is_file():
        raise SuiteError(f"file not found: {path}; expected {expected}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read {path}: {exc}; expected a UTF-8 text file with {expected}") from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            raise SuiteError(f"{path}: empty CSV; expected a header row and {expected}")
        rows = []
        for row in reader:
            if None in row:
                raise SuiteError(f"{path}:{reader.line_num}: more cells than header columns {reader.fieldnames}")
            rows.append((f"{path}:{reader.line_num}", {k.strip().lower(): (v or "").strip() for k, v in row.items()}))
        return rows
    if suffix == ".jsonl":
        rows, problems = [], []
        for lineno, line in enumerate(jsonl_lines(text), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{lineno}: invalid JSON at column {exc.colno} ({exc.msg}); expected {expected}")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path}:{lineno}: found a JSON {type(row).__name__}; expected an object a line")
                continue
            rows.append((f"{path}:{lineno}", {str(k).strip().lower(): v for k, v in row.items()}))
        _raise_problems(f"cannot read {path}", problems)
        return rows
    if suffix != ".json":
        raise SuiteError(f"{path} has suffix {suffix!r}; expected .csv, .jsonl or .json with {expected}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); expected {expected}") from exc
    if isinstance(data, dict) and mapping is not None:
        key_column, value_column = mapping
        return [
            (
                f"{path}: key {key!r}",
                {key_column: key, **_lower(value if isinstance(value, dict) else {value_column: value})},
            )
            for key, value in data.items()
        ]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        found = f"a JSON {type(data).__name__}" + (" holding non-objects" if isinstance(data, list) else "")
        raise SuiteError(f"{path}: found {found}; expected {expected}")
    return [(f"{path}: entry {i}", _lower(row)) for i, row in enumerate(data, start=1)]


def _lower(row: dict) -> dict:
    return {str(k).strip().lower(): v for k, v in row.items()}


def _column(row: dict, names: Iterable[str]) -> str | None:
    """The first non-empty text among ``names`` in a row."""
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _required(where: str, row: dict, columns: dict[str, tuple[str, ...]], expected: str) -> list[str] | str:
    """The values of the required columns (each found under any of its names), or the problem naming those missing."""
    values = [_column(row, names) for names in columns.values()]
    missing = [label for label, value in zip(columns, values, strict=True) if value is None]
    if missing:
        found = ", ".join(k for k in row if row[k]) or "nothing"
        return f"{where}: no {' and '.join(missing)}; found {found}; expected {expected}"
    return values


def _check_columns(what: str, rows: list[tuple[str, dict]], accepted: list[str], expected: str) -> None:
    """Refuse columns an importer does not understand (a misspelt one would silently lose data). A CSV's columns are
    its header's, so that is the line named."""
    problems: dict[str, str] = {}
    for where, row in rows:
        unknown = sorted(set(row) - set(accepted))
        if unknown:
            where = re.sub(r"(\.csv):\d+$", r"\1:1 (the header)", where)
            problems.setdefault(where, f"{where}: unknown column(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    _raise_problems(f"{what} (expected {expected})", list(problems.values())[:5])


def _labels(row: dict) -> dict[str, str | None]:
    """The optional manifest fields of an importer row (``license`` accepted for ``licence``)."""
    return {
        "object": _column(row, ("object",)),
        "scene": _column(row, ("scene",)),
        "licence": _column(row, ("licence", "license")),
        "source": _column(row, ("source",)),
    }


_LABEL_COLUMNS = ["id", "category", "object", "scene", "licence", "license", "source"]

# ----------------------------------------------------------------------------------------------------------
# Importers

FOLDER_EXPECTED = (
    "one row a case with columns image (or filename) and prompt; optional: id, category, object, scene, licence, source"
)


def import_folder(
    images_dir: str | Path,
    prompts_file: str | Path,
    out_dir: str | Path,
    name: str,
    *,
    default_category: str = "uncategorized",
    overwrite: bool = False,
) -> Path:
    """Make a suite from a folder of images and a CSV/JSONL of prompts; return the written manifest.

    Images are copied to ``<out>/reference_images/<name>/`` (sub-folders kept); ids default to the image stem.
    """
    images_dir, prompts_file = Path(images_dir).expanduser().resolve(), Path(prompts_file).expanduser()
    if not images_dir.is_dir():
        raise SuiteError(f"image folder not found: {images_dir}; expected a folder holding the images")
    rows = _read_rows(prompts_file, FOLDER_EXPECTED)
    _check_columns(
        f"cannot import {prompts_file}", rows, ["image", "filename", "prompt"] + _LABEL_COLUMNS, FOLDER_EXPECTED
    )
    manifest, images_out = _prepare_output(out_dir, name, overwrite)
    problems: list[str] = []
    records: list[dict] = []
    copies: dict[Path, Path] = {}
    ids = _IdMaker()
    for where, row in rows:
        required = _required(where, row, {"image": ("image", "filename"), "prompt": ("prompt",)}, FOLDER_EXPECTED)
        if isinstance(required, str):
            problems.append(required)
            continue
        image, prompt = required
        src = (images_dir / image).resolve()
        if os.path.isabs(image) or not src.is_relative_to(images_dir):
            problems.append(
                f"{where}: column 'image': {image!r} is not inside {images_dir}; give a path relative to it"
            )
            continue
        problem = _image_problem(src, decode=False) if src.is_file() else f"file not found: {src}"
        if problem:
            problems.append(f"{where}: column 'image': {problem}")
            continue
        relative = src.relative_to(images_dir)
        case_id = ids.make(relative.with_suffix("").as_posix(), prompt, _column(row, ("id",)))
        if case_id is None:
            problems.append(
                f"{where}: column 'id': {row['id']!r} is used by an earlier row; give every case its own id"
            )
            continue
        copies[src] = images_out / relative
        records.append(
            {
                "id": case_id,
                "image": _relative(copies[src], manifest),
                "prompt": prompt,
                "category": _column(row, ("category",)) or default_category,
                **_labels(row),
            }
        )
    if not rows:
        problems.append(f"{prompts_file}: no rows; expected {FOLDER_EXPECTED}")
    _raise_problems(f"cannot import {prompts_file}", problems)
    for src, dst in copies.items():
        _copy(src, dst)
    return _write_manifest(manifest, records)


VBENCH_FIELDS = ("prompt_en", "image_name", "image_type")
VBENCH_EXPECTED = (
    "a JSON list of objects with prompt_en, image_name, image_type and dimension "
    "(VBench's vbench2_beta_i2v/vbench2_i2v_full_info.json)"
)


def import_vbench_i2v(
    info_json: str | Path,
    crops_dir: str | Path,
    out_dir: str | Path,
    name: str = "vbench-i2v",
    *,
    aspect_ratio: str = "16-9",
    dimensions: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Make a suite from VBench-I2V's ``vbench2_i2v_full_info.json`` and its crops ``<crops_dir>/<ratio>/<image_name>``.

    Entries are deduplicated by (image, prompt); ``dimensions`` keeps only entries that list one of them
    (e.g. ``["camera_motion"]``); the category is the entry's ``image_type``; ids come from the image stem.
    """
    info_json, crops_dir = Path(info_json).expanduser(), Path(crops_dir).expanduser().resolve()
    if not re.fullmatch(r"\d+-\d+", aspect_ratio):
        raise SuiteError(f"aspect ratio {aspect_ratio!r} should look like W-H, e.g. 16-9, 1-1, 8-5 or 7-4")
    ratio_dir = _vbench_ratio_dir(crops_dir, aspect_ratio)
    rows = _read_rows(info_json, VBENCH_EXPECTED)
    manifest, images_out = _prepare_output(out_dir, name, overwrite)
    problems: list[str] = []
    records: list[dict] = []
    copies: dict[str, Path] = {}
    seen: set[tuple[str, str]] = set()
    ids = _IdMaker()
    for where, entry in rows:
        missing = [f for f in VBENCH_FIELDS if not isinstance(entry.get(f), str) or not entry[f].strip()]
        if missing:
            problems.append(
                f"{where}: no {', '.join(missing)} (found keys: {', '.join(entry)}); expected {VBENCH_EXPECTED}"
            )
            continue
        listed = entry.get("dimension") or []
        if dimensions is not None and not set(dimensions) & set([listed] if isinstance(listed, str) else listed):
            continue
        image_name, prompt = entry["image_name"], entry["prompt_en"].strip()
        if (image_name, prompt) in seen:
            continue
        seen.add((image_name, prompt))
        if image_name not in copies:
            src = ratio_dir / image_name
            problem = _image_problem(src, decode=False) if src.is_file() else f"file not found: {src}"
            if problem:
                problems.append(f"{where}: image_name: {problem}")
                continue
            copies[image_name] = images_out / _unique_file_name(image_name, {d.name.casefold() for d in copies.values()})
        records.append(
            {
                "id": ids.make(Path(image_name).stem, prompt),
                "image": _relative(copies[image_name], manifest),
                "prompt": prompt,
                "category": entry["image_type"].strip(),
                "source": f"VBench-I2V (github.com/Vchitect/VBench) crop {aspect_ratio}: {image_name}",
            }
        )
    if not records and not problems:
        which = f" listing dimension {' or '.join(dimensions)}" if dimensions else ""
        problems.append(f"{info_json}: no entries{which}; expected {VBENCH_EXPECTED}")
    _raise_problems(f"cannot import VBench-I2V from {info_json}", problems)
    for image_name, dst in copies.items():
        _copy(ratio_dir / image_name, dst)
    return _write_manifest(manifest, records)


def _vbench_ratio_dir(crops_dir: Path, aspect_ratio: str) -> Path:
    """``<crops_dir>/<ratio>``, or an error that says which ratio folders exist and where the crops usually are."""
    expected = (
        "<crops_dir>/<ratio>/<image_name> with ratios like 1-1, 8-5, 7-4, 16-9 (VBench's vbench2_beta_i2v/data/crop)"
    )
    if not crops_dir.is_dir():
        raise SuiteError(f"crop folder not found: {crops_dir}; expected {expected}")
    ratio_dir = crops_dir / aspect_ratio
    if ratio_dir.is_dir():
        return ratio_dir
    ratios = sorted(p.name for p in crops_dir.iterdir() if p.is_dir() and re.fullmatch(r"\d+-\d+", p.name))
    if ratios:
        found = f"ratio folders {', '.join(ratios)}"
    elif (crops_dir / "crop").is_dir():
        found = f"no ratio folder, but {crops_dir / 'crop'} exists: pass that folder"
    elif any(p.suffix.lower() in IMAGE_EXTENSIONS for p in crops_dir.iterdir()):
        found = "images directly inside it: pass the folder that holds the ratio folders"
    else:
        found = "no ratio folder"
    raise SuiteError(f"{crops_dir} has no folder {aspect_ratio}/ (found {found}); expected {expected}")


I2VBENCH_EXPECTED = (
    "a CSV or JSONL with columns video (or filename, file) and caption (or prompt), optional id, category, object, "
    "scene, licence, source; or a JSON list of such objects; or a JSON object {video file name: caption} or "
    "{video file name: {caption, category, ...}}"
)


def import_i2vbench(
    videos_dir: str | Path,
    captions_file: str | Path,
    out_dir: str | Path,
    name: str = "i2v-bench",
    *,
    height: int = 256,
    width: int = 256,
    default_category: str = "uncategorized",
    overwrite: bool = False,
) -> Path:
    """Make a suite from I2V-Bench-style videos + captions: each video's first frame, fitted to height x width, as PNG.

    A caption names its video by file name (``clip.mp4``, relative to ``videos_dir``) or by stem (``clip``);
    ids default to the video stem.
    """
    videos_dir, captions_file = Path(videos_dir).expanduser().resolve(), Path(captions_file).expanduser()
    if height < 1 or width < 1:
        raise SuiteError(f"height and width must be positive; got {height}x{width}")
    if not videos_dir.is_dir():
        raise SuiteError(
            f"video folder not found: {videos_dir}; expected a folder of {'/'.join(video.VIDEO_EXTENSIONS)} files"
        )
    videos = {
        p.relative_to(videos_dir).as_posix(): p
        for p in sorted(videos_dir.rglob("*"))
        if p.suffix.lower() in video.VIDEO_EXTENSIONS and p.is_file()
    }
    by_stem = {str(Path(n).with_suffix("")): p for n, p in videos.items()}
    rows = _read_rows(captions_file, I2VBENCH_EXPECTED, mapping=("video", "caption"))
    columns = ["video", "filename", "file", "caption", "prompt"] + _LABEL_COLUMNS
    _check_columns(f"cannot import {captions_file}", rows, columns, I2VBENCH_EXPECTED)
    manifest, images_out = _prepare_output(out_dir, name, overwrite)
    problems: list[str] = []
    records: list[dict] = []
    frames: list[tuple[Path, Path, str]] = []
    ids = _IdMaker()
    for where, row in rows:
        columns = {"video": ("video", "filename", "file"), "caption": ("caption", "prompt")}
        required = _required(where, row, columns, I2VBENCH_EXPECTED)
        if isinstance(required, str):
            problems.append(required)
            continue
        ref, caption = required
        src = videos.get(ref) or by_stem.get(ref)
        if src is None:
            near = difflib.get_close_matches(ref, list(videos), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"it holds {len(videos)} video file(s)"
            problems.append(f"{where}: video {ref!r} not found in {videos_dir}; {hint}")
            continue
        case_id = ids.make(src.relative_to(videos_dir).with_suffix("").as_posix(), caption, _column(row, ("id",)))
        if case_id is None:
            problems.append(
                f"{where}: column 'id': {row['id']!r} is used by an earlier row; give every case its own id"
            )
            continue
        image = images_out / f"{case_id}.png"
        frames.append((src, image, where))
        labels = {k: v for k, v in _labels(row).items() if v is not None}
        records.append(
            {
                "id": case_id,
                "image": _relative(image, manifest),
                "prompt": caption,
                "category": _column(row, ("category",)) or default_category,
                "source": f"I2V-Bench video {src.name}, first frame",
                **labels,
            }
        )
    if not rows:
        problems.append(f"{captions_file}: no captions; expected {I2VBENCH_EXPECTED}")
    _raise_problems(f"cannot import I2V-Bench captions {captions_file}", problems)
    for src, image, where in frames:
        try:
            video.save_image(video.fit_image(first_frame(src), height, width), image)
        except VideoError as exc:
            problems.append(f"{where}: {exc}; re-download the video or remove its caption")
    _raise_problems(f"cannot import I2V-Bench videos from {videos_dir}", problems)
    return _write_manifest(manifest, records)


def first_frame(path: str | Path) -> np.ndarray:
    """Decode only the first frame of a video as uint8 RGB ``[H, W, 3]``; an unreadable file is a VideoError."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path} holds no video stream")
            for frame in container.decode(video=0):
                return frame.to_ndarray(format="rgb24")
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many types for a damaged file
        raise VideoError(f"video {path} cannot be decoded ({type(exc).__name__}: {exc})") from exc
    raise VideoError(f"{path} holds no decodable frame")
