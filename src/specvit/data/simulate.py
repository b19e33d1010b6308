"""Synthetic data sets in the HDF5 contract, generated with the embedded spectrum model.

Labels and magnitudes of all stars are drawn up front from one seeded generator (so the
stars do not depend on the chunk size); the noise-free flux is computed and written in
chunks, so memory stays bounded at 1M x 4096. ``error`` is the 1-sigma noise at each
star's own magnitude (noise level 1); noisy observations are drawn later, per epoch for
training and with fixed seeds for evaluation.

With ``nuisances`` (a ``specvit.physics.nuisances.NuisanceSet``: config ``data.nuisances``, or a
study's own) every star also gets the nuisances a real spectrum carries, drawn from their Gaussian
priors by a second generator of the same seed (so the labels and magnitudes do not change): a
multiplicative continuum error 1 + sum_k c_k P_k(x), c_k ~ N(0, continuum_rms^2) for k = 0..d (c_0
is a flux-scale error), and a radial velocity v ~ N(0, rv_rms_kms^2) (redrawn beyond the forward
model's +-RV_MAX_KMS) that shifts the spectrum before the line-spread function. Their true values are
stored as labels ``cont_0`` .. ``cont_d`` and ``rv`` (km/s), and ``error`` is the sigma of the flux
as observed (with its continuum error) at the star's magnitude.
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
from specvit.physics.nuisances import RV_MAX_KMS, NuisanceSet, apply_continuum, legendre_basis
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


def draw_nuisances(nuisances: NuisanceSet | None, n: int, seed: int) -> dict[str, np.ndarray]:
    """The true nuisances of ``n`` stars ({``cont_k``: [n], ``rv``: [n]}, ``NuisanceSet.names``), from a
    generator of its own for ``seed``; {} for None."""
    if nuisances is None:
        return {}
    rng = np.random.default_rng([int(seed), 1])  # not default_rng(seed): the labels' and mags' stream
    out = {f"cont_{k}": rng.normal(0.0, nuisances.continuum_rms, n) for k in range(nuisances.n_continuum)}
    if nuisances.rv:
        rv = rng.normal(0.0, nuisances.rv_rms_kms, n)
        while np.any(far := np.abs(rv) > RV_MAX_KMS):  # a truncated normal: the model's windows hold +-RV_MAX_KMS
            rv[far] = rng.normal(0.0, nuisances.rv_rms_kms, int(far.sum()))
        out["rv"] = rv
    return out


def _nuisance_attrs(nuisances: NuisanceSet | None) -> dict:
    if nuisances is None:
        return {"nuisances": "none"}
    return {"nuisances": nuisances.suffix.lstrip("+"), "nuisance_continuum_rms": float(nuisances.continuum_rms),
            "nuisance_rv_rms_kms": float(nuisances.rv_rms_kms)}


def _observed_flux(model: SpectrumModel, labels: np.ndarray, truth: dict[str, np.ndarray], basis) -> torch.Tensor:
    """Noise-free flux of a block of stars with their nuisances (``truth``, rows of the block)."""
    dtype = model.wave_t.dtype
    rv = torch.as_tensor(truth["rv"], dtype=dtype) if "rv" in truth else None
    flux = model(torch.as_tensor(labels, dtype=dtype), rv)
    coeffs = [v for k, v in truth.items() if k.startswith("cont_")]  # cont_0 .. cont_d, in draw order
    if coeffs:
        flux = apply_continuum(flux, torch.as_tensor(np.stack(coeffs, axis=1), dtype=dtype), basis)
    return flux


def generate_split(path, n: int, seed: int, *, stars: StarDistribution | None = None, chunk_size: int = 1024,
                   split_name: str = "train", progress: bool = True, model: SpectrumModel | None = None,
                   nuisances: NuisanceSet | None = None) -> Path:
    """Write ``n`` synthetic spectra to ``path`` (atomically: a temporary file is renamed at the end),
    with the ``nuisances`` of every star where given (see the module doc)."""
    stars = stars or StarDistribution()
    model = model or SpectrumModel()
    labels, mags = stars.draw(n, seed)
    truth = draw_nuisances(nuisances, n, seed)
    basis = None
    if nuisances is not None and nuisances.continuum_degree is not None:
        basis = torch.as_tensor(legendre_basis(model.wave, nuisances.continuum_degree), dtype=model.wave_t.dtype)
    attrs = {
        "source": "synthetic",
        "seed": int(seed),
        "split": split_name,
        "mag_range": [float(m) for m in stars.mag_range],
        "specvit_version": specvit.__version__,
        **model.describe(),
        **stars.label_space.to_attrs(),
        **_nuisance_attrs(nuisances),
    }
    names = list(LABEL_NAMES) + ["mag"] + list(truth)
    bar = Progress(n, f"simulate {split_name}", unit="spectra") if progress else None
    with SplitWriter(path, n, model.wave, names, attrs, overwrite=True) as writer, torch.no_grad():
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            block_truth = {k: v[start:stop] for k, v in truth.items()}
            flux = _observed_flux(model, labels[start:stop], block_truth, basis)
            error = pixel_sigma(flux, torch.as_tensor(mags[start:stop], dtype=flux.dtype))
            block = {name: labels[start:stop, i] for i, name in enumerate(LABEL_NAMES)}
            block["mag"] = mags[start:stop]
            writer.write(start, flux.numpy(), error.numpy(), {**block, **block_truth})
            pause_point("simulate_block")
            if bar:
                bar.update(stop - start)
    if bar:
        bar.close()
    return Path(path)
