"""User-facing errors: each says what was wrong, where, and how to fix it."""

from __future__ import annotations


class I2VBenchError(Exception):
    """An error caused by user input or environment; the CLI prints it without a traceback."""


class SuiteError(I2VBenchError):
    """A suite manifest, image or importer input is invalid."""


class VideoError(I2VBenchError):
    """A video file cannot be read or written."""


class StorageError(I2VBenchError, OSError):
    """The run folder cannot be written (read-only, full, locked by another process): no later case would fare
    better, so the run stops (an ``OSError`` too, for the code that stops on those)."""


class ConfigError(I2VBenchError):
    """An unknown name, a bad setting, or a run folder made by another configuration."""


class WeightsError(I2VBenchError):
    """Pretrained weights are missing or do not match their checksum."""


class ModelLoadError(I2VBenchError):
    """A model adapter could not load its network (unreadable weights, out of memory): no case can succeed."""


class AdapterError(I2VBenchError):
    """An adapter broke its contract (the wrong number of videos, something other than a video, frames of
    another size or length than its settings): a fault of its code that every case would meet, so the run stops."""


class NetworkLoadError(I2VBenchError):
    """A metric's network could not be loaded (damaged or incomplete weights, out of memory): none of its
    videos can be scored, so the reason is recorded for each of them without loading again."""


def unknown_name(kind: str, name: str, known: list[str]) -> ConfigError:
    """Error for an unknown model/metric/suite/category, listing the known ones."""
    listing = ", ".join(sorted(known)) or "(none)"
    return ConfigError(f"unknown {kind} {name!r}; known {kind}s: {listing}")
