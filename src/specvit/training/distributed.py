"""Data-parallel training (PyTorch DDP) as the trainer sees it: which process this is, the
collectives it needs, and this process's share of a batch.

A run with ``training.devices`` = D > 1 is D processes (ranks) started by torchrun or srun
(``specvit.training.ddp_launch``), each with its own GPU (or CPU threads, with the gloo backend).
Every rank draws the same seeded global batch of ``batch_size`` rows and trains on its own
contiguous slice of it (the shards of one epoch's order are disjoint and cover it); DDP averages
the gradients over the ranks, and each rank's loss is weighted by its share of the batch, so the
step equals the single-process step on the whole batch (to float32 rounding). Only rank 0 writes
checkpoints and files. Outside a launched run ``World.current()`` is the single process (rank 0
of 1) and every helper here is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's rank among ``size`` data-parallel processes."""

    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls) -> World:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and files."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of ``value`` (each rank's share-weighted loss): the whole batch's mean loss.
        Single process: ``value`` itself."""
        if self.size == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.size

    def bounds(self, n: int) -> tuple[int, int]:
        """[lo, hi) of this rank's rows of a batch of ``n``: contiguous, as equal as can be, disjoint."""
        return n * self.rank // self.size, n * (self.rank + 1) // self.size

    def split(self, xb: torch.Tensor, yb: torch.Tensor):
        """(x, y, share) of this rank's rows of a global batch; ``share`` (None for one process)
        multiplies its mean loss so that DDP's average of the gradients is the gradient of the
        whole batch's mean loss. A rank left without a row (a last batch smaller than the world)
        takes the first row with share 0, so it still joins the gradients' all-reduce."""
        if self.size == 1:
            return xb, yb, None
        lo, hi = self.bounds(xb.shape[0])
        if hi == lo:
            return xb[:1], yb[:1], 0.0
        return xb[lo:hi], yb[lo:hi], (hi - lo) * self.size / xb.shape[0]

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (which broadcasts rank 0's weights), or itself."""
        if self.size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def dropout_seed(self, seed: int, epoch: int) -> int:
        """Seed of the dropout masks of ``epoch``: rank 0 keeps the single-process seed; the other
        ranks get their own (the same masks on every shard would correlate them)."""
        words = [seed + 1, epoch] + ([self.rank] if self.rank else [])
        return int(np.random.SeedSequence(words).generate_state(1)[0])
