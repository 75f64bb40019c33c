"""Video I/O: round trips, fps, atomic writes, clear errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from i2vbench.errors import SuiteError, VideoError
from i2vbench.video import Video, center_crop, fit_image, load_image, read_video, write_video


def _smooth_video(t: int = 6, h: int = 32, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(xx * 3 + k * 5) % 256, yy * 4, np.full_like(xx, 128)], -1) for k in range(t)]).astype(np.uint8)


def test_round_trip_keeps_frames_and_fps(tmp_path):
    frames = _smooth_video()
    write_video(Video(frames, 12.0), tmp_path / "a.mp4")
    back = read_video(tmp_path / "a.mp4", backend="pyav")
    assert back.frames.shape == frames.shape
    assert back.fps == pytest.approx(12.0)
    assert np.abs(back.frames.astype(int) - frames).mean() < 3.0  # near-lossless H.264


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = _smooth_video(h=31, w=45)
    write_video(Video(frames, 8), tmp_path / "odd.mp4")
    back = read_video(tmp_path / "odd.mp4", backend="pyav")
    assert back.frames.shape[1:3] == (32, 46)


def test_written_file_is_h264_yuv420p(tmp_path):
    import av

    write_video(Video(_smooth_video(), 8), tmp_path / "a.mp4")
    with av.open(str(tmp_path / "a.mp4")) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt) == ("h264", "yuv420p")


def test_same_frames_give_identical_files(tmp_path):
    frames = _smooth_video()
    write_video(Video(frames, 8), tmp_path / "a.mp4")
    write_video(Video(frames, 8), tmp_path / "b.mp4")
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import av

    calls = {"n": 0}
    original = av.VideoFrame.from_ndarray

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return original(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", flaky)
    with pytest.raises(RuntimeError):
        write_video(Video(_smooth_video(), 8), tmp_path / "a.mp4")
    assert os.listdir(tmp_path) == []


def test_undecodable_video_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video at all" * 10)
    with pytest.raises(VideoError, match="broken.mp4"):
        read_video(bad, backend="pyav")
    with pytest.raises(VideoError, match="not found"):
        read_video(tmp_path / "missing.mp4")


def test_video_rejects_bad_arrays():
    with pytest.raises(VideoError, match=r"uint8 .* got float32 \(2, 3, 4, 4\) \(floats in \[0, 1\] become .*"
                                         r"channels first become x.transpose\(0, 2, 3, 1\)"):
        Video(np.zeros((2, 3, 4, 4), np.float32), 8)
    with pytest.raises(VideoError, match="fps"):
        Video(np.zeros((2, 4, 4, 3), np.uint8), 0)


def test_images_missing_or_corrupt(tmp_path):
    with pytest.raises(SuiteError, match="not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(SuiteError, match="bad.png"):
        load_image(tmp_path / "bad.png")


def test_fit_image_resizes_short_side_then_crops_centre():
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 140:160] = 255  # a bright bar in the centre survives the centre crop
    out = fit_image(img, 64, 64)
    assert out.shape == (64, 64, 3)
    assert out[:, 32].mean() > 200 and out[:, 0].mean() < 10
    assert fit_image(img, 50, 150).shape == (50, 150, 3)
    assert center_crop(img, 10, 20).shape == (10, 20, 3)


@pytest.mark.parametrize("size", [(464, 540), (451, 300), (1280, 853), (333, 500), (257, 256), (255, 301)])
def test_fit_image_takes_the_pixels_torchvision_resize_and_center_crop_take(size):
    """Square targets: the same pixels as ConsistI2V's Resize(short side) + CenterCrop, done by torchvision on the
    PIL image with the same (bicubic) resampling; the rounding of sizes and crop offsets included."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import center_crop as tv_crop
    from torchvision.transforms.functional import resize as tv_resize

    img = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    for side in (256, 128):
        expected = tv_crop(tv_resize(Image.fromarray(img), side, interpolation=InterpolationMode.BICUBIC), [side, side])
        np.testing.assert_array_equal(fit_image(img, side, side), np.asarray(expected))


def test_fit_image_never_comes_out_short_of_the_target():
    rng = np.random.default_rng(1)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(40, 700, 2))
        th, tw = (int(v) for v in rng.integers(16, 400, 2))
        assert fit_image(np.zeros((h, w, 3), np.uint8), th, tw).shape == (th, tw, 3), (h, w, th, tw)
    assert fit_image(np.zeros((540, 464, 3), np.uint8), 480, 320).shape == (480, 320, 3)  # was one pixel short


def test_images_load_as_a_viewer_shows_them(tmp_path):
    wide = np.zeros((30, 40, 3), np.uint8)
    wide[:, :20] = 200  # left half bright
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    Image.fromarray(wide).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = load_image(tmp_path / "phone.jpg")
    assert shown.shape == (40, 30, 3) and shown[:15].mean() > 150 and shown[25:].mean() < 50  # left went to the top

    Image.fromarray(np.full((4, 4), 32768, np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert load_image(tmp_path / "deep.png")[0, 0].tolist() == [128, 128, 128]  # not clipped to white

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = (10, 20, 30, 255)  # opaque top half, transparent (black underneath) bottom half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    loaded = load_image(tmp_path / "cutout.png")
    assert loaded[0, 0].tolist() == [10, 20, 30] and loaded[3, 3].tolist() == [255, 255, 255]
