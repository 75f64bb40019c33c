"""Importers: a folder of images + prompts, VBench-I2V, and I2V-Bench videos + captions, on tiny fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2vbench.errors import SuiteError
from i2vbench.suite import ManifestError, import_folder, import_i2vbench, import_vbench_i2v, load_suite
from i2vbench.video import Video, write_video


def tiny_png(path: Path, value: int = 120, size: tuple[int, int] = (8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def manifest_lines(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------- folder


@pytest.fixture
def images(tmp_path) -> Path:
    tiny_png(tmp_path / "images" / "red fox.png", 10)
    tiny_png(tmp_path / "images" / "sub" / "tree.jpg", 20)
    return tmp_path / "images"


def test_folder_with_csv_becomes_a_suite(tmp_path, images):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(
        "Image,prompt,category,object\n"
        "red fox.png,The fox turns its head,animals,fox\n"
        "sub/tree.jpg,Leaves flutter in the wind,,\n"
        "red fox.png,The fox jumps away,animals,fox\n"
    )
    manifest = import_folder(images, prompts, tmp_path / "out", "mine")
    assert manifest == (tmp_path / "out" / "prompts" / "mine.jsonl").resolve()
    assert manifest_lines(manifest) == [
        {
            "id": "red_fox",
            "image": "reference_images/mine/red fox.png",
            "prompt": "The fox turns its head",
            "category": "animals",
            "object": "fox",
        },
        {
            "id": "sub_tree",
            "image": "reference_images/mine/sub/tree.jpg",
            "prompt": "Leaves flutter in the wind",
            "category": "uncategorized",
        },
        {
            "id": "red_fox--jumps_away",
            "image": "reference_images/mine/red fox.png",
            "prompt": "The fox jumps away",
            "category": "animals",
            "object": "fox",
        },
    ]
    suite = load_suite(tmp_path / "out")
    assert suite.get("sub_tree").load_image()[0, 0].tolist() == [20, 20, 20]


def test_folder_with_jsonl_prompts_and_explicit_ids(tmp_path, images):
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"filename": "red fox.png", "prompt": "The fox runs", "id": "fox 1", "license": "CC0", "scene": "forest"},
        {"filename": "sub/tree.jpg", "prompt": "Branches sway", "category": "plants"},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = import_folder(images, prompts, tmp_path / "out", "mine", default_category="misc")
    suite = load_suite(manifest)
    fox = suite.get("fox_1")
    assert (fox.licence, fox.scene, fox.category) == ("CC0", "forest", "misc")
    assert suite.get("sub_tree").category == "plants"


def test_folder_import_refuses_to_overwrite_unless_asked(tmp_path, images):
    prompts = tmp_path / "p.csv"
    prompts.write_text("image,prompt\nred fox.png,The fox runs\n")
    import_folder(images, prompts, tmp_path / "out", "mine")
    prompts.write_text("image,prompt\nred fox.png,The fox sleeps\n")
    with pytest.raises(SuiteError, match=r"mine\.jsonl already exists; .*overwrite=True"):
        import_folder(images, prompts, tmp_path / "out", "mine")
    manifest = import_folder(images, prompts, tmp_path / "out", "mine", overwrite=True)
    assert manifest_lines(manifest)[0]["prompt"] == "The fox sleeps"


def test_folder_import_reports_every_bad_row_and_writes_nothing(tmp_path, images):
    (images / "broken.png").write_bytes(b"garbage")
    prompts = tmp_path / "p.csv"
    prompts.write_text(
        "image,prompt,id\n"
        "missing.png,A bird flies,\n"
        "red fox.png,,\n"
        "broken.png,It breaks,\n"
        "../p.csv,Escape,\n"
        "red fox.png,The fox runs,x\n"
        "sub/tree.jpg,The tree bends,x\n"
    )
    with pytest.raises(ManifestError) as info:
        import_folder(images, prompts, tmp_path / "out", "mine")
    problems = info.value.problems
    assert [p.split(": ")[0] for p in problems] == [f"{prompts}:{n}" for n in (2, 3, 4, 5, 7)]
    assert "file not found" in problems[0] and "missing.png" in problems[0]
    assert "no prompt; found image; expected" in problems[1]
    assert "cannot be decoded" in problems[2]
    assert "is not inside" in problems[3]
    assert "'x' is used by an earlier row" in problems[4]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "p.csv",
            "picture,text\nred fox.png,hi\nblue fox.png,ho\n",
            r"1 problem:\n  \S+p\.csv:1 \(the header\): unknown column\(s\) picture, text; accepted: image, filename, prompt",
        ),
        ("p.txt", "red fox.png\tThe fox runs\n", r"suffix '\.txt'; expected \.csv, \.jsonl or \.json"),
        ("p.json", '{"red fox.png": "The fox runs"}', r"found a JSON dict; expected one row a case with columns image"),
        ("p.csv", "", r"empty CSV; expected a header row"),
    ],
)
def test_folder_import_wrong_prompt_layouts_say_what_was_expected(tmp_path, images, name, content, message):
    prompts = tmp_path / name
    prompts.write_text(content)
    with pytest.raises(SuiteError, match=message):
        import_folder(images, prompts, tmp_path / "out", "mine")


def test_folder_import_needs_an_image_folder(tmp_path):
    (tmp_path / "p.csv").write_text("image,prompt\na.png,hi\n")
    with pytest.raises(SuiteError, match=r"image folder not found: .*nowhere; expected a folder"):
        import_folder(tmp_path / "nowhere", tmp_path / "p.csv", tmp_path / "out", "mine")


# ---------------------------------------------------------------------------------------------- VBench-I2V


def vbench_entry(prompt: str, image: str, image_type: str = "animal", dimension: tuple = ("i2v_subject",)) -> dict:
    return {"prompt_en": prompt, "dimension": list(dimension), "image_type": image_type, "image_name": image}


@pytest.fixture
def vbench(tmp_path) -> tuple[Path, Path]:
    """A miniature vbench2_i2v_full_info.json plus crop/<ratio>/ folders, laid out like VBench's data/."""
    crops = tmp_path / "crop"
    for ratio, value in (("16-9", 40), ("1-1", 90)):
        tiny_png(crops / ratio / "a dog running on the beach.png", value)
        tiny_png(crops / ratio / "a city at night, with lights.png", value + 1)
    info = tmp_path / "vbench2_i2v_full_info.json"
    info.write_text(
        json.dumps(
            [
                vbench_entry("a dog running on the beach", "a dog running on the beach.png"),
                vbench_entry(
                    "a dog running on the beach", "a dog running on the beach.png", dimension=("subject_consistency",)
                ),
                vbench_entry(
                    "a dog running on the beach, camera pans left",
                    "a dog running on the beach.png",
                    dimension=("camera_motion",),
                ),
                vbench_entry(
                    "a city at night, with lights",
                    "a city at night, with lights.png",
                    "architecture",
                    ("i2v_background", "camera_motion"),
                ),
            ],
            indent=4,
        )
    )
    return info, crops


def test_vbench_i2v_import_deduplicates_and_keeps_the_chosen_ratio(tmp_path, vbench):
    info, crops = vbench
    manifest = import_vbench_i2v(info, crops, tmp_path / "out", aspect_ratio="1-1")
    suite = load_suite(manifest)
    assert suite.name == "vbench-i2v"
    assert [(c.id, c.category) for c in suite] == [
        ("a_dog_running_on_the_beach", "animal"),
        ("a_dog_running_on_the_beach--camera_pans_left", "animal"),
        ("a_city_at_night_with_lights", "architecture"),
    ]
    dog = suite.get("a_dog_running_on_the_beach--camera_pans_left")
    assert dog.prompt == "a dog running on the beach, camera pans left"
    assert dog.image == suite.get("a_dog_running_on_the_beach").image
    assert dog.load_image()[0, 0].tolist() == [90, 90, 90]
    assert "crop 1-1" in dog.source and "a dog running on the beach.png" in dog.source


def test_vbench_i2v_import_can_keep_only_some_dimensions(tmp_path, vbench):
    info, crops = vbench
    manifest = import_vbench_i2v(info, crops, tmp_path / "out", "cam", dimensions=["camera_motion"])
    assert [c.prompt for c in load_suite(manifest)] == [
        "a dog running on the beach, camera pans left",
        "a city at night, with lights",
    ]
    assert load_suite(manifest).cases[0].load_image()[0, 0].tolist() == [40, 40, 40]


def test_vbench_i2v_wrong_crop_layouts_say_what_was_found(tmp_path, vbench):
    info, crops = vbench
    with pytest.raises(
        SuiteError, match=r"no folder 8-5/ \(found ratio folders 1-1, 16-9\); expected <crops_dir>/<ratio>"
    ):
        import_vbench_i2v(info, crops, tmp_path / "out", aspect_ratio="8-5")
    with pytest.raises(
        SuiteError, match=r"found images directly inside it: pass the folder that holds the ratio folders"
    ):
        import_vbench_i2v(info, crops / "16-9", tmp_path / "out")
    with pytest.raises(SuiteError, match=r"crop exists: pass that folder"):
        import_vbench_i2v(info, tmp_path, tmp_path / "out")
    with pytest.raises(SuiteError, match=r"aspect ratio '16:9' should look like W-H"):
        import_vbench_i2v(info, crops, tmp_path / "out", aspect_ratio="16:9")


def test_vbench_i2v_bad_entries_are_all_reported(tmp_path, vbench):
    info, crops = vbench
    info.write_text(
        json.dumps(
            [
                {"prompt": "old style entry", "image_type": "animal"},
                vbench_entry("a cat", "a cat.png"),
                vbench_entry("a dog running on the beach", "a dog running on the beach.png"),
            ]
        )
    )
    with pytest.raises(ManifestError) as info_error:
        import_vbench_i2v(info, crops, tmp_path / "out")
    first, second = info_error.value.problems
    assert first.startswith(f"{info}: entry 1: no prompt_en, image_name (found keys: prompt, image_type); expected")
    assert second.startswith(f"{info}: entry 2: image_name: file not found") and "16-9/a cat.png" in second
    info.write_text(json.dumps({"prompt_en": "not a list"}))
    with pytest.raises(
        SuiteError, match=r"found a JSON dict; expected a JSON list of objects with prompt_en, image_name"
    ):
        import_vbench_i2v(info, crops, tmp_path / "out")


# ---------------------------------------------------------------------------------------------- I2V-Bench


@pytest.fixture
def videos(tmp_path) -> Path:
    """Two tiny mp4s whose first frame is a solid colour and whose later frames differ."""
    folder = tmp_path / "videos"
    for name, first in (("clip_a.mp4", (200, 40, 40)), ("clip_b.mp4", (40, 40, 200))):
        frames = np.zeros((3, 36, 64, 3), np.uint8)
        frames[0] = first
        frames[1:] = (40, 200, 40)
        write_video(Video(frames, fps=8), folder / name)
    return folder


def assert_first_frame(suite, case_id: str, colour: tuple[int, int, int], size=(16, 24)) -> None:
    image = suite.get(case_id).load_image()
    assert image.shape == (*size, 3)
    assert np.abs(image.reshape(-1, 3).mean(0) - colour).max() < 12


@pytest.mark.parametrize(
    "name, content",
    [
        (
            "captions.csv",
            "video,caption,category\nclip_a.mp4,A red square turns green,shapes\nclip_b,Blue becomes green,\n",
        ),
        (
            "captions.json",
            json.dumps(
                {
                    "clip_a.mp4": {"caption": "A red square turns green", "category": "shapes"},
                    "clip_b.mp4": "Blue becomes green",
                }
            ),
        ),
        (
            "captions.jsonl",
            json.dumps({"file": "clip_a", "prompt": "A red square turns green", "category": "shapes"})
            + "\n"
            + json.dumps({"filename": "clip_b.mp4", "caption": "Blue becomes green"})
            + "\n",
        ),
    ],
)
def test_i2vbench_import_extracts_fitted_first_frames(tmp_path, videos, name, content):
    captions = tmp_path / name
    captions.write_text(content)
    manifest = import_i2vbench(videos, captions, tmp_path / "out", height=16, width=24)
    suite = load_suite(manifest)
    assert suite.name == "i2v-bench"
    assert [(c.id, c.category) for c in suite] == [("clip_a", "shapes"), ("clip_b", "uncategorized")]
    assert suite.get("clip_a").prompt == "A red square turns green"
    assert suite.get("clip_b").source == "I2V-Bench video clip_b.mp4, first frame"
    assert suite.get("clip_a").image.suffix == ".png"
    assert_first_frame(suite, "clip_a", (200, 40, 40))
    assert_first_frame(suite, "clip_b", (40, 40, 200))


def test_i2vbench_import_reports_missing_and_undecodable_videos(tmp_path, videos):
    (videos / "broken.mp4").write_bytes(b"\x00" * 64)
    captions = tmp_path / "c.csv"
    captions.write_text("video,caption\nclip_c.mp4,Nope\nclip_a.mp4,\n")
    with pytest.raises(ManifestError) as info:
        import_i2vbench(videos, captions, tmp_path / "out")
    first, second = info.value.problems
    assert first.startswith(f"{captions}:2: video 'clip_c.mp4' not found in {videos}; did you mean 'clip_")
    assert second.startswith(f"{captions}:3: no caption; found video; expected")
    captions.write_text("video,caption\nclip_a.mp4,Fine\nbroken.mp4,Broken\n")
    with pytest.raises(ManifestError) as info:
        import_i2vbench(videos, captions, tmp_path / "out")
    (problem,) = info.value.problems
    assert problem.startswith(f"{captions}:3: video ") and "broken.mp4 cannot be decoded" in problem
    assert not (tmp_path / "out" / "prompts").exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "c.csv",
            "clip,text\nclip_a.mp4,hi\n",
            r"unknown column\(s\) clip, text; accepted: video, filename, file, caption",
        ),
        ("c.json", json.dumps(["clip_a.mp4", "hi"]), r"found a JSON list holding non-objects; expected a CSV or JSONL"),
        ("c.json", "{broken", r"c\.json:1: invalid JSON"),
        ("c.jsonl", "[1]\n", r"c\.jsonl:1: found a JSON list; expected an object a line"),
    ],
)
def test_i2vbench_wrong_caption_layouts_say_what_was_expected(tmp_path, videos, name, content, message):
    captions = tmp_path / name
    captions.write_text(content)
    with pytest.raises(SuiteError, match=message):
        import_i2vbench(videos, captions, tmp_path / "out")


def test_i2vbench_import_refuses_to_overwrite(tmp_path, videos):
    captions = tmp_path / "c.csv"
    captions.write_text("video,caption\nclip_a.mp4,A red square\n")
    import_i2vbench(videos, captions, tmp_path / "out", height=8, width=8)
    with pytest.raises(SuiteError, match=r"i2v-bench\.jsonl already exists"):
        import_i2vbench(videos, captions, tmp_path / "out")


def test_vbench_i2v_images_whose_names_sanitise_alike_keep_files_of_their_own(tmp_path):
    crops = tmp_path / "crop"
    names = ["a cat, sitting on a mat.jpg", "a cat sitting on a mat.jpg", "X.JPG", "x.jpg"]
    for value, name in enumerate(names):
        tiny_png(crops / "1-1" / name, 10 * (value + 1))
    info = tmp_path / "info.json"
    info.write_text(json.dumps([vbench_entry(f"prompt {i}", name) for i, name in enumerate(names)]))
    suite = load_suite(import_vbench_i2v(info, crops, tmp_path / "out", aspect_ratio="1-1"))
    assert len({c.image.name.casefold() for c in suite}) == 4  # one file each, even on a case-blind disk
    assert sorted(int(c.load_image()[0, 0, 0]) for c in suite) == [10, 20, 30, 40]


def test_prompts_holding_line_separators_round_trip_through_an_import(tmp_path, images):
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"filename": "red fox.png", "prompt": "The fox\u2028runs\u0085on"},
            {"filename": "sub/tree.jpg", "prompt": "Branches sway"}]
    prompts.write_text("\ufeff" + "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows), encoding="utf-8")
    suite = load_suite(import_folder(images, prompts, tmp_path / "out", "mine"))
    assert [c.prompt for c in suite] == ["The fox\u2028runs\u0085on", "Branches sway"]
