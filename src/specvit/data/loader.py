"""Training batches with fresh noise every epoch, and the fixed noisy views for validation.

A noisy observation is ``flux + noise_level * error * eps`` with eps ~ N(0, 1). For
training, eps and the batch order depend only on (seed, epoch), so a run resumed at epoch
``e`` sees exactly the batches an uninterrupted run would have seen. For validation and
test, one draw is fixed by a seed, so every model sees identical spectra.

The training spectra come from a *store*: ``InMemorySpectra`` (arrays in RAM) or
``HDF5Spectra`` (rows of a split file, read while training, so memory stays bounded when the
subset is larger than RAM). An epoch is cut into *windows* of at most ``window_rows`` rows that
the store holds in memory one at a time. A window is made of blocks of ``BLOCK_ROWS``
consecutive subset rows, because contiguous HDF5 slices read ~GB/s while random single rows
read a few batches per second. The blocks are shuffled, each window is shuffled row by row,
and batches run on across windows, so an epoch always has ceil(N / batch_size) batches.
When one window holds everything (the in-RAM case, or a cache as large as the subset) the
order is a plain random permutation of all rows, and a file-backed store gives exactly the
batches of the in-RAM one.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

import h5py
import numpy as np
import torch

from specvit.data.contract import read_arrays
from specvit.physics.noise import add_noise

BLOCK_ROWS = 256        # consecutive rows read (and shuffled) together when streaming
_SPAN_BLOCKS = 4        # a single HDF5 read covers at most this many blocks of file rows
BYTES_PER_VALUE = 4     # float32 flux and error


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The torch generator of one epoch: independent of every other epoch and of the run's history."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


FIXED_NOISE_STREAM = 1  # SeedSequence key of the fixed training draws, apart from the epochs' [seed, epoch]


def fixed_row_noise(seed: int, rows, n_pixels: int) -> torch.Tensor:
    """eps [len(rows), P] of the one fixed noise draw of each training row (``training.fresh_noise:
    false``): row r's draw depends only on (seed, r), so every epoch sees the same noisy spectra
    whatever the batch order, and a streamed store gives the draws of the in-RAM one."""
    out = torch.empty(len(rows), n_pixels)
    for i, row in enumerate(np.asarray(rows).tolist()):
        state = np.random.SeedSequence([int(seed), FIXED_NOISE_STREAM, int(row)]).generate_state(1)[0]
        out[i] = torch.randn(n_pixels, generator=torch.Generator().manual_seed(int(state)))
    return out


def fixed_noisy(flux: np.ndarray, error: np.ndarray, noise_level: float, seed: int) -> np.ndarray:
    """One seeded noisy draw of every spectrum (float32): validation, test and the baselines' inputs."""
    return add_noise(flux, error, noise_level, np.random.default_rng(seed)).astype(np.float32, copy=False)


def rows_in(cache_mb: float, n_pixels: int) -> int:
    """How many spectra (flux + error, float32) fit in ``cache_mb`` MiB."""
    return int(cache_mb * 2**20 // (2 * BYTES_PER_VALUE * n_pixels))


# ----------------------------------------------------------------------------- stores


class InMemorySpectra:
    """Noise-free flux and 1-sigma error [N, P] held in RAM: one window is the whole set."""

    def __init__(self, flux: np.ndarray, error: np.ndarray):
        if flux.shape != error.shape or flux.ndim != 2:
            raise ValueError(f"flux {flux.shape} and error {error.shape} must be equal 2-D shapes [N, P]")
        self.flux = torch.from_numpy(np.ascontiguousarray(flux, dtype=np.float32))
        self.error = torch.from_numpy(np.ascontiguousarray(error, dtype=np.float32))
        self.n, self.n_pixels = self.flux.shape
        self.window_rows = self.n

    def opened(self):
        return nullcontext()

    def read(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if positions.size == self.n:  # the whole set (always so here): no copy
            return self.flux, self.error
        idx = torch.from_numpy(positions)
        return self.flux[idx], self.error[idx]


class HDF5Spectra:
    """Rows ``rows`` (sorted indices; None = all) of a split file, read window by window.

    At most ``cache_mb`` MiB of flux + error are held at a time (but at least one block of
    ``BLOCK_ROWS`` rows). The file must already be valid (``specvit.data.contract.validate_file``).
    """

    def __init__(self, path, rows=None, cache_mb: float = 4096):
        self.path = Path(path)
        with h5py.File(self.path, "r") as f:
            n_file, self.n_pixels = f["flux"].shape
        self.rows = np.arange(n_file, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows.size and (np.any(np.diff(self.rows) <= 0) or self.rows[0] < 0 or self.rows[-1] >= n_file):
            raise ValueError(f"{self.path}: rows must be sorted unique indices below {n_file}, the file's row count")
        self.n = int(self.rows.size)
        self.cache_mb = cache_mb
        self.window_rows = max(BLOCK_ROWS, rows_in(cache_mb, self.n_pixels))
        self._file = None

    @contextmanager
    def opened(self):
        """Keep the file open for one epoch."""
        with h5py.File(self.path, "r") as f:
            self._file = f
            try:
                yield self
            finally:
                self._file = None

    def read(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """flux, error of subset positions ``positions`` (sorted), as float32 tensors."""
        if self._file is None:
            with self.opened():
                return self.read(positions)
        file_rows = self.rows[positions]
        flux = np.empty((file_rows.size, self.n_pixels), np.float32)
        error = np.empty_like(flux)
        for start, stop in _read_groups(file_rows, _SPAN_BLOCKS * BLOCK_ROWS):
            lo, hi = file_rows[start], file_rows[stop - 1] + 1
            pick = file_rows[start:stop] - lo
            for name, out in (("flux", flux), ("error", error)):
                span = self._file[name][lo:hi]  # one contiguous read, then the subset's rows of it
                out[start:stop] = span if pick.size == hi - lo else span[pick]
        return torch.from_numpy(flux), torch.from_numpy(error)


def _read_groups(file_rows: np.ndarray, max_span: int):
    """(start, stop) index ranges of ``file_rows`` (sorted) whose file rows span < ``max_span``."""
    start, n = 0, file_rows.size
    while start < n:
        stop = int(np.searchsorted(file_rows, file_rows[start] + max_span, side="left"))
        yield start, max(stop, start + 1)
        start = max(stop, start + 1)


def open_training_spectra(path, rows, cache_mb: float):
    """The training subset of a split file: read into RAM when flux + error fit in ``cache_mb``
    MiB, else an ``HDF5Spectra`` that streams it window by window."""
    with h5py.File(path, "r") as f:
        n_file, n_pixels = f["flux"].shape
    n = n_file if rows is None else len(rows)
    if n <= rows_in(cache_mb, n_pixels):
        return InMemorySpectra(*read_arrays(path, rows))
    return HDF5Spectra(path, rows, cache_mb)


# ----------------------------------------------------------------------------- batches


class NoisyBatches:
    """Shuffled mini-batches of (noisy flux [B, P], targets [B, K]) from a store of spectra.

    ``NoisyBatches(flux, error, targets, ...)`` takes arrays held in memory;
    ``NoisyBatches.from_store(store, targets, ...)`` any store. ``targets`` are the already
    normalised labels, in the store's row order. The last, smaller batch is kept. With
    ``fresh_noise`` False every row keeps one fixed noise draw (``fixed_row_noise``) while the
    batch order still changes every epoch.
    """

    def __init__(self, flux: np.ndarray, error: np.ndarray, targets: np.ndarray, batch_size: int,
                 noise_level: float, seed: int, *, fresh_noise: bool = True):
        if not (flux.shape == error.shape and flux.shape[0] == targets.shape[0]):
            raise ValueError(f"flux {flux.shape}, error {error.shape} and targets {targets.shape} disagree")
        self._init(InMemorySpectra(flux, error), targets, batch_size, noise_level, seed, fresh_noise)

    @classmethod
    def from_store(cls, store, targets: np.ndarray, batch_size: int, noise_level: float, seed: int, *,
                   fresh_noise: bool = True) -> NoisyBatches:
        if store.n != targets.shape[0]:
            raise ValueError(f"the spectra have {store.n} rows but targets {targets.shape}")
        self = cls.__new__(cls)
        self._init(store, targets, batch_size, noise_level, seed, fresh_noise)
        return self

    def _init(self, store, targets, batch_size, noise_level, seed, fresh_noise):
        self.store = store
        self.targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        self.batch_size, self.noise_level, self.seed = batch_size, noise_level, seed
        self.fresh_noise = fresh_noise

    @property
    def n(self) -> int:
        return self.store.n

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def windows(self, gen: torch.Generator) -> list[np.ndarray]:
        """Sorted row positions of each window of one epoch (consumes ``gen`` only when there are several)."""
        n_blocks = -(-self.n // BLOCK_ROWS)
        per_window = max(1, self.store.window_rows // BLOCK_ROWS)
        if self.store.window_rows >= self.n or n_blocks <= per_window:
            return [np.arange(self.n, dtype=np.int64)]
        order = torch.randperm(n_blocks, generator=gen).numpy()
        out = []
        for first in range(0, n_blocks, per_window):
            blocks = np.sort(order[first:first + per_window])
            out.append(np.concatenate([np.arange(b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, self.n))
                                       for b in blocks]))
        return out

    def epoch(self, epoch: int):
        """Yield the batches of ``epoch``: seeded shuffles and seeded noise (fresh, or each row's fixed draw)."""
        gen = epoch_generator(self.seed, epoch)
        pending, have = [], 0
        with self.store.opened():
            for positions in self.windows(gen):
                flux, error = self.store.read(positions)
                rows = torch.from_numpy(positions)
                targets = self.targets[rows] if positions.size < self.n else self.targets
                order = torch.randperm(positions.size, generator=gen)
                start = 0
                while start < order.numel():  # batches run on across windows
                    idx = order[start:start + self.batch_size - have]
                    start += idx.numel()
                    pending.append((flux[idx], error[idx], targets[idx], rows[idx]))
                    have += idx.numel()
                    if have == self.batch_size:
                        yield self._noisy(pending, gen)
                        pending, have = [], 0
                del flux, error  # let the window go before the next one is read
        if pending:
            yield self._noisy(pending, gen)

    def _noisy(self, pieces, gen):
        flux, error, targets, rows = (p[0] if len(pieces) == 1 else torch.cat(p) for p in zip(*pieces))
        if self.fresh_noise:
            eps = torch.randn(flux.shape, generator=gen)
        else:  # the epoch's generator is left alone: the batch order is that of a fresh-noise run
            eps = fixed_row_noise(self.seed, rows.numpy(), flux.shape[1])
        return flux.addcmul_(error, eps, value=self.noise_level), targets
