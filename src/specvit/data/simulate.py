"""Synthetic data sets in the HDF5 contract, generated with the embedded spectrum model.

Labels and magnitudes of all stars are drawn up front from one seeded generator (so the
stars do not depend on the chunk size); the noise-free flux is computed and written in
chunks, so memory stays bounded at 1M x 4096. ``error`` is the 1-sigma noise at each
star's own magnitude (noise level 1); noisy observations are drawn later, per epoch for
training and with fixed seeds for evaluation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import specvit
from specvit.data.contract import SplitWriter
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.noise import pixel_sigma
from specvit.physics.spectrum import SpectrumModel
from specvit.runtime.pause import pause_point
from specvit.runtime.progress import Progress


def draw_stars(n: int, seed: int, label_space: LabelSpace, mag_range: tuple[float, float]):
    """Labels [n, 5] and magnitudes [n] of a split: uniform magnitudes in ``mag_range``."""
    rng = np.random.default_rng(seed)
    labels = label_space.sample(n, rng)
    mags = rng.uniform(mag_range[0], mag_range[1], size=n)
    return labels, mags


def generate_split(path, n: int, seed: int, label_space: LabelSpace | None = None,
                   mag_range: tuple[float, float] = (20.5, 22.5), chunk_size: int = 1024,
                   split_name: str = "train", progress: bool = True,
                   model: SpectrumModel | None = None) -> Path:
    """Write ``n`` synthetic spectra to ``path`` (atomically: a temporary file is renamed at the end)."""
    label_space = label_space or LabelSpace()
    model = model or SpectrumModel()
    labels, mags = draw_stars(n, seed, label_space, mag_range)
    attrs = {
        "source": "synthetic",
        "seed": int(seed),
        "split": split_name,
        "mag_range": [float(m) for m in mag_range],
        "specvit_version": specvit.__version__,
        **model.describe(),
        **label_space.to_attrs(),
    }
    names = list(LABEL_NAMES) + ["mag"]
    bar = Progress(n, f"simulate {split_name}", unit="spectra") if progress else None
    with SplitWriter(path, n, model.wave, names, attrs, overwrite=True) as writer, torch.no_grad():
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            x = torch.as_tensor(labels[start:stop], dtype=model.wave_t.dtype)
            flux = model(x)
            error = pixel_sigma(flux, torch.as_tensor(mags[start:stop], dtype=flux.dtype))
            block = {name: labels[start:stop, i] for i, name in enumerate(LABEL_NAMES)}
            block["mag"] = mags[start:stop]
            writer.write(start, flux.numpy(), error.numpy(), block)
            pause_point("simulate_block")
            if bar:
                bar.update(stop - start)
    if bar:
        bar.close()
    return Path(path)
