"""Training batches with fresh noise every epoch, and the fixed noisy views for validation.

A noisy observation is ``flux + noise_level * error * eps`` with eps ~ N(0, 1). For
training, eps and the batch order depend only on (seed, epoch), so a run resumed at epoch
``e`` sees exactly the batches an uninterrupted run would have seen. For validation and
test, one draw is fixed by a seed, so every model sees identical spectra.
"""
from __future__ import annotations

import numpy as np
import torch

from specvit.noise import add_noise


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The torch generator of one epoch: independent of every other epoch and of the run's history."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


def fixed_noisy(flux: np.ndarray, error: np.ndarray, noise_level: float, seed: int) -> np.ndarray:
    """One seeded noisy draw of every spectrum (float32): validation, test and the baselines' inputs."""
    return add_noise(flux, error, noise_level, np.random.default_rng(seed)).astype(np.float32, copy=False)


class NoisyBatches:
    """Shuffled mini-batches of (noisy flux [B, P], targets [B, K]) from arrays held in memory.

    ``flux`` and ``error`` are the noise-free spectra and their 1-sigma noise (float32);
    ``targets`` are the already normalised labels. The last, smaller batch is kept.
    """

    def __init__(self, flux: np.ndarray, error: np.ndarray, targets: np.ndarray, batch_size: int,
                 noise_level: float, seed: int):
        if not (flux.shape == error.shape and flux.shape[0] == targets.shape[0]):
            raise ValueError(f"flux {flux.shape}, error {error.shape} and targets {targets.shape} disagree")
        self.flux = torch.from_numpy(np.ascontiguousarray(flux, dtype=np.float32))
        self.error = torch.from_numpy(np.ascontiguousarray(error, dtype=np.float32))
        self.targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        self.batch_size, self.noise_level, self.seed = batch_size, noise_level, seed

    @property
    def n(self) -> int:
        return self.flux.shape[0]

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def epoch(self, epoch: int):
        """Yield the batches of ``epoch``: a seeded permutation and fresh seeded noise."""
        gen = epoch_generator(self.seed, epoch)
        order = torch.randperm(self.n, generator=gen)
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            flux, error = self.flux[idx], self.error[idx]
            eps = torch.randn(flux.shape, generator=gen)
            yield flux.addcmul_(error, eps, value=self.noise_level), self.targets[idx]
