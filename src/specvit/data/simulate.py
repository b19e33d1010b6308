"""Synthetic data sets in the HDF5 contract, generated with the embedded spectrum model.

Labels and magnitudes of all stars are drawn up front from one seeded generator (so the
stars do not depend on the chunk size); the noise-free flux is computed and written in
chunks, so memory stays bounded at 1M x 4096. ``error`` is the 1-sigma noise at each
star's own magnitude (noise level 1); noisy observations are drawn later, per epoch for
training and with fixed seeds for evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import specvit
from specvit.data.writer import SplitWriter
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.noise import pixel_sigma
from specvit.physics.spectrum import SpectrumModel
from specvit.runtime.pause import pause_point
from specvit.runtime.progress import Progress


@dataclass(frozen=True)
class StarDistribution:
    """The stars of a synthetic split: labels from ``label_space``'s priors, magnitudes uniform in
    ``mag_range``."""

    label_space: LabelSpace = field(default_factory=LabelSpace)
    mag_range: tuple[float, float] = (20.5, 22.5)

    def draw(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels [n, 5] and magnitudes [n], from one generator seeded with ``seed``."""
        rng = np.random.default_rng(seed)
        labels = self.label_space.sample(n, rng)
        mags = rng.uniform(self.mag_range[0], self.mag_range[1], size=n)
        return labels, mags


def generate_split(path, n: int, seed: int, *, stars: StarDistribution | None = None, chunk_size: int = 1024,
                   split_name: str = "train", progress: bool = True, model: SpectrumModel | None = None) -> Path:
    """Write ``n`` synthetic spectra to ``path`` (atomically: a temporary file is renamed at the end)."""
    stars = stars or StarDistribution()
    model = model or SpectrumModel()
    labels, mags = stars.draw(n, seed)
    attrs = {
        "source": "synthetic",
        "seed": int(seed),
        "split": split_name,
        "mag_range": [float(m) for m in stars.mag_range],
        "specvit_version": specvit.__version__,
        **model.describe(),
        **stars.label_space.to_attrs(),
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
