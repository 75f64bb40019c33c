"""Suites: the built-in i2vbench-mini, manifest loading, and every kind of bad manifest line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import make_suite

from i2vbench.errors import SuiteError
from i2vbench.suite import (
    Case,
    ManifestError,
    Suite,
    builtin_suite_dirs,
    find_manifest,
    list_suites,
    load_suite,
    validate_suite,
)

REPO = Path(__file__).resolve().parents[1]


def tiny_png(path: Path, size: tuple[int, int] = (8, 8), value: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def case(case_id: str = "a", **fields) -> dict:
    return {"id": case_id, "image": "reference_images/a.png", "prompt": "a leaf falls", "category": "plants", **fields}


def write_suite(root: Path, lines: list, name: str = "demo", categories: list[str] | None = None) -> Path:
    """A suite folder: reference_images/a.png and b.png, prompts/<name>.jsonl from dicts or raw strings."""
    tiny_png(root / "reference_images" / "a.png")
    tiny_png(root / "reference_images" / "b.png", value=30)
    manifest = root / "prompts" / f"{name}.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    if categories is not None:
        manifest.with_name(f"{name}.categories.txt").write_text("\n".join(categories) + "\n")
    return manifest.resolve()


def problems_of(manifest: Path, check: str = "load") -> list[str]:
    with pytest.raises(ManifestError) as info:
        (validate_suite if check == "validate" else load_suite)(manifest)
    assert str(manifest) in str(info.value)
    return info.value.problems


# ---------------------------------------------------------------------------------------------- built-in suite


def test_mini_suite_is_found_by_name_and_validates_cleanly():
    assert list_suites()["i2vbench-mini"] == REPO / "prompts" / "i2vbench-mini.jsonl"
    suite, warnings = validate_suite("i2vbench-mini")
    assert warnings == []
    assert len(suite) >= 8
    assert suite.root == REPO
    assert suite.categories is not None and {c.category for c in suite} <= set(suite.categories)


def test_mini_suite_cases_carry_labels_licences_and_small_rgb_images():
    suite = load_suite("i2vbench-mini")
    credits = (REPO / "reference_images" / "CREDITS.md").read_text()
    assert len({c.id for c in suite}) == len(suite)
    for c in suite:
        assert c.image.is_relative_to(REPO / "reference_images")
        assert c.image.name in credits
        assert c.licence and c.source and c.object and c.scene
        assert len(c.prompt.split()) >= 8, f"{c.id}: an I2V prompt says what moves and how"
        image = c.load_image()
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert 256 <= min(image.shape[:2]) <= 512
    bunny = suite.get("big_buck_bunny")
    assert "CC-BY 3.0" in bunny.licence and "Blender Foundation" in bunny.licence


def test_suite_search_path_adds_folders(tmp_path, monkeypatch):
    write_suite(tmp_path / "extra", [case()], name="extra-suite")
    monkeypatch.setenv("I2VBENCH_SUITE_PATH", str(tmp_path / "extra"))
    assert builtin_suite_dirs()[0] == REPO / "prompts"
    assert "extra-suite" in list_suites() and "i2vbench-mini" in list_suites()
    assert load_suite("extra-suite").name == "extra-suite"


# ---------------------------------------------------------------------------------------------- loading


def test_a_suite_loads_from_manifest_path_or_folder_with_root_and_absolute_images(tmp_path):
    manifest = write_suite(tmp_path, [case("a"), case("b", image="reference_images/b.png", object="leaf")])
    for spec in (manifest, str(manifest), tmp_path):
        suite = load_suite(spec)
        assert (suite.name, suite.root, suite.manifest) == ("demo", tmp_path.resolve(), manifest)
        assert [c.id for c in suite] == ["a", "b"]
    b = suite.get("b")
    assert b == Case("b", tmp_path.resolve() / "reference_images" / "b.png", "a leaf falls", "plants", object="leaf")
    assert b.load_image()[0, 0].tolist() == [30, 30, 30]
    assert suite.categories is None


def test_root_is_the_manifest_folder_unless_it_is_named_prompts(tmp_path):
    tiny_png(tmp_path / "flat" / "a.png")
    manifest = tmp_path / "flat" / "flat.jsonl"
    manifest.write_text(json.dumps(case(image="a.png")) + "\n")
    assert load_suite(manifest).root == (tmp_path / "flat").resolve()


def test_blank_and_comment_lines_are_skipped_and_line_numbers_stay_true(tmp_path):
    manifest = write_suite(tmp_path, ["# header", "", case("a"), "   ", case("a")])
    (problem,) = problems_of(manifest)
    assert problem.startswith(f"{manifest}:5: field 'id': duplicate id 'a'") and "line 3" in problem


def test_unknown_suite_name_lists_known_suites():
    with pytest.raises(
        SuiteError, match=r"unknown suite 'i2vbench-mimi'.*did you mean 'i2vbench-mini'.*known: .*i2vbench-mini"
    ):
        load_suite("i2vbench-mimi")


def test_folder_with_two_manifests_is_ambiguous(tmp_path):
    write_suite(tmp_path, [case()], name="one")
    write_suite(tmp_path, [case()], name="two")
    with pytest.raises(SuiteError, match=r"exactly one manifest.*found one.jsonl, two.jsonl"):
        find_manifest(tmp_path)


def test_get_and_select(tmp_path):
    manifest = write_suite(
        tmp_path,
        [
            case("leaf"),
            case("cat1", category="animals"),
            case("cat2", category="animals", image="reference_images/b.png"),
        ],
        categories=["animals", "plants", "food"],
    )
    suite = load_suite(manifest)
    assert [c.id for c in suite.select(categories=["animals"])] == ["cat1", "cat2"]
    assert [c.id for c in suite.select(ids=["cat2", "leaf"])] == ["leaf", "cat2"]
    assert [c.id for c in suite.select(ids=["cat1", "leaf"], categories=["animals"])] == ["cat1"]
    assert [c.id for c in suite.select(categories=["animals"], exclude=["cat1"])] == ["cat2"]
    with pytest.raises(SuiteError, match="--exclude-cases leaves no case"):
        suite.select(ids=["leaf"], exclude=["leaf"])
    with pytest.raises(SuiteError, match="unknown case"):
        suite.select(exclude=["dog"])  # a typo would silently exclude nothing
    with pytest.raises(SuiteError, match="suite .* has no case in the categories food"):
        suite.select(categories=["food"])  # declared, but no case has it: a run of nothing is no result
    with pytest.raises(SuiteError, match="no case of suite .* is both among the cases leaf and in the categories "
                                         "animals: widen --cases or --categories"):
        suite.select(ids=["leaf"], categories=["animals"])
    selected = suite.select(categories=["plants"])
    assert isinstance(selected, Suite) and selected.categories == suite.categories and len(suite) == 3
    with pytest.raises(
        SuiteError, match=r"unknown category 'animal'.*did you mean 'animals'.*known: animals, food, plants"
    ):
        suite.select(categories=["animal"])
    with pytest.raises(SuiteError, match=r"unknown case id 'cat3'.*did you mean ") as info:
        suite.select(ids=["cat3"])
    assert "'cat1'" in str(info.value) and "'cat2'" in str(info.value)
    with pytest.raises(SuiteError, match=r"unknown case id 'dog'.*known: cat1, cat2, leaf"):
        suite.get("dog")


def test_without_declared_categories_the_used_ones_are_known(tmp_path):
    suite = load_suite(write_suite(tmp_path, [case("a"), case("b", category="food")]))
    with pytest.raises(SuiteError, match=r"unknown category 'drinks'.*known: food, plants"):
        suite.select(categories=["drinks"])


# ---------------------------------------------------------------------------------------------- bad manifests


BAD_LINES = {
    "missing image": (case(image="reference_images/nope.png"), "image", r"file not found: .*nope\.png"),
    "path with ..": (case(image="../outside.png"), "image", r"leaves the suite root"),
    "absolute path": (case(image="/etc/hostname"), "image", r"absolute path '/etc/hostname'"),
    "empty prompt": (case(prompt=""), "prompt", r"empty or whitespace-only prompt"),
    "blank prompt": (case(prompt="  \t "), "prompt", r"empty or whitespace-only prompt"),
    "missing prompt": ({k: v for k, v in case().items() if k != "prompt"}, "prompt", r"missing"),
    "non-string field": (case(category=3), "category", r"must be a string, found int"),
    "null required field": (case(category=None), "category", r"null, not a string; every case needs"),
    "empty optional field": (case(scene=""), "scene", r"empty; give a value or remove the field"),
    "unknown field": (case(catgory="plants"), "catgory", r"unknown field; did you mean 'category'"),
    "unsafe id": (case("a/b c"), "id", r"not safe as a file name.*'a_b_c'"),
    "hidden-file id": (case(".."), "id", r"not safe as a file name"),
    "unknown category": (
        case(category="plant"),
        "category",
        r"'plant' is not declared in demo\.categories\.txt; did you mean 'plants'",
    ),
}


@pytest.mark.parametrize("line, field, message", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_each_bad_line_is_reported_with_file_line_and_field(tmp_path, line, field, message):
    tiny_png(tmp_path / "outside.png")
    manifest = write_suite(tmp_path / "suite", [case("ok"), line], categories=["plants", "animals"])
    (problem,) = problems_of(manifest)
    assert problem.startswith(f"{manifest}:2: field '{field}': ")
    assert re.search(message, problem), problem


def test_symlink_leaving_the_root_is_refused(tmp_path):
    outside = tiny_png(tmp_path / "elsewhere" / "x.png")
    manifest = write_suite(tmp_path / "suite", [case(image="reference_images/link.png")])
    (tmp_path / "suite" / "reference_images" / "link.png").symlink_to(outside)
    (problem,) = problems_of(manifest)
    assert problem.startswith(f"{manifest}:1: field 'image': ") and "leaves the suite root" in problem
    assert str(outside) in problem


def test_invalid_json_and_non_objects_name_file_and_line(tmp_path):
    manifest = write_suite(tmp_path, [case(), '{"id": "b", "image": ', "[1, 2]"])
    first, second = problems_of(manifest)
    assert first.startswith(f"{manifest}:2: invalid JSON at column")
    assert second.startswith(f"{manifest}:3: expected a JSON object") and "found list" in second


def test_corrupt_image_is_reported_when_loading(tmp_path):
    manifest = write_suite(tmp_path, [case()])
    (tmp_path / "reference_images" / "a.png").write_bytes(b"not an image at all")
    (problem,) = problems_of(manifest)
    assert problem.startswith(f"{manifest}:1: field 'image': ") and "cannot be decoded" in problem
    assert len(load_suite(manifest, check_images=False)) == 1


def test_validate_decodes_every_image_and_catches_a_truncated_one(tmp_path):
    manifest = write_suite(tmp_path, [case()])
    png = tmp_path / "reference_images" / "a.png"
    tiny_png(png, size=(300, 300))
    png.write_bytes(png.read_bytes()[:200])
    assert len(load_suite(manifest)) == 1, "loading only reads the header"
    (problem,) = problems_of(manifest, check="validate")
    assert problem.startswith(f"{manifest}:1: field 'image': ") and "cannot be decoded" in problem


def test_duplicate_ids_name_both_lines(tmp_path):
    manifest = write_suite(tmp_path, [case("x"), case("y"), case("x", image="reference_images/b.png")])
    (problem,) = problems_of(manifest)
    assert problem.startswith(f"{manifest}:3: field 'id': duplicate id 'x', also on line 1")


def test_all_problems_are_reported_at_once(tmp_path):
    manifest = write_suite(
        tmp_path,
        [case("ok"), case("p", prompt=" "), "{oops", case("ok"), case("q", image="../../x.png", colour="red")],
        categories=["plants"],
    )
    problems = problems_of(manifest)
    located = [re.match(rf"{re.escape(str(manifest))}:(\d+): (?:field '(\w+)')?", p).groups() for p in problems]
    assert located == [("2", "prompt"), ("3", None), ("4", "id"), ("5", "colour"), ("5", "image")]
    with pytest.raises(ManifestError, match=r"5 problems"):
        load_suite(manifest)


def test_an_empty_manifest_or_categories_file_is_an_error(tmp_path):
    manifest = write_suite(tmp_path, ["# nothing here"])
    (problem,) = problems_of(manifest)
    assert "holds no cases" in problem
    manifest = write_suite(tmp_path / "b", [case()], categories=["# none"])
    (problem,) = problems_of(manifest)
    assert "categories.txt:1: the categories file lists no category" in problem


def test_validate_warns_about_missing_licences_small_images_and_redundant_cases(tmp_path):
    manifest = write_suite(tmp_path, [case("a", licence="CC0"), case("b", licence="CC0")])
    suite, warnings = validate_suite(manifest)
    assert len(suite) == 2
    assert [w.split(": field")[0].split(": same")[0] for w in warnings] == [
        f"{manifest}:1",
        f"{manifest}:2",
        f"{manifest}:2",
    ]
    assert "below 256 px" in warnings[0] and "same image and prompt as line 1" in warnings[2]
    tiny_png(tmp_path / "reference_images" / "a.png", size=(256, 300))
    manifest.write_text(json.dumps(case("a")) + "\n")
    _, warnings = validate_suite(manifest)
    assert warnings == [
        f"{manifest}:1: field 'licence': none recorded; add the image's licence so results can be shared"
    ]


def test_a_manifest_with_a_byte_order_mark_loads(tmp_path):
    manifest = make_suite(tmp_path / "s", n=2)
    manifest.write_text("\ufeff" + manifest.read_text(), encoding="utf-8")
    assert [c.id for c in load_suite(manifest)] == ["case0", "case1"]


def test_ids_that_differ_only_in_letter_case_are_refused(tmp_path):
    manifest = make_suite(tmp_path / "s", n=2)
    manifest.write_text(manifest.read_text().replace('"case1"', '"CASE0"'))
    with pytest.raises(ManifestError, match=r"'CASE0' differs from 'case0' \(line 1\) only in letter case"):
        load_suite(manifest)
