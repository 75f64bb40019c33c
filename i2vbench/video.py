"""Videos and images as arrays: reading, writing (mp4, atomically), resizing and cropping.

Frames are always ``uint8`` arrays of shape ``[T, H, W, 3]`` in RGB order.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import StorageError, SuiteError, VideoError

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")


@dataclass
class Video:
    """A generated or decoded video: ``frames`` uint8 ``[T, H, W, 3]`` and its frame rate."""

    frames: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        f = self.frames
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3 or f.shape[0] < 1:
            raise VideoError(
                f"a Video needs uint8 frames of shape [T, H, W, 3]; got {f.dtype} {tuple(f.shape)} (floats in [0, 1] "
                "become (x * 255).round().clip(0, 255).astype(np.uint8), in [-1, 1] ((x + 1) * 127.5)...; channels "
                "first become x.transpose(0, 2, 3, 1); a torch tensor x.cpu().numpy())"
            )
        if not self.fps > 0:
            raise VideoError(f"a Video needs a positive fps; got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB ``[H, W, 3]``, as a viewer shows it; a missing or corrupt file is a SuiteError.

    A photo's EXIF orientation is applied (phones store portraits sideways); 16-bit images are scaled to 8 bits
    (a plain conversion clips them to white); transparent pixels are laid on white.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(_as_rgb(ImageOps.exif_transpose(im)), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SuiteError(f"image {path} cannot be decoded ({exc}); replace it with a valid PNG/JPEG") from exc


def _as_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB of any PIL mode."""
    if im.mode.startswith("I"):  # I;16*, I: 16-bit samples (PNG stores up to 65535)
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def save_image(image: np.ndarray, path: str | Path) -> None:
    """Write a uint8 RGB image atomically (format from the suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop the centre ``height x width`` window (the image must be at least that large); offsets rounded as
    torchvision's ``CenterCrop`` rounds them, so that a crop here and one there take the same pixels."""
    h, w = image.shape[:2]
    if h < height or w < width:
        raise ValueError(f"cannot crop {height}x{width} from an image of {h}x{w}")
    top, left = int(round((h - height) / 2)), int(round((w - width) / 2))
    return image[top : top + height, left : left + width]


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (bicubic, antialiased) to cover ``height x width`` with the aspect kept, then centre-crop to exactly it.

    The geometry is that of ConsistI2V's preprocessing (torchvision ``Resize`` of the side that must fit, the other
    side truncated as torchvision does, then ``CenterCrop``), so an input image and a video's first frame are
    compared pixel for pixel; only the resampling differs (ConsistI2V resizes bilinearly without antialiasing).
    """
    h, w = image.shape[:2]
    if height / h >= width / w:  # the height must fit; the width follows (at least ``width``, never short)
        size = (max(width, int(w * height / h)), height)
    else:
        size = (width, max(height, int(h * width / w)))
    if size != (w, h):
        image = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
    return center_crop(image, height, width)


def file_sha256(path: str | Path, label: str | None = None) -> str:
    """SHA-256 of a file's bytes, read in chunks; with ``label``, a progress bar (on a terminal) for a file that
    takes seconds, such as a checkpoint of gigabytes."""
    digest = hashlib.sha256()
    bar = None
    if label is not None and (size := os.path.getsize(path)) >= 1 << 28:
        from tqdm.auto import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=label, leave=False, disable=None)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return digest.hexdigest()


_UMASK = os.umask(0)
os.umask(_UMASK)


_HOST = socket.gethostname()
# ``.<name>.<pid>@<host>.<random><suffix>``: the writer's pid and host let a later run tell a dead writer's
# leftover from a file another process is still writing.
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>.+)\.[a-z0-9_]+\.[^.]*$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def remove_stale_temps(folder: Path, older_than_s: float = 600.0) -> list[Path]:
    """Delete the temp files of writes cut short by a kill: at once when their writer on this host is gone,
    otherwise (a writer on another host sharing the folder) once they are ``older_than_s`` old. Returns
    what was deleted."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for temp in folder.iterdir():
        match = _TEMP_NAME.match(temp.name)
        if match is None:
            continue
        try:
            mine, pid = match["host"] == _HOST, int(match["pid"])
            # this process's own id too: cleaning up comes before it writes, and a restarted container's
            # process may be given the id of the one that was killed
            if (mine and (pid == os.getpid() or not _process_alive(pid))) or (
                not mine and now - temp.stat().st_mtime > older_than_s
            ):
                temp.unlink()
                removed.append(temp)
        except OSError:  # gone already, or not ours to delete: harmless either way
            pass
    return removed


class atomic_path:
    """Context manager giving a temp path beside ``path``, renamed onto it only on success."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.{os.getpid()}@{_HOST}.", suffix=self.path.suffix, dir=self.path.parent)
        except OSError as exc:  # the folder, not this file: every other file would fail the same way
            raise StorageError(f"cannot write into {self.path.parent}: {exc.strerror or exc}; free space or "
                               "choose a writable folder") from exc
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.chmod(self.tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
            fd = os.open(self.tmp, os.O_RDONLY)
            try:  # on disk before the rename: after a power loss the name never points at a partial file
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)


def write_text_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` (atomically: a kill mid-write leaves the old file, never half of it) unless the file holds it
    already, so that running a finished stage again leaves its files, read-only storage and a backup's change
    detection undisturbed. Returns whether it wrote."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return True


def write_video(video: Video, path: str | Path, crf: int = 12) -> None:
    """Encode ``video`` as H.264/yuv420p mp4 at its fps, atomically (temp file + rename).

    yuv420p needs even sizes; odd heights/widths are padded by repeating the last row/column.
    A near-lossless ``crf`` keeps metric values close to those of the raw frames, and the same frames
    always give the same bytes (so a video's sha256 proves a rerun reproduced it).
    """
    from fractions import Fraction

    import av

    path = Path(path)
    frames = video.frames
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    rate = Fraction(video.fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(tmp, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = 1 / rate
            # One thread and no psy/AQ/mb-tree: with those, x264's output was seen to vary from run to run
            # for the same frames; without them the file is a pure function of the frames.
            stream.codec_context.thread_count = 1
            stream.options = {"crf": str(crf), "preset": "medium", "tune": "psnr", "x264-params": "mbtree=0"}
            for index, frame in enumerate(frames):
                picture = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
                picture.pts = index
                for packet in stream.encode(picture):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


_BT601 = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` (even sizes) to a planar yuv420p array ``[H * 3 / 2, W]`` (BT.601, limited range).

    Converting here rather than in FFmpeg's scaler makes the encoder's input, and so the file's bytes, a pure
    function of the frames: same seed, same video file.
    """
    h, w = frame.shape[:2]
    ycc = frame.astype(np.float64) @ _BT601.T
    y = np.clip(np.rint(ycc[..., 0] + 16), 16, 235)
    chroma = ycc[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3)) + 128
    cb, cr = np.clip(np.rint(chroma), 16, 240).transpose(2, 0, 1)
    return np.concatenate([y.ravel(), cb.ravel(), cr.ravel()]).reshape(h * 3 // 2, w).astype(np.uint8)


def read_video(path: str | Path, backend: str = "auto") -> Video:
    """Decode every frame of a video file to uint8 RGB, with its frame rate.

    ``backend`` is ``"pyav"``, ``"decord"`` or ``"auto"`` (decord when installed, else PyAV).
    An unreadable file is a VideoError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    if backend == "auto":
        try:
            import decord  # noqa: F401

            backend = "decord"
        except ImportError:
            backend = "pyav"
    try:
        return _read_decord(path) if backend == "decord" else _read_pyav(path)
    except VideoError:
        raise
    except Exception as exc:  # decoders raise many types for a damaged file
        raise VideoError(f"video {path} cannot be decoded ({type(exc).__name__}: {exc})") from exc


def probe_video(path: str | Path) -> tuple[float, int, int, int] | None:
    """(fps, frame count, height, width) of a video file from its container, without decoding frames (packets
    are counted where the container does not say); None when the file cannot be read as a video."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            return _stream_fps(stream), count, stream.codec_context.height, stream.codec_context.width
    except Exception:  # PyAV raises many types for a damaged file; scoring it reports the reason
        return None


#: (codecs, pixel formats, containers) that every major browser's <video> plays
_BROWSER_PLAYS = ((("h264",), ("yuv420p", "yuvj420p"), (".mp4", ".m4v", ".mov")),
                  (("vp8", "vp9", "av1"), ("yuv420p", "yuva420p"), (".webm", ".mp4")))


def browser_unplayable(path: str | Path) -> str | None:
    """Why a web page's ``<video>`` would likely not play this file (``"hevc, yuv420p10le in .mp4"``), or None
    when it would: H.264 (8-bit 4:2:0) in MP4/MOV, VP8/VP9/AV1 in WebM or MP4. GIFs play as images."""
    import av

    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            context = container.streams.video[0].codec_context
            codec, pixels = context.name, context.pix_fmt
    except Exception:  # a damaged file: the page shows what the browser makes of it
        return None
    if any(codec in codecs and pixels in formats and suffix in suffixes for codecs, formats, suffixes in _BROWSER_PLAYS):
        return None
    return f"{codec}, {pixels} in {suffix or 'a file without extension'}"


def _read_pyav(path: Path) -> Video:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(f"{path} holds no video stream")
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    if not frames:
        raise VideoError(f"{path} holds no decodable frame")
    return Video(np.stack(frames), fps)


def _stream_fps(stream) -> float:
    """A PyAV video stream's frame rate (8 where the container gives none)."""
    return float(stream.average_rate or stream.guessed_rate or 0) or 8.0


def _read_decord(path: Path) -> Video:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    if len(reader) == 0:
        raise VideoError(f"{path} holds no decodable frame")
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    return Video(np.ascontiguousarray(frames, dtype=np.uint8), float(reader.get_avg_fps()) or 8.0)
