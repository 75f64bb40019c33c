"""Adapters used only by the tests (loaded by cards as ``plugins:ClassName``)."""

from __future__ import annotations

import os
import time

import numpy as np

from i2vbench.adapters.base import Adapter
from i2vbench.adapters.baselines import StaticAdapter


class SlowStatic(StaticAdapter):
    """``static``, but each case takes a while: gives a test time to kill the process mid-run."""

    name = "slow_static"
    default_batch_size = 1

    def generate(self, cases, *, seeds):
        time.sleep(float(os.environ.get("SLOW_STATIC_SECONDS", "0.4")))
        return super().generate(cases, seeds=seeds)


class SlowOnRankZero(StaticAdapter):
    """``static`` whose cases fail at once in every process but rank 0, where each takes a while."""

    name = "slow_on_rank_zero"
    default_batch_size = 1

    def generate(self, cases, *, seeds):
        if os.environ.get("RANK", "0") != "0":
            raise RuntimeError("this process's model is broken")
        time.sleep(float(os.environ.get("SLOW_STATIC_SECONDS", "0.4")))
        return super().generate(cases, seeds=seeds)


class RuntimeStatic(StaticAdapter):
    """``static`` with a setting that changes only how it runs."""

    name = "runtime_static"
    defaults = {"chunk": 1}
    runtime_settings = ("chunk",)


class NoisyStatic(StaticAdapter):
    """``static`` plus seeded noise: the video depends on the case's seed, and batch composition must not matter."""

    name = "noisy_static"
    default_batch_size = 3

    def generate(self, cases, *, seeds):
        import numpy as np

        videos = super().generate(cases, seeds=seeds)
        for video, seed in zip(videos, seeds):
            rng = np.random.default_rng(seed)
            noise = rng.integers(-20, 21, video.frames.shape)
            video.frames = np.clip(video.frames.astype(int) + noise, 0, 255).astype(np.uint8)
        return videos


class Workspace:
    """Stands in for the activations of a forward pass (GPU memory, in a real model)."""


#: The workspace of the last failed batch, watched through a weak reference.
LAST_WORKSPACE: list = []


def hold_workspace() -> Workspace:
    """A new workspace; fails (as a GPU out of memory would) while the last failed one is still alive."""
    import weakref

    if LAST_WORKSPACE and LAST_WORKSPACE[-1]() is not None:
        raise RuntimeError("out of memory: the failed batch's workspace is still held")
    workspace = Workspace()
    LAST_WORKSPACE.append(weakref.ref(workspace))
    return workspace


class GreedyStatic(StaticAdapter):
    """``static`` that runs out of memory on batches of several cases, and refuses to start a case while the
    workspace of a failed batch is still alive (as a GPU would fail again while that memory is held)."""

    name = "greedy_static"
    default_batch_size = 3

    def generate(self, cases, *, seeds):
        workspace = hold_workspace()  # noqa: F841  (alive while this frame is)
        if len(cases) > 1:
            raise RuntimeError(f"out of memory for {len(cases)} cases")
        return super().generate(cases, seeds=seeds)


from i2vbench.metrics.base import Metric, MetricResult, ScoreSpec  # noqa: E402

AVAILABLE = {"mean_px": True}


class MeanPixel(Metric):
    """Mean pixel value of frame 0; 'unavailable' when AVAILABLE says so (stands in for missing weights)."""

    name = "mean_px"
    group = "visual_quality"
    scores = (ScoreSpec("mean_px"),)

    def unavailable_reason(self):
        return None if AVAILABLE["mean_px"] else "weights gone (i2vbench weights fetch nothing)"

    def score(self, items, cache):
        return [MetricResult({"mean_px": float(it.video.frames[0].mean()) / 255}) for it in items]


class MeanPixelClash(MeanPixel):
    """A different metric reporting a score of the same name."""

    name = "mean_px_clash"


class GreedyMeanPixel(MeanPixel):
    """``mean_px`` that runs out of memory on batches of several videos (see :class:`GreedyStatic`)."""

    name = "greedy_mean_px"
    scores = (ScoreSpec("greedy_mean_px"),)

    def score(self, items, cache):
        workspace = hold_workspace()  # noqa: F841
        if len(items) > 1:
            raise RuntimeError(f"out of memory for {len(items)} videos")
        return [MetricResult({"greedy_mean_px": float(items[0].video.frames[0].mean()) / 255})]


#: ("generate", first case id, time) per adapter call of :class:`TimedStatic`
GENERATE_CALLS: list = []


class TimedStatic(StaticAdapter):
    """``static`` in batches of 2 that notes when each batch is asked for, and can be interrupted (Ctrl-C) at
    the call given by ``INTERRUPT_AT_CALL``, or sent SIGTERM at the call given by ``TERMINATE_AT_CALL``."""

    name = "timed_static"
    default_batch_size = 2

    def generate(self, cases, *, seeds):
        GENERATE_CALLS.append(("generate", cases[0].id, time.perf_counter()))
        if len(GENERATE_CALLS) == int(os.environ.get("INTERRUPT_AT_CALL", "0")):
            raise KeyboardInterrupt
        if len(GENERATE_CALLS) == int(os.environ.get("TERMINATE_AT_CALL", "0")):
            import signal

            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs here, on the main thread
        return super().generate(cases, seeds=seeds)


class ReusingStatic(TimedStatic):
    """``timed_static`` that hands out views of one buffer, which it overwrites for the next batch (as a model
    writing into preallocated memory might)."""

    name = "reusing_static"

    def generate(self, cases, *, seeds):
        from i2vbench.video import Video

        videos = super().generate(cases, seeds=seeds)
        if not hasattr(self, "buffer"):
            self.buffer = [v.frames.copy() for v in videos]
        for slot, video in zip(self.buffer, videos):
            slot[...] = video.frames
        return [Video(slot, v.fps) for slot, v in zip(self.buffer, videos)]


class PickyMeanPixel(MeanPixel):
    """``mean_px`` that cannot score case1's video (a metric-level error, as a detector finding no object)."""

    name = "picky_mean_px"
    scores = (ScoreSpec("picky_mean_px"),)

    def score(self, items, cache):
        return [MetricResult(error="nothing to score") if it.case.id == "case1"
                else MetricResult({"picky_mean_px": float(it.video.frames[0].mean()) / 255}) for it in items]


#: the number of cases of each call of :class:`GreedyTimedStatic`
BATCH_SIZES: list[int] = []


class GreedyTimedStatic(StaticAdapter):
    """``static`` in batches of 4 that fails on any batch of several cases, noting each call's size."""

    name = "greedy_timed_static"
    default_batch_size = 4

    def generate(self, cases, *, seeds):
        BATCH_SIZES.append(len(cases))
        if len(cases) > 1:
            raise RuntimeError(f"out of memory for {len(cases)} cases")
        return super().generate(cases, seeds=seeds)


class MisbehavingStatic(StaticAdapter):
    """``static`` broken as ``MISBEHAVE`` says: ``short`` (a frame too few), ``ndarray`` (bare frames, no
    Video), ``extra`` (one video too many) or ``black`` (all-zero frames, as NaN frames cast to uint8)."""

    name = "misbehaving_static"
    default_batch_size = 2
    CALLS: list[int] = []

    def generate(self, cases, *, seeds):
        from i2vbench.video import Video

        MisbehavingStatic.CALLS.append(len(cases))
        videos = super().generate(cases, seeds=seeds)
        mode = os.environ.get("MISBEHAVE")
        if mode == "short":
            return [Video(v.frames[1:], v.fps) for v in videos]
        if mode == "ndarray":
            return [v.frames for v in videos]
        if mode == "extra":
            return videos + videos[:1]
        if mode == "black":
            return [Video(np.zeros_like(v.frames), v.fps) for v in videos]
        return videos


class TypedStatic(StaticAdapter):
    """``static`` with settings of each type, to check that their defaults' types hold."""

    name = "typed_static"
    defaults = {"steps": 50, "flag": False, "sizes": [256], "scale": 7.5}


def not_an_adapter(**settings):
    """A function where a card wants an adapter class."""


class Nameless(Adapter):
    """An adapter class that forgot to set ``name``."""

    def generate(self, cases, *, seeds):
        return []


class Unfinished(Adapter):
    """An adapter without ``generate``."""

    name = "unfinished"


class Fussy(StaticAdapter):
    """An adapter whose own checks raise a plain ValueError."""

    name = "fussy"

    def __init__(self, **settings):
        super().__init__(**settings)
        raise ValueError("ckpt must be given")
