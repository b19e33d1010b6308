"""The observations of the simulated posterior (``specvit.physics.posterior``): noisy spectra of
stars under the exact forward model, with an optional multiplicative continuum error and radial
velocity, and their likelihood.

- ``observe``: each star's noise-free flux and Jacobian at its true parameters and, per magnitude,
  one seeded noisy spectrum y = f (1 + basis @ c) + sigma eps with sigma the noise model's for that
  observed flux (treated as known, as the Fisher matrix treats it);
- ``Observations.log_likelihood``: the Gaussian log likelihood of model fluxes, with the continuum
  error integrated out in closed form when there is one (``specvit.physics.importance``);
- ``WithRadialVelocity``: a spectrum model whose radial velocity is one more parameter, so the
  sampler treats it as a label;
- ``simulate_flux``: noise-free fluxes of many parameter points, in batches.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from specvit.physics.fisher import jacobian
from specvit.physics.importance import BoxPrior, log_likelihood, log_likelihood_continuum
from specvit.physics.noise import pixel_sigma
from specvit.physics.noise import snr as snr_fn
from specvit.physics.nuisances import continuum_factor


@dataclass(frozen=True)
class ContinuumError:
    """A multiplicative continuum error 1 + basis @ c of every observation, with prior c ~ N(0, rms^2 I)
    [K], integrated out of the likelihood in closed form (``log_likelihood_continuum``); ``coeffs``
    [N, K] are the stars' true coefficients, which their simulated observations carry."""

    basis: np.ndarray
    rms: float
    coeffs: np.ndarray


class WithRadialVelocity(torch.nn.Module):
    """A spectrum model of labels [B, 5] and a radial velocity as one of parameters [B, 6] (the last in
    km/s), so the sampler and the Jacobian treat the velocity as one more label."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        return self.model(params[..., :-1], params[..., -1])


@dataclass(frozen=True)
class Observations:
    """The true labels in box units [N, d], the noise-free flux there f0 [N, P] (float64, with the
    true continuum error if any), its Jacobian in box units [N, P, d], and per magnitude the noisy
    spectra y and inverse variances w [N, M, P], and the SNR [N, M]; with a continuum error, its
    Jacobian d f0 / d c [N, P, K] and the ``ContinuumError``."""

    truth_u: np.ndarray
    flux0: np.ndarray
    jac_u: np.ndarray
    y: np.ndarray
    w: np.ndarray
    snr: np.ndarray
    jac_c: np.ndarray | None = None
    continuum: ContinuumError | None = None

    def log_likelihood(self, y: np.ndarray, w: np.ndarray, flux: np.ndarray) -> np.ndarray:
        """log L [R, S] of model fluxes [S, P] for observations y, w [R, P], the continuum error
        integrated out when there is one."""
        if self.continuum is None:
            return log_likelihood(y * w, w, flux)
        return log_likelihood_continuum(y, w, flux, self.continuum.basis, self.continuum.rms)

    def linearisation(self, i: int):
        """The continuum part of star i's linearised fit (``linearised_fit``), None without one."""
        if self.continuum is None:
            return None
        return self.jac_c[i], self.continuum.coeffs[i], self.continuum.rms


def _dtype_of(forward) -> torch.dtype:
    """The float dtype a torch module computes in (its first floating buffer); float64 otherwise."""
    if isinstance(forward, torch.nn.Module):
        for b in forward.buffers():
            if b.is_floating_point():
                return b.dtype
    return torch.float64


def observe(forward, truth_u: np.ndarray, prior: BoxPrior, mags, *, noise_level: float,
            noise_seeds: Sequence[int], continuum: ContinuumError | None = None) -> Observations:
    """The stars' observations at each magnitude (times their true continuum error, if any); star i's
    noise draw at magnitude m is seeded by (noise_seeds[i], milli-mag of m), so it does not depend on
    the other stars or magnitudes. The noise is that of the observed (continuum-scaled) flux."""
    theta = torch.as_tensor(prior.to_theta(truth_u), dtype=_dtype_of(forward))
    flux0, jac = jacobian(forward, theta)
    flux0, jac = flux0.detach().double().numpy(), jac.detach().double().numpy() * prior.width
    jac_c = None
    if continuum is not None:
        jac_c = flux0[:, :, None] * continuum.basis                   # d f / d c_k = f B_k
        factor = continuum_factor(continuum.coeffs, continuum.basis)
        flux0, jac = flux0 * factor, jac * factor[:, :, None]
    n, p = flux0.shape
    y, w, snr = np.empty((n, len(mags), p)), np.empty((n, len(mags), p)), np.empty((n, len(mags)))
    for m, mag in enumerate(mags):
        sigma = noise_level * pixel_sigma(flux0, float(mag))
        for i in range(n):
            eps = np.random.default_rng([int(noise_seeds[i]), int(round(1000 * float(mag)))]).standard_normal(p)
            y[i, m] = flux0[i] + sigma[i] * eps
        w[:, m] = 1.0 / sigma**2
        snr[:, m] = snr_fn(flux0, sigma)
    return Observations(truth_u, flux0, jac, y, w, snr, jac_c, continuum)


def simulate_flux(forward, u: np.ndarray, prior: BoxPrior, batch_size: int) -> np.ndarray:
    """Noise-free flux [S, P] (float64) of box points u [S, d], in batches."""
    out, dtype = [], _dtype_of(forward)
    with torch.no_grad():
        for i in range(0, u.shape[0], batch_size):
            theta = torch.as_tensor(prior.to_theta(u[i : i + batch_size]), dtype=dtype)
            out.append(forward(theta).double().numpy())
    return np.concatenate(out) if out else np.empty((0, 0))
