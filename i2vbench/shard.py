"""Which part of a run this process does when several share it (``torchrun --nproc-per-node N``).

torchrun gives every process its ``RANK`` and ``WORLD_SIZE``; process ``r`` of ``n`` takes the cases at
positions ``r, r + n, ...`` of the suite, the same ones in every stage, so it scores the videos it made.
All processes write to the one run store (SQLite serialises their transactions). The steps that touch the
whole run (discarding it with ``--force``, recording metric statuses, writing the leaderboard) are done
by rank 0 alone, between barriers of a CPU (gloo) process group that waits as long as generation takes.
Launch with torchrun: when one process fails, torchrun ends the others, which would otherwise wait at the
next barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence, TypeVar

from .errors import ConfigError

T = TypeVar("T")

#: How long a barrier waits for the slowest process (a shard of a large suite can take days on one GPU).
BARRIER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Shard:
    """Process ``rank`` of ``world`` sharing one run."""

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ConfigError(f"rank {self.rank} of a world of {self.world} processes is not valid "
                              "(check RANK and WORLD_SIZE)")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items`` (every ``world``-th, from position ``rank``)."""
        return list(items[self.rank :: self.world])

    def label(self) -> str:
        """``""`` alone; ``"[rank 1/4] "`` when shared, to prefix what this process prints."""
        return f"[rank {self.rank}/{self.world}] " if self.world > 1 else ""

    def barrier(self) -> None:
        """Wait until every process of the run reaches this point (nothing to wait for when alone)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            try:
                dist.init_process_group(backend="gloo", timeout=BARRIER_TIMEOUT)
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(f"cannot join the other {self.world - 1} process(es) of this run ({exc}); "
                                  "start shared runs with torchrun, e.g. torchrun --nproc-per-node 4 "
                                  "-m i2vbench run ...") from exc
        dist.barrier()


def current_shard() -> Shard:
    """This process's shard from torchrun's ``RANK`` / ``WORLD_SIZE`` (the whole run when they are unset).

    All processes must run on one machine: they share the run store, and SQLite cannot be shared between
    machines (not even over a network file system)."""
    env = os.environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if world == 1:
            return Shard()
        if "RANK" not in env:
            raise ConfigError(f"WORLD_SIZE is {world} but RANK is not set: start shared runs with torchrun")
        rank, local_world = int(env["RANK"]), int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError as exc:
        raise ConfigError(f"RANK, WORLD_SIZE and LOCAL_WORLD_SIZE must be integers ({exc})") from exc
    if local_world != world:
        raise ConfigError(f"this run spans several machines ({world} processes, {local_world} on this one): the "
                          "run store is an SQLite file that machines cannot share. Run on one machine "
                          "(torchrun --nnodes 1)")
    import torch.distributed as dist

    if not dist.is_available():
        raise ConfigError(f"WORLD_SIZE is {world} but this PyTorch build has no torch.distributed; "
                          "run one process, or install a PyTorch with distributed support")
    return Shard(rank, world)
