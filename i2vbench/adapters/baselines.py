"""Weight-free reference models: they bracket what a real model should score.

``static`` repeats the input image (perfect consistency, zero motion); ``camera`` moves a virtual camera
over it (pan or zoom with a known speed), a motion that every motion metric should notice.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..suite import Case
from ..video import Video, fit_image
from .base import Adapter


class StaticAdapter(Adapter):
    """The input image, fitted to the video size, repeated for every frame."""

    name = "static"
    description = "input image repeated: perfect consistency, zero motion"
    default_batch_size = 8

    def generate(self, cases: Sequence[Case], *, seeds: Sequence[int]) -> list[Video]:
        s = self.settings
        return [
            Video(np.repeat(fit_image(c.load_image(), s["height"], s["width"])[None], s["num_frames"], axis=0), s["fps"])
            for c in cases
        ]


CAMERA_MOTIONS = ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out")


class CameraAdapter(Adapter):
    """Pan or zoom crops of the input image (fitted to the video size).

    ``speed`` is the fraction of the frame the camera travels over the whole clip. A pan's window keeps the
    frame's aspect ratio at ``1 - speed`` of its size, centred across the motion, and slides from one edge to
    the other (a distance of ``speed`` of the frame); so every pan frame, the first included, is the image
    magnified ``1 / (1 - speed)`` times, never stretched. A zoom's window shrinks (zoom_in) from the whole
    frame or grows (zoom_out) to it by that fraction. Crop boxes are float and resampled bicubically, so
    motion is smooth at any speed.
    """

    name = "camera"
    description = "pan/zoom crops of the input image with a known motion"
    defaults = {"motion": "pan_right", "speed": 0.25}
    default_batch_size = 8

    def __init__(self, **settings):
        super().__init__(**settings)
        if self.settings["motion"] not in CAMERA_MOTIONS:
            raise ConfigError(f"camera motion {self.settings['motion']!r} is unknown; choose one of {', '.join(CAMERA_MOTIONS)}")
        speed = self.settings["speed"]
        if not isinstance(speed, (int, float)) or not 0 <= speed < 1:
            raise ConfigError(f"camera speed must be a number in [0, 1); got {speed!r}")

    def generate(self, cases: Sequence[Case], *, seeds: Sequence[int]) -> list[Video]:
        return [Video(self.render(c.load_image()), self.settings["fps"]) for c in cases]

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """Crop boxes (left, top, right, bottom) on a canvas of the video's size, one per frame."""
        s = self.settings
        h, w, n, speed, motion = s["height"], s["width"], s["num_frames"], float(s["speed"]), s["motion"]
        steps = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
        boxes = []
        for t in steps:
            if motion.startswith("pan"):
                # the window is (1 - speed) of the canvas in both directions and slides across the rest
                cw, ch = w * (1 - speed), h * (1 - speed)
                frac = t if motion in ("pan_right", "pan_down") else 1 - t
                left = (w - cw) * (frac if motion in ("pan_left", "pan_right") else 0.5)
                top = (h - ch) * (frac if motion in ("pan_up", "pan_down") else 0.5)
                boxes.append((left, top, left + cw, top + ch))
            else:
                scale = 1 - speed * (t if motion == "zoom_in" else 1 - t)
                cw, ch = w * scale, h * scale
                boxes.append(((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2))
        return boxes

    def render(self, image: np.ndarray) -> np.ndarray:
        s = self.settings
        canvas = Image.fromarray(fit_image(image, s["height"], s["width"]))
        size = (s["width"], s["height"])
        return np.stack([np.asarray(canvas.resize(size, Image.BICUBIC, box=box)) for box in self.boxes()])
