"""The metric protocol: a metric scores a batch of decoded videos and says how its scores aggregate.

Videos are decoded once per batch (:class:`EvalItem`), and backbone features are computed once per batch
and shared through :class:`FeatureCache`, so two metrics on the same network never run it twice.
"""

from __future__ import annotations

import contextlib
import pickle
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Sequence, TypeVar

import numpy as np

from .. import weights
from ..errors import NetworkLoadError, WeightsError
from ..suite import Case
from ..video import Video, fit_image

GROUPS = ("visual_quality", "first_frame", "motion", "text_alignment")

#: ``auto``: bf16 autocast on CUDA for metrics whose networks are accurate in it, fp32 elsewhere; ``fp32``:
#: fp32 everywhere (the numerics of the reference implementations); ``bf16``: bf16 wherever a metric allows
#: it, on any device.
PRECISIONS = ("auto", "fp32", "bf16")


T = TypeVar("T")


def load_network(what: str, load: Callable[[], T], weight_names: Sequence[str]) -> T:
    """``load()``, with any failure turned into a :class:`NetworkLoadError` that says what could not be loaded
    and how to replace its weights (``weight_names``, the WEIGHTS rows it reads)."""
    try:
        return load()
    except NetworkLoadError:
        raise
    except WeightsError as exc:  # missing or incomplete: its message already names the fetch command
        raise NetworkLoadError(str(exc)) from exc
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported GLOBAL (\S+)", str(exc))
        if found:  # torch's weights-only reader refused an object that is not a tensor
            raise NetworkLoadError(
                f"cannot load {what}: its checkpoint holds {found[1]} besides tensors, and i2vbench never runs code "
                f"from a checkpoint; fetch it again from its listed source{_refetch(weight_names)}") from exc
        raise NetworkLoadError(f"cannot load {what}: its checkpoint is no readable torch file (damaged or cut short: "
                               f"{_brief(str(exc), 120)}){_refetch(weight_names)}") from exc
    except Exception as exc:
        raise NetworkLoadError(f"cannot load {what}: {type(exc).__name__}: {_brief(str(exc))}"
                               f"{_refetch(weight_names, 'if its cached weights are damaged or incomplete, ')}") from exc


def _refetch(weight_names: Sequence[str], condition: str = "") -> str:
    """How to replace the cached weights ``weight_names``: downloading them again over what is there."""
    if not weight_names:
        return ""
    fetch = " and ".join(f"'{weights.fetch_command(name)} --force'" for name in weight_names)
    return f"; {condition}download them again with {fetch} ('i2vbench weights check' shows where they are)"


def _brief(text: str, limit: int = 400) -> str:
    """One line of at most ``limit`` characters (a strict ``load_state_dict`` lists every missing key)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]} ... ({len(text) - limit} more characters)"


def resolve_precision(precision: str, device: str, bf16_ok: bool) -> str:
    """The precision (``bf16`` or ``fp32``) a metric computes in, from the requested mode."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    wanted = precision == "bf16" or (precision == "auto" and device.startswith("cuda"))
    return "bf16" if wanted and bf16_ok else "fp32"


@dataclass(frozen=True)
class ScoreSpec:
    """One number a metric reports per video.

    ``unit`` is ``fraction`` (raw in [0, 1], shown as percent) or a physical unit such as ``dB``.
    ``frame_weighted``: the dataset score is the mean over all frames of all videos (VBench's convention for
    some dimensions) rather than the mean of the per-video scores.
    """

    name: str
    unit: str = "fraction"
    higher_is_better: bool = True
    frame_weighted: bool = False


@dataclass
class EvalItem:
    """One decoded video with its case; the reference image is fitted to the video size on first use."""

    case: Case
    video: Video
    _image: np.ndarray | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            h, w = self.video.size
            self._image = fit_image(self.case.load_image(), h, w)
        return self._image


@dataclass
class MetricResult:
    """Scores of one video: ``values[score name]`` and, for frame-weighted scores, the per-frame values.

    ``error`` marks a video this metric cannot score (e.g. a one-frame video for a temporal metric): it is
    recorded with its reason and never counted as a number.
    """

    values: dict[str, float] = field(default_factory=dict)
    frame_values: dict[str, Sequence[float]] = field(default_factory=dict)
    error: str | None = None


def score_scorable(items: Sequence[EvalItem], unscorable: Callable[[EvalItem], str | None],
                   score_some: Callable[[list[EvalItem]], list[MetricResult]]) -> list[MetricResult]:
    """One result per item: an error for each item ``unscorable`` names a reason for, and ``score_some``'s
    results (called once, on the rest, in order) for the others."""
    results = [MetricResult(error=unscorable(item)) for item in items]
    scorable = [i for i, result in enumerate(results) if result.error is None]
    if scorable:
        for i, result in zip(scorable, score_some([items[i] for i in scorable])):
            results[i] = result
    return results


class FeatureCache:
    """Backbone outputs for one batch, computed on first request and shared by every metric."""

    def __init__(self) -> None:
        self._store: dict[str, Any] = {}

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._store:
            self._store[key] = compute()
        return self._store[key]


class Metric(ABC):
    """A metric plugin. Subclasses declare the class attributes and implement :meth:`score`."""

    name: ClassVar[str]
    group: ClassVar[str]
    scores: ClassVar[tuple[ScoreSpec, ...]]
    #: Names of the shared backbones the metric reads from the FeatureCache (informational).
    backbones: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: Whether the metric's networks keep their accuracy under bf16 autocast (iterative flow refinement,
    #: weight-standardised convolutions and perceptual distances do not: they stay fp32).
    bf16_ok: ClassVar[bool] = False

    def __init__(self, device: str = "cpu", precision: str = "auto") -> None:
        self.device = device
        self.precision = resolve_precision(precision, device, self.bf16_ok)
        self._network: Any = None

    def load(self) -> Any:
        """Build the metric's network(s) on :attr:`device` from the weights cache (never downloads)."""
        raise NotImplementedError(f"metric {self.name} has no network to load")

    def network(self) -> Any:
        """The metric's network, loaded by :meth:`load` on first use and kept for the metric's lifetime. A
        failed load raises :class:`NetworkLoadError`, then raises it again on every call without retrying."""
        if self._network is None:
            try:
                self._network = load_network(f"the network of metric {self.name}", self.load,
                                             weights.weights_for([self.name]))
            except NetworkLoadError as exc:
                self._network = exc
        if isinstance(self._network, NetworkLoadError):
            raise self._network
        return self._network

    @contextlib.contextmanager
    def numerics(self) -> Iterator[None]:
        """Inference mode, with bf16 autocast on the metric's device when its precision is bf16."""
        import torch

        device_type = torch.device(self.device).type
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            yield

    def run(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        """:meth:`score` under the metric's :meth:`numerics`: how the runner and benchmarks call a metric."""
        with self.numerics():
            return self.score(items, cache)

    def unavailable_reason(self) -> str | None:
        """None if the metric can run here; otherwise why not and how to fix it (e.g. the fetch command)."""
        return None

    def left_out(self) -> str | None:
        """For a metric that runs with some of its scores missing here: which, why, and how to add them."""
        return None

    @abstractmethod
    def score(self, items: Sequence[EvalItem], cache: FeatureCache) -> list[MetricResult]:
        """Score every item; one result per item, in order. Raise to fail the whole batch."""
