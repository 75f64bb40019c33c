"""DDIM with the ConsistI2V settings (linear betas, leading spacing, eta 0, epsilon prediction)."""

from __future__ import annotations

import torch


#: the training diffusion's length: timesteps run from 0 to 999
NUM_TRAIN_TIMESTEPS = 1000


class DDIMScheduler:
    """Deterministic DDIM; float32 tables and arithmetic bit-compatible with diffusers 0.21.

    Settings are the released ones: betas ``linspace(0.00085, 0.012, 1000)`` ("linear", not SD's
    "scaled_linear"), ``steps_offset`` 1, ``set_alpha_to_one`` (final alpha-bar 1), no clipping.
    """

    def __init__(
        self,
        num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        steps_offset: int = 1,
    ) -> None:
        self.num_train_timesteps = num_train_timesteps
        self.steps_offset = steps_offset
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.final_alpha_cumprod = torch.tensor(1.0)

    @property
    def max_inference_steps(self) -> int:
        """The most steps "leading" spacing allows: with one timestep per step the offset pushes the first one
        past the table (diffusers' DDIM fails at 1000 steps the same way, midway through sampling)."""
        return self.num_train_timesteps - self.steps_offset

    def timesteps(self, num_inference_steps: int) -> list[int]:
        """"leading" spacing: ``[0, r, 2r, ...]`` reversed plus the offset (50 steps: 981 ... 1)."""
        if not 1 <= num_inference_steps <= self.max_inference_steps:
            raise ValueError(
                f"num_inference_steps must be in [1, {self.max_inference_steps}]; got {num_inference_steps}"
            )
        ratio = self.num_train_timesteps // num_inference_steps
        return [i * ratio + self.steps_offset for i in reversed(range(num_inference_steps))]

    def previous_timestep(self, t: int, num_inference_steps: int) -> int:
        """The timestep a DDIM step from ``t`` lands on (negative after the last step)."""
        return t - self.num_train_timesteps // num_inference_steps

    def _alpha_bar(self, t: int) -> torch.Tensor:
        return self.alphas_cumprod[t] if t >= 0 else self.final_alpha_cumprod

    def step(self, eps: torch.Tensor, t: int, x: torch.Tensor, prev_t: int) -> torch.Tensor:
        """One eta=0 DDIM update from ``t`` to ``prev_t`` given the predicted noise ``eps``.

        The alpha-bars stay 0-dim CPU tensors, which a GPU kernel takes as scalars: moving them to the GPU
        would be a synchronous copy that stalls the host until the UNet call before it has finished. It is also
        what diffusers does (its tables stay on the CPU), so on a GPU the arithmetic is the reference's too (a
        division by a CPU scalar multiplies by its reciprocal there)."""
        a_t = self._alpha_bar(t)
        a_prev = self._alpha_bar(prev_t)
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        return a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps

    def add_noise(self, x: torch.Tensor, eps: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """Forward diffusion ``sqrt(a_t) x + sqrt(1 - a_t) eps``; ``t`` a number or one per batch item.

        A number looks its alpha-bar up on the CPU, as :meth:`step` does (a 0-dim index tensor on the GPU would
        be read back to the host, waiting for the GPU)."""
        if not isinstance(t, torch.Tensor):
            a_t = self.alphas_cumprod[int(t)].to(x.dtype)
        else:
            table = self.alphas_cumprod.to(device=x.device, dtype=x.dtype)
            a_t = table[t.to(x.device).long()].reshape(-1, *([1] * (x.ndim - 1)))
        return a_t**0.5 * x + (1 - a_t) ** 0.5 * eps
