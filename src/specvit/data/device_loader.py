"""Training batches for an accelerator: drawn on the device itself, or prefetched in the background.

``DeviceBatches`` copies the training subset (flux and error, float32) to the device once; every
epoch's order (``randperm``) and noise (``randn``) are then drawn there, from a device generator
seeded by (seed, epoch) alone, so a resumed run sees the batches an uninterrupted one would and no
batch crosses the host bus. On the CPU device its generator is the CPU generator of
``specvit.data.loader.epoch_generator`` consumed in the same order, so it gives exactly the
batches of the in-RAM ``NoisyBatches``; on a GPU the same seeds give another (equally seeded)
stream. With ``fresh_noise`` False the noisy spectra are drawn once, on the device, block by
block of ``FIXED_BLOCK`` rows, each block from its own generator seeded by (seed, block): row r
keeps one draw for the whole run that depends only on (seed, r) (not the draw of the host
loader's ``fixed_row_noise``), and the device holds the noisy flux alone.

``prefetched`` runs any iterator of CPU batches (the streaming ``NoisyBatches``) in a background
thread that pins each batch, and hands it over with a non-blocking copy, so the host draws the
next batch's noise while the device trains on this one.
"""
from __future__ import annotations

import queue
import threading

import numpy as np
import torch

from specvit.data.loader import FIXED_NOISE_STREAM

FIXED_BLOCK = 1024        # rows of one fixed-noise generator on the device
UPLOAD_ROWS = 16 * 1024   # rows read from the store and copied to the device at a time
_DEVICE_BLOCKS = 2        # SeedSequence key of the device's fixed-noise blocks, apart from the rows' FIXED_NOISE_STREAM


def device_generator(words, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded by the SeedSequence of ``words`` (as ``epoch_generator`` on the CPU)."""
    gen = torch.Generator(device=device)
    return gen.manual_seed(int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0]))


def resident_bytes(n: int, n_pixels: int, fresh_noise: bool) -> int:
    """Device memory of the resident training spectra: flux and error, or the fixed noisy flux alone."""
    return n * n_pixels * 4 * (2 if fresh_noise else 1)


class DeviceBatches:
    """Shuffled mini-batches (noisy flux [B, P], targets [B, K]) drawn on ``device`` from a store of
    ``specvit.data.loader`` (``InMemorySpectra``, ``HDF5Spectra``) copied there once."""

    def __init__(self, store, targets: np.ndarray, batch_size: int, noise_level: float, seed: int, *,
                 fresh_noise: bool, device: torch.device):
        if store.n != targets.shape[0]:
            raise ValueError(f"the spectra have {store.n} rows but targets {targets.shape}")
        self.n, self.n_pixels, self.device = store.n, store.n_pixels, torch.device(device)
        self.batch_size, self.noise_level, self.seed, self.fresh_noise = batch_size, noise_level, seed, fresh_noise
        self.targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)).to(self.device)
        self.flux = torch.empty(self.n, self.n_pixels, device=self.device)
        self.error = torch.empty_like(self.flux) if fresh_noise else None
        self._upload(store)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def _upload(self, store) -> None:
        """Copy the store to the device in slices of rows; with fixed noise, keep only the noisy flux."""
        with store.opened():
            for start in range(0, self.n, UPLOAD_ROWS):
                stop = min(start + UPLOAD_ROWS, self.n)
                flux, error = store.read(np.arange(start, stop, dtype=np.int64))
                flux, error = flux[: stop - start].to(self.device), error[: stop - start].to(self.device)
                if self.fresh_noise:
                    self.flux[start:stop], self.error[start:stop] = flux, error
                else:
                    self.flux[start:stop] = flux + self.noise_level * error * self._fixed_eps(start, stop)

    def _fixed_eps(self, start: int, stop: int) -> torch.Tensor:
        """eps of rows [start, stop) (``start`` a multiple of FIXED_BLOCK): one generator per block, and
        always a whole block drawn (a generator's values may depend on the shape drawn)."""
        blocks = []
        for first in range(start, stop, FIXED_BLOCK):
            gen = device_generator([self.seed, FIXED_NOISE_STREAM, _DEVICE_BLOCKS, first // FIXED_BLOCK], self.device)
            blocks.append(torch.randn(FIXED_BLOCK, self.n_pixels, generator=gen, device=self.device)[: stop - first])
        return torch.cat(blocks)

    def epoch(self, epoch: int):
        """Yield the batches of ``epoch``, order and noise drawn on the device from (seed, epoch)."""
        gen = device_generator([self.seed, epoch], self.device)
        order = torch.randperm(self.n, generator=gen, device=self.device)
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.flux[idx]  # a copy: the noise goes on it in place
            if self.error is not None:
                x.addcmul_(self.error[idx], torch.randn(x.shape, generator=gen, device=self.device),
                           value=self.noise_level)
            yield x, self.targets[idx]


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


def prefetched(batches, device: torch.device, depth: int = 2):
    """Yield the tuples of CPU tensors of the iterator ``batches`` on ``device``, produced ``depth``
    ahead by a background thread (pinned when the device is a GPU, then copied without blocking).
    An error of the producer is raised here; leaving the loop early stops the producer."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    pin = torch.device(device).type == "cuda"

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in batches:
                if not offer(tuple(t.pin_memory() if pin else t for t in item)):
                    break
            else:
                offer(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(_Failed(exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="specvit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield tuple(t.to(device, non_blocking=True) for t in item)
    finally:
        stop.set()
        thread.join()
