"""Initial noise for sampling: i.i.d. or the PYoCo video priors, in the reference's draw order."""

from __future__ import annotations

import math
from typing import Sequence

import torch

NOISE_METHODS = ("vanilla", "pyoco_mixed", "pyoco_progressive")

Generators = torch.Generator | Sequence[torch.Generator] | None


def initial_noise(
    shape: Sequence[int],
    generator: Generators = None,
    method: str = "pyoco_mixed",
    alpha: float = 1.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``(b, C, F, h, w)`` float32 noise.

    ``generator``: one generator for the whole batch (the reference's order, e.g. the shared PYoCo
    draw for all videos first), or a list with one generator per video, where each video's noise
    depends only on its own generator (a batch equals the same videos drawn one at a time), or None
    for torch's global RNG. Noise is drawn on the generator's device and moved to ``device``.

    Methods: ``vanilla`` i.i.d.; ``pyoco_mixed`` ``sqrt(a²/(1+a²))·shared + sqrt(1/(1+a²))·own`` with the
    shared draw constant over frames; ``pyoco_progressive`` an AR(1) chain over frames.
    """
    if method not in NOISE_METHODS:
        raise ValueError(f"unknown noise method {method!r}; expected one of {', '.join(NOISE_METHODS)}")
    shape = tuple(shape)
    if len(shape) != 5:
        raise ValueError(f"noise shape must be (batch, channels, frames, h, w); got {shape}")
    if generator is None or isinstance(generator, torch.Generator):
        noise = _draw(shape, generator, method, alpha)
    else:
        generators = list(generator)
        if len(generators) != shape[0]:
            raise ValueError(f"got {len(generators)} generators for a batch of {shape[0]}: give one per video")
        noise = torch.cat([_draw((1, *shape[1:]), g, method, alpha) for g in generators])
    return noise if device is None else noise.to(device)


def _draw(shape: tuple[int, ...], generator: torch.Generator | None, method: str, alpha: float) -> torch.Tensor:
    device = generator.device if generator is not None else torch.device("cpu")

    def randn(size: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(size, generator=generator, device=device, dtype=torch.float32)

    a2 = alpha**2
    shared_scale, own_scale = math.sqrt(a2 / (1 + a2)), math.sqrt(1 / (1 + a2))
    if method == "vanilla":
        return randn(shape)
    if method == "pyoco_mixed":
        b, c, _, h, w = shape
        shared = randn((b, c, 1, h, w)) * shared_scale
        return shared + randn(shape) * own_scale
    noise = randn(shape)
    own = randn(shape) * own_scale
    for f in range(1, shape[2]):
        noise[:, :, f] = noise[:, :, f - 1] * shared_scale + own[:, :, f]
    return noise
