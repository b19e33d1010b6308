"""Controlled departures from the training simulation (domain shift, P2.3).

Real survey spectra are not available, so the trained models are tested on test files that
differ from the training data in one known way at a time. Each shift has one ``severity``
parameter in natural units; severity 0 is the identity (the file's arrays unchanged):

==============  =========================  ============================================================
shift           severity                   what changes
==============  =========================  ============================================================
``rv``          km/s                       radial velocity: flux and error resampled at
                                           lambda / (1 + z) (relativistic Doppler, cubic interpolation)
``lsf``         Delta R = R_obs - 5000     resolving power of the line-spread function; the spectra are
                                           regenerated with the forward model at R_obs (a sharper LSF
                                           cannot be undone by convolving the file's flux)
``continuum``   rms fraction               a smooth multiplicative error 1 + a * P(x), P a random
                                           Legendre series of degree 1..``continuum_degree`` per star,
                                           scaled to unit rms over the window (flux and error)
``sky``         amplitude / sigma          sky-subtraction residuals: ``sky_lines`` spikes at fixed
                                           wavelengths (the same for every star, like sky lines), LSF
                                           shaped, amplitude severity x the pixel's sigma x N(0, 1) per
                                           star (error unchanged: a systematic the pipeline does not know)
``loggf``       rms dex                    line-list error: every line's strength of the forward model
                                           perturbed by N(0, severity) dex (the same for every star),
                                           spectra regenerated
==============  =========================  ============================================================

``lsf`` and ``loggf`` need the forward model: the file must hold the five labels and ``mag`` (the
error is recomputed from the new flux at each star's magnitude), and its ``forward_*`` attributes
(written by the generator) give the model's parameters. Every shifted file is written in the data
contract and validated (``specvit.data.contract.validate_file``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from specvit.data.contract import DataContractError, read_arrays, read_labels, read_wave, validate_file
from specvit.data.writer import write_split
from specvit.physics.labels import LABEL_NAMES
from specvit.physics.noise import pixel_sigma
from specvit.physics.nuisances import C_KMS, legendre_basis
from specvit.physics.spectrum import FWHM_TO_SIGMA, RESOLUTION, ForwardParams, SpectrumModel, lsf_kernel, simulate

SHIFTS = ("rv", "lsf", "continuum", "sky", "loggf")
UNITS = {"rv": "km/s", "lsf": f"R - {RESOLUTION:g}", "continuum": "rms fraction", "sky": "sigma",
         "loggf": "dex rms"}
FORWARD_SHIFTS = ("lsf", "loggf")


@dataclass
class Spectra:
    """One split in memory: wave [P], noise-free flux and error [N, P] (float32), labels {name: [N]}."""

    wave: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    labels: dict
    attrs: dict

    def replace(self, **changes) -> Spectra:
        return replace(self, **changes)


@dataclass(frozen=True)
class ShiftSettings:
    """Knobs of the shifts that are not the severity (config ``domain_shift``)."""

    continuum_degree: int = 3
    sky_lines: int = 40


def read_spectra(path, rows=None) -> Spectra:
    """A split file (or its ``rows``) as ``Spectra``; the file is validated first."""
    info = validate_file(path)
    flux, error = read_arrays(path, rows)
    labels = read_labels(path)
    if rows is not None:
        labels = {k: v[rows] for k, v in labels.items()}
    return Spectra(read_wave(path), flux, error, labels, dict(info.attrs))


# ----------------------------------------------------------------------------- the shifts


def rv_shift(s: Spectra, v_kms: float) -> Spectra:
    """Observed flux at lambda is the rest-frame flux at lambda / (1 + z), resampled by cubic
    convolution (Keys, a = -0.5: lines are only ~3.5 pixels wide, where linear interpolation
    would flatten their cores by several per cent); the error linearly (stays positive).
    Beyond the grid the edge value is held."""
    beta = v_kms / C_KMS
    src = s.wave / np.sqrt((1.0 + beta) / (1.0 - beta))
    hi = np.clip(np.searchsorted(s.wave, src), 1, s.wave.size - 1)
    t = np.clip((src - s.wave[hi - 1]) / (s.wave[hi] - s.wave[hi - 1]), 0.0, 1.0)
    t2, t3 = t * t, t * t * t
    weights = np.stack([-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0,
                        -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]).astype(np.float32)
    taps = [np.clip(hi - 2 + k, 0, s.wave.size - 1) for k in range(4)]
    flux = sum(s.flux[:, idx] * w for idx, w in zip(taps, weights))
    t = t.astype(np.float32)
    error = s.error[:, hi - 1] * (1.0 - t) + s.error[:, hi] * t
    return s.replace(flux=flux.astype(np.float32), error=error)


def continuum_error(s: Spectra, amplitude: float, star_seed: int, degree: int = 3) -> Spectra:
    """Multiply by 1 + amplitude * P(x): per star a random Legendre series (degrees 1..degree) over
    x in [-1, 1] across the window, scaled to unit rms; clipped at 0.05 so flux stays positive."""
    rng = np.random.default_rng(star_seed)
    basis = legendre_basis(s.wave, degree)[:, 1:]                              # [P, D]: P_1 .. P_degree
    poly = rng.standard_normal((s.flux.shape[0], degree)) @ basis.T
    poly /= np.sqrt(np.mean(poly**2, axis=1, keepdims=True))
    factor = np.clip(1.0 + amplitude * poly, 0.05, None).astype(np.float32)
    return s.replace(flux=s.flux * factor, error=s.error * factor)


def sky_residuals(s: Spectra, amplitude: float, seed: int, star_seed: int, n_lines: int = 40) -> Spectra:
    """Add LSF-shaped spikes at ``n_lines`` random wavelengths fixed by ``seed`` (sky lines are the same
    for every star), amplitude x sigma x N(0, 1) per star and line (drawn from ``star_seed``)."""
    centers = np.sort(np.random.default_rng(seed).uniform(s.wave[0], s.wave[-1], n_lines))
    rng = np.random.default_rng(star_seed)
    width = centers / RESOLUTION * FWHM_TO_SIGMA                               # Gaussian sigma in A
    profile = np.exp(-0.5 * ((s.wave[None, :] - centers[:, None]) / width[:, None]) ** 2)  # [L, P], peak 1
    pix = np.clip(np.searchsorted(s.wave, centers), 0, s.wave.size - 1)
    strength = amplitude * rng.standard_normal((s.flux.shape[0], n_lines)) * s.error[:, pix]
    return s.replace(flux=(s.flux + strength @ profile).astype(np.float32))


def forward_params(attrs: dict) -> ForwardParams:
    """The forward model's parameters recorded in a file's ``forward_*`` attributes (defaults for the rest)."""
    known = {f.name for f in fields(ForwardParams)}
    return ForwardParams(**{k[len("forward_"):]: float(v) for k, v in attrs.items()
                            if k.startswith("forward_") and k[len("forward_"):] in known})


def _forward_inputs(s: Spectra, shift: str):
    missing = [k for k in (*LABEL_NAMES, "mag") if k not in s.labels]
    if missing:
        raise DataContractError(f"shift {shift!r} regenerates the spectra with the forward model and needs the "
                                f"labels {list(LABEL_NAMES) + ['mag']}; the file lacks {missing}")
    labels = np.stack([s.labels[k] for k in LABEL_NAMES], axis=1).astype(np.float64)
    return labels, np.asarray(s.labels["mag"], dtype=np.float64)


def regenerate(s: Spectra, resolution: float = RESOLUTION, log_s_delta_seed: int | None = None,
               log_s_rms: float = 0.0) -> Spectra:
    """The file's stars simulated again with the forward model, at LSF resolving power ``resolution``
    and with every line strength offset by N(0, ``log_s_rms``) dex (seeded); error at each star's mag."""
    labels, mags = _forward_inputs(s, "lsf" if log_s_rms == 0 else "loggf")
    params = forward_params(s.attrs)
    model = SpectrumModel(params, wave=s.wave)
    if resolution != RESOLUTION:
        model.lsf_kernel = torch.as_tensor(lsf_kernel(s.wave, params.pre_broadening_fwhm, resolution),
                                           dtype=model.lsf_kernel.dtype)
    if log_s_rms:
        rng = np.random.default_rng(log_s_delta_seed)
        for group in model.groups:  # line groups in a fixed order, so the draw is reproducible
            group.log_s += torch.as_tensor(rng.normal(0.0, log_s_rms, group.log_s.shape), dtype=group.log_s.dtype)
    flux = simulate(labels, model)
    error = pixel_sigma(flux, mags).astype(np.float32)
    return s.replace(flux=flux, error=error)


def apply_shift(s: Spectra, shift: str, severity: float, seed: int,
                settings: ShiftSettings = ShiftSettings(), star_seed: int | None = None) -> Spectra:
    """``s`` with ``shift`` applied at ``severity``; severity 0 returns ``s`` unchanged.

    ``seed`` fixes what every star shares (sky-line wavelengths, the line-list error); ``star_seed``
    (default: ``seed``) what differs from star to star (continuum errors, sky residual amplitudes),
    so a labelled training set can share a test set's systematics without repeating its stars' draws."""
    star_seed = seed if star_seed is None else star_seed
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected one of {SHIFTS}")
    severity = float(severity)
    if not np.isfinite(severity):
        raise ValueError(f"shift {shift!r}: severity must be finite, got {severity}")
    if severity == 0:
        return s
    if shift == "rv":
        if abs(severity) >= 0.1 * C_KMS:
            raise ValueError(f"shift 'rv': {severity} km/s is not a radial velocity of a star (|v| < 0.1 c)")
        return rv_shift(s, severity)
    if shift == "lsf":
        r = RESOLUTION + severity
        if r <= 500:
            raise ValueError(f"shift 'lsf': severity {severity} gives resolving power R = {r:g}; expected R > 500")
        return regenerate(s, resolution=r)
    if severity < 0:
        raise ValueError(f"shift {shift!r}: severity must be >= 0 ({UNITS[shift]}), got {severity}")
    if shift == "continuum":
        return continuum_error(s, severity, star_seed, settings.continuum_degree)
    if shift == "sky":
        return sky_residuals(s, severity, seed, star_seed, settings.sky_lines)
    return regenerate(s, log_s_delta_seed=seed, log_s_rms=severity)


def write_spectra(s: Spectra, path, extra_attrs: dict | None = None) -> None:
    """Write ``s`` as a split file in the data contract (atomically) and validate it."""
    attrs = {k: v for k, v in s.attrs.items() if k not in ("schema_version", "label_names")}
    attrs.setdefault("source", "unknown")
    attrs.update(extra_attrs or {})
    write_split(path, s.wave, s.flux, s.error, s.labels, attrs, overwrite=True)
    validate_file(path)


def shift_file(src, dst, shift: str, severity: float, seed: int, settings: ShiftSettings = ShiftSettings(),
               rows=None) -> Path:
    """Write ``src`` (or its ``rows``) with ``shift`` at ``severity`` applied to ``dst``; returns ``dst``."""
    shifted = apply_shift(read_spectra(src, rows), shift, severity, seed, settings)
    write_spectra(shifted, dst, {"shift": shift, "shift_severity": float(severity), "shift_seed": int(seed),
                                 "shifted_from": str(src)})
    return Path(dst)
