"""Self-normalised importance sampling from defensive mixtures of a prior box and Student-t components.

The pieces of ``specvit.physics.posterior``, free of the spectrum model: the prior of independent
labels in unit-box coordinates u = (theta - low) / (high - low) (so Teff in K and abundances in dex
are alike), the Gaussian log likelihood of many model spectra against one observation as a matrix
product, multivariate Student-t components, the mixture density every draw is weighted against
(the balance heuristic of multiple importance sampling: q = sum_c n_c q_c / sum_c n_c over all
components, the prior's included), components fitted to weighted draws (adaptive importance
sampling), and the estimates with their effective sample size and Monte Carlo variance.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import gammaln, log_ndtr, logsumexp

from specvit.physics.labels import LabelPrior


def _log_mass(a: float, b: float) -> float:
    """log(Phi(b) - Phi(a)) for a < b, accurate in either tail (the upper one by symmetry)."""
    if a > 0:
        a, b = -b, -a
    return float(log_ndtr(b) + np.log1p(-np.exp(log_ndtr(a) - log_ndtr(b))))


@dataclass(frozen=True)
class BoxPrior:
    """Independent priors of the labels, in unit-box coordinates u = (theta - low) / width."""

    priors: tuple[LabelPrior, ...]

    @property
    def low(self) -> np.ndarray:
        return np.array([p.low for p in self.priors])

    @property
    def width(self) -> np.ndarray:
        return np.array([p.high - p.low for p in self.priors])

    def to_u(self, theta):
        return (np.asarray(theta, float) - self.low) / self.width

    def to_theta(self, u):
        return self.low + np.asarray(u, float) * self.width

    def sample_u(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.to_u(np.stack([p.sample(n, rng) for p in self.priors], axis=1))

    def moments_u(self) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and variance of each u (the Gaussian approximation the fit uses)."""
        mean = [0.5 if p.distribution == "uniform" else np.clip((p.mean - p.low) / (p.high - p.low), 0, 1)
                for p in self.priors]
        return np.array(mean), np.array([p.variance() for p in self.priors]) / self.width**2

    def log_density_u(self, u: np.ndarray) -> np.ndarray:
        """log p(u) [...]: -inf outside the unit box; uniform: 0; truncated normal: its log density."""
        inside = np.all((u >= 0.0) & (u <= 1.0), axis=-1)
        out = np.zeros(u.shape[:-1])
        for k, p in enumerate(self.priors):
            if p.distribution != "normal":
                continue
            width = p.high - p.low
            mu, sd = (p.mean - p.low) / width, p.std / width
            z = (u[..., k] - mu) / sd
            out = out - 0.5 * z * z - 0.5 * np.log(2 * np.pi) - np.log(sd) - _log_mass(-mu / sd, (1.0 - mu) / sd)
        return np.where(inside, out, -np.inf)


def log_likelihood(yw: np.ndarray, w: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """log L up to a constant per observation: (w y) . f - 1/2 w . f^2, for observations
    yw = w * y [R, P] and inverse variances w [R, P] against fluxes [S, P] -> [R, S] (float64)."""
    # torch, not numpy: its thread count is the job's (torch.set_num_threads), BLAS's is not
    yw, w, flux = (torch.as_tensor(np.asarray(a, np.float64)) for a in (yw, w, flux))
    return (yw @ flux.T - 0.5 * (w @ (flux * flux).T)).numpy()


def log_likelihood_continuum(y: np.ndarray, w: np.ndarray, flux: np.ndarray, basis: np.ndarray,
                             rms: float) -> np.ndarray:
    """log L with a multiplicative continuum error integrated out, up to a constant per observation.

    The model of observation r is y = f (1 + basis @ c) + noise, c ~ N(0, rms^2 I) [K]: for a given
    f the continuum is linear in c, so the marginal likelihood is Gaussian in closed form,
    log L = log L_0 + 1/2 b^T A^-1 b - 1/2 log det A, with log L_0 = ``log_likelihood``,
    b_k = sum_j B_jk w_j f_j (y_j - f_j) and A = I / rms^2 + sum_j w_j f_j^2 B_j B_j^T. Every sum over
    pixels is a matrix product of an observation's weighted vectors with f or f^2, as in
    ``log_likelihood``. y, w [R, P], flux [S, P], basis [P, K] -> [R, S] (float64)."""
    y, w, flux, basis = (torch.as_tensor(np.asarray(a, np.float64)) for a in (y, w, flux, basis))
    (r, p), k, s = y.shape, basis.shape[1], flux.shape[0]
    f2 = flux * flux
    wy = w * y
    base = wy @ flux.T - 0.5 * (w @ f2.T)
    b = ((wy[:, None, :] * basis.T).reshape(r * k, p) @ flux.T
         - (w[:, None, :] * basis.T).reshape(r * k, p) @ f2.T).reshape(r, k, s).transpose(1, 2)  # [R, S, K]
    i, j = torch.triu_indices(k, k)
    a_upper = ((w[:, None, :] * (basis[:, i] * basis[:, j]).T).reshape(-1, p) @ f2.T).reshape(r, -1, s)
    a = torch.zeros(r, s, k, k, dtype=torch.float64)
    a[:, :, i, j] = a_upper.transpose(1, 2)
    a[:, :, j, i] = a_upper.transpose(1, 2)
    a += torch.eye(k, dtype=torch.float64) / rms**2
    chol = torch.linalg.cholesky(a)
    v = torch.linalg.solve_triangular(chol, b[..., None], upper=False)[..., 0]
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return (base + 0.5 * (v * v).sum(-1) - 0.5 * log_det).numpy()


def student_t_logpdf(x: np.ndarray, centre: np.ndarray, chol: np.ndarray, dof: float) -> np.ndarray:
    """log density of multivariate Student-t components at points x [S, d]: centres [C, d], scale
    Cholesky factors chol [C, d, d] -> [C, S]."""
    d = x.shape[-1]
    inv = np.linalg.inv(chol)                                               # L^-1 per component
    z = np.einsum("ckl,csl->csk", inv, x[None, :, :] - centre[:, None, :])
    maha = (z * z).sum(-1)
    log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)
    const = gammaln(0.5 * (dof + d)) - gammaln(0.5 * dof) - 0.5 * d * np.log(dof * np.pi)
    return const - log_det[:, None] - 0.5 * (dof + d) * np.log1p(maha / dof)


def draw_student_t(rng: np.random.Generator, centre: np.ndarray, chol: np.ndarray, counts: Sequence[int],
                   dof: float) -> np.ndarray:
    """``counts[c]`` draws of each Student-t component c, stacked [sum counts, d]."""
    parts = []
    for c, n in enumerate(counts):
        z = rng.standard_normal((n, centre.shape[1]))
        g = rng.chisquare(dof, size=(n, 1))
        parts.append(centre[c] + (z @ chol[c].T) * np.sqrt(dof / g))
    return np.concatenate(parts) if parts else np.empty((0, centre.shape[1]))


def importance_summary(log_w: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Self-normalised importance estimates along the last axis: ``mean`` and ``sd`` of x under
    the weights, ``ess`` = (sum w)^2 / sum w^2 and ``mc_var`` = sum wn^2 (x - mean)^2, the delta-method
    variance of the mean (wn = w / sum w)."""
    log_w = np.asarray(log_w, float)
    norm = log_w - logsumexp(log_w, axis=-1, keepdims=True)
    wn = np.exp(norm)
    mean = (wn * x).sum(-1)
    dev2 = (x - mean[..., None]) ** 2
    return {"mean": mean, "sd": np.sqrt((wn * dev2).sum(-1)), "ess": 1.0 / (wn * wn).sum(-1),
            "mc_var": (wn * wn * dev2).sum(-1)}


def log_mixture_density(u, log_prior_u, centre, chol, counts, n_prior: int, dof: float) -> np.ndarray:
    """log q(u) of the defensive mixture: (n_prior p(u) + sum_c n_c t_c(u)) / (n_prior + sum n_c)."""
    terms = [np.log(n_prior) + log_prior_u]
    if sum(counts):
        t = student_t_logpdf(u, centre, chol, dof)
        terms += [np.log(n) + t[c] for c, n in enumerate(counts) if n > 0]
    return logsumexp(np.stack(terms), axis=0) - np.log(n_prior + sum(counts))


def adapted_components(u: np.ndarray, log_w: np.ndarray, fallback_chol: np.ndarray,
                       inflate: float) -> tuple[np.ndarray, np.ndarray]:
    """Student-t components fitted to weighted draws, one per row of log_w [M, S]: centre the weighted
    mean, scale ``inflate`` x the weighted covariance shrunk towards fallback_chol's covariance with
    the weight of 2d draws (so a pilot with a small ESS keeps the linearised shape)."""
    d = u.shape[1]
    wn = np.exp(log_w - logsumexp(log_w, axis=-1, keepdims=True))
    centre = wn @ u                                                          # [M, d]
    dev = u[None, :, :] - centre[:, None, :]
    cov = np.einsum("ms,msk,msl->mkl", wn, dev, dev)
    ess = 1.0 / (wn * wn).sum(-1)[:, None, None]
    fallback = fallback_chol @ np.swapaxes(fallback_chol, 1, 2)
    cov = (ess * cov + 2 * d * fallback) / (ess + 2 * d)
    return centre, inflate * np.linalg.cholesky(cov)


def mmse_r2(truth: np.ndarray, mean: np.ndarray, mc_var: np.ndarray, var: float) -> tuple[float, float]:
    """R^2 = 1 - mean_i e_i / var of the posterior means of one magnitude, and its Monte Carlo error.

    e_i = (truth_i - mean_i)^2 - mc_var_i: the sampling noise of mean_i adds mc_var_i to the squared
    error on average, which this removes. The Monte Carlo error (delta method) is
    sqrt(sum_i 4 (truth_i - mean_i)^2 mc_var_i) / (N var): the stars' estimates are independent.
    """
    err = truth - mean
    r2 = 1.0 - float(np.mean(err**2 - mc_var)) / var
    return r2, float(np.sqrt(np.sum(4.0 * err**2 * mc_var)) / (err.size * var))
