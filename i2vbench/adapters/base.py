"""The adapter protocol: how the runner asks a model for videos.

A new model is one ``Adapter`` subclass plus one YAML card in ``models/``; nothing in the runner changes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

from ..errors import ConfigError
from ..suite import Case
from ..video import Video

#: Settings every adapter understands, with the toolkit's defaults (a card or ``--set`` overrides them).
COMMON_DEFAULTS: dict[str, Any] = {"num_frames": 16, "height": 256, "width": 256, "fps": 8.0}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_error(key: str, value: Any, default: Any) -> str | None:
    """What is wrong with ``value`` for a setting whose default is ``default`` (its type is the setting's type:
    a whole number where the default is one, a number where it is a float, true/false, a list, text; text may
    also be null), or None."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, kind = _is_number(value) and math.isfinite(value), "a number"
    elif isinstance(default, (list, tuple)):
        ok, kind = isinstance(value, (list, tuple)), "a list (--set KEY=[a, b])"
    elif isinstance(default, str):
        ok, kind = value is None or isinstance(value, str), "text"
    else:
        return None
    return None if ok else f"setting {key} must be {kind}; got {value!r} (default {default!r})"


class Adapter(ABC):
    """A video generator. Subclasses set ``name`` and ``defaults`` and implement :meth:`generate`.

    ``defaults`` lists every adapter-specific setting with its default value; settings not listed there are
    rejected, so that a typo in ``--set`` never passes silently.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: What the adapter needs to run, shown by ``i2vbench list models`` (e.g. "GPU, 12 GB, bf16").
    requirements: ClassVar[str] = "CPU"
    #: Settings that change how, not what, the adapter generates (device, chunk sizes, where the weights lie):
    #: they are recorded with a run but may change when the run is resumed.
    runtime_settings: ClassVar[tuple[str, ...]] = ()
    #: Settings that name a file or folder: ``--set`` keeps their text as typed (a folder named ``2024`` is not a
    #: number) and they are recorded as absolute paths (a relative one means nothing from another directory).
    path_settings: ClassVar[tuple[str, ...]] = ()
    #: Settings whose values the adapter checks itself, so that their default's type is not enforced (a
    #: ``compile`` that is false by default but also takes a mode name).
    untyped_settings: ClassVar[tuple[str, ...]] = ()
    #: How many cases the runner should hand over at once unless ``--batch-size`` says otherwise.
    default_batch_size: ClassVar[int] = 1
    #: Whether the video settings every generator has (``num_frames``, ``height``, ``width``, ``fps``) apply;
    #: an adapter that only finds videos made elsewhere has none of its own.
    makes_videos: ClassVar[bool] = True

    def __init__(self, **settings: Any) -> None:
        self.settings = self.resolve_settings(settings)

    @classmethod
    def known_settings(cls) -> dict[str, Any]:
        """Every setting this adapter accepts, with its default."""
        return {**(COMMON_DEFAULTS if cls.makes_videos else {}), **cls.defaults}

    @classmethod
    def resolve_settings(cls, overrides: dict[str, Any], label: str | None = None) -> dict[str, Any]:
        """Merge ``overrides`` into the defaults, refusing unknown keys and values of another type than the
        default's (``--set steps=fifty`` stops here rather than deep inside the model). ``label`` names the
        model in errors (default: the adapter's name; the runner names the card)."""
        label = label or f"model {cls.name!r}"
        known = cls.known_settings()
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ConfigError(f"{label} has no setting {', '.join(map(repr, unknown))}; "
                              f"its settings are: {', '.join(sorted(known))}")
        for key, value in overrides.items():
            if key not in cls.untyped_settings and (problem := _type_error(key, value, known[key])):
                raise ConfigError(f"{label}: {problem}")
        settings = {**known, **overrides}
        for key in cls.path_settings:
            if settings.get(key) not in (None, ""):
                settings[key] = str(Path(str(settings[key])).expanduser().resolve())
        if not cls.makes_videos:
            return settings
        for key in ("num_frames", "height", "width"):
            if not isinstance(settings[key], int) or settings[key] < 1:
                raise ConfigError(f"setting {key} must be a positive integer; got {settings[key]!r}")
        if settings["num_frames"] < 2:
            raise ConfigError("setting num_frames must be at least 2: a video of one frame has no motion, and the "
                              "temporal metrics compare frames")
        if settings["height"] % 2 or settings["width"] % 2:
            raise ConfigError(f"height and width must be even (H.264 yuv420p); got {settings['height']}x{settings['width']}")
        if not isinstance(settings["fps"], (int, float)) or not 0.01 <= settings["fps"] <= 1000:
            raise ConfigError(f"setting fps must be a number from 0.01 to 1000; got {settings['fps']!r}")
        return settings

    def weights_identity(self) -> dict[str, str]:
        """What identifies the weights the videos come from (a digest of the checkpoint), recorded with the run's
        configuration: a run is not resumed with other weights, wherever they lie. Empty: no weights."""
        return {}

    def reads_from(self) -> list[Path]:
        """Folders of existing videos this adapter uses as they are: ``--force`` never deletes a file inside them,
        even one an earlier run in the same folder wrote."""
        return []

    def source_of(self, case: Case) -> Path | None:
        """The existing file this adapter would use for ``case`` now (adapters of videos made elsewhere, after
        :meth:`prepare`): a case recorded with another file is taken again. ``None``: the adapter makes videos."""
        return None

    def check_cases(self, cases: Sequence[Case]) -> None:
        """Refuse (``ConfigError``) a suite this adapter cannot serve at all, before the run folder is made;
        cheap checks only (no weights loaded)."""

    def prepare(self, cases: Sequence[Case]) -> dict[str, Any] | None:
        """Look at the whole (selected) suite before generating; a returned dict is saved as the
        run's ``adapter_report.json`` and summarised on screen."""
        return None

    def load(self) -> Any:
        """Load weights and networks (once). Called before the first batch when there is anything to make;
        an error here stops the run with the reason instead of failing every case on its own."""

    @abstractmethod
    def generate(self, cases: Sequence[Case], *, seeds: Sequence[int]) -> list[Video | Path]:
        """Make one video per case, in order. ``seeds[i]`` is case i's seed: results must not depend on
        which other cases share the batch. A ``Path`` return names an existing video file to use as it is.
        """

    def close(self) -> None:
        """Release weights and memory (called once the runner is done)."""
