"""The posterior mean of a label under the exact forward model, by importance sampling.

For a star with true labels theta* and magnitude m, the observation is y = f(theta*) + sigma * eps
with sigma = noise_level * pixel_sigma(f(theta*), m) treated as known (as the Fisher matrix treats
it), eps ~ N(0, I). Under the prior p(theta) (``LabelPrior`` per label: a uniform box, or normals
truncated to it) the posterior is p(theta | y) ~ p(theta) L(theta), log L = -1/2 sum_j
(y_j - f_j(theta))^2 / sigma_j^2. Its mean E[theta_g | y] is the estimator of least mean squared
error, so 1 - mean_stars (theta*_g - E[theta_g | y])^2 / Var_prior is the best R^2 any estimator
can reach on average over the prior: the ``mmse_sim`` ceiling.

The mean is estimated by self-normalised importance sampling (``specvit.physics.importance``),
per star, from a defensive mixture:

- a bank of ``n_prior`` draws from the prior, shared by every star and magnitude;
- ``n_star`` draws of the star's own, shared by its magnitudes, in ``n_stages`` stages of adaptive
  importance sampling (AMIS, Cornuet et al. 2012): the first stage draws, for each magnitude, from a
  multivariate Student-t (``dof``) around a linearised fit (one Gauss-Newton step from theta* with
  the Gaussian approximation of the prior) with scale ``inflate`` x the Cholesky factor of
  (Fisher matrix at theta* + prior precision)^-1; each later stage from Student-t components fitted
  to the weighted draws so far (mean and covariance, scale ``inflate_adapted``), which follows a
  posterior that the linearisation misplaces or misshapes, with most draws for the magnitudes whose
  effective sample size is smallest; up to ``extra_stages`` more stages (of n_star / n_stages draws)
  for a star while the ESS of one of its magnitudes is below ``min_ess``.

Every draw is weighted against the mixture of everything drawn (the balance heuristic of multiple
importance sampling): q = [n_prior p + sum_c n_c t_c] / (n_prior + n_star), so
w = p L / q <= L (n_prior + n_star) / n_prior: the prior part bounds the weights whatever shape the
posterior has. Centring the first components on the truth is legitimate: any q whose support
covers the posterior gives a consistent estimate, and the t tails and the prior bank cover it;
how well q fits shows in the effective sample size. The likelihood of many draws against one
observation is a matrix product, sum_j w_j (y_j - f_j)^2 = sum_j w_j y_j^2 - 2 (w y) . f + w . f^2,
in float64.

Per star and magnitude: the posterior mean and sd of the label, the effective sample size
ESS = (sum w)^2 / sum w^2, the Monte Carlo variance of the mean by the delta method,
sum_s wn_s^2 (x_s - mean)^2 with wn the normalised weights, and the share of the posterior weight
that the prior bank carries.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import logsumexp

from specvit.physics.importance import (
    BoxPrior,
    adapted_components,
    draw_student_t,
    importance_summary,
    log_mixture_density,
)
from specvit.physics.labels import LOGG
from specvit.physics.observations import ContinuumError, Observations, observe, simulate_flux


@dataclass(frozen=True)
class PosteriorSampling:
    """Sample sizes and proposal shape of the importance sampling (see the module doc)."""

    n_prior: int = 4096
    n_star: int = 512
    n_stages: int = 4
    extra_stages: int = 4
    min_ess: float = 50.0
    dof: float = 4.0
    inflate: float = 1.5
    inflate_adapted: float = 1.2
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self):
        if (self.n_prior < 1 or self.n_star < 0 or self.n_stages < 1 or self.extra_stages < 0 or self.dof <= 0
                or min(self.inflate, self.inflate_adapted) <= 0 or self.batch_size < 1):
            raise ValueError(f"invalid posterior sampling settings {self}: n_prior >= 1, n_star >= 0, "
                             "n_stages >= 1, extra_stages >= 0, dof > 0, inflate > 0 and batch_size >= 1 are needed")


def linearised_fit(flux0, jac_u, y, w, u0, prior: BoxPrior, continuum=None) -> tuple[np.ndarray, np.ndarray]:
    """One Gauss-Newton step from u0 with the prior's Gaussian approximation, per observation:
    flux0 [P], jac_u [P, d] (d flux / d u at u0), y and w [M, P] -> centres [M, d] (clipped to the
    box) and the Cholesky factors [M, d, d] of (J^T W J + prior precision)^-1. ``continuum``: (d flux /
    d c [P, K] at the true coefficients c0 [K], c0, prior rms): the coefficients are fitted too and the
    covariance returned is the sampled parameters' marginal one."""
    mu, var = prior.moments_u()
    d = u0.size
    if continuum is not None:
        jac_c, c0, rms = continuum
        jac_u, u0 = np.concatenate([jac_u, jac_c], axis=1), np.concatenate([u0, c0])
        mu, var = np.concatenate([mu, np.zeros_like(c0)]), np.concatenate([var, np.full(c0.size, rms**2)])
    prec0 = np.diag(1.0 / var)
    fisher = np.einsum("pk,mp,pl->mkl", jac_u, w, jac_u)
    a = fisher + prec0
    rhs = np.einsum("pk,mp->mk", jac_u, w * (y - flux0)) + (mu - u0) @ prec0
    centre = np.clip((u0 + np.linalg.solve(a, rhs[..., None])[..., 0])[:, :d], 0.0, 1.0)
    cov = np.linalg.inv(a)[:, :d, :d]
    return centre, np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, 1, 2)))


def _bank_log_likelihood(forward, bank_u, prior, obs: Observations, batch_size: int) -> np.ndarray:
    """log L of every bank draw for every star and magnitude, [N, M, S]; the bank's spectra are made
    one batch at a time and not kept."""
    n, m, p = obs.y.shape
    y, w = obs.y.reshape(n * m, p), obs.w.reshape(n * m, p)
    out = np.empty((n * m, bank_u.shape[0]))
    for i in range(0, bank_u.shape[0], batch_size):
        flux = simulate_flux(forward, bank_u[i : i + batch_size], prior, batch_size)
        out[:, i : i + batch_size] = obs.log_likelihood(y, w, flux)
    return out.reshape(n, m, -1)


def _star_draws(forward, prior: BoxPrior, obs: Observations, i: int, components: tuple, counts, rng, sampling):
    """Draws of star i's Student-t components, their log prior [K] and log likelihood [M, K]
    (the forward model runs only for draws inside the prior's box)."""
    u = draw_student_t(rng, *components, counts, sampling.dof)
    log_p = prior.log_density_u(u)
    ll = np.full((obs.y.shape[1], u.shape[0]), -np.inf)
    inside = np.isfinite(log_p)
    flux = simulate_flux(forward, u[inside], prior, sampling.batch_size)
    if flux.size:
        ll[:, inside] = obs.log_likelihood(obs.y[i], obs.w[i], flux)
    return u, log_p, ll


def _stage_size(sampling, stage: int) -> int:
    """Draws of one star in AMIS stage ``stage``: n_star split evenly over the n_stages stages; an
    extra stage draws as many as a regular one."""
    return sampling.n_star // sampling.n_stages + (stage < sampling.n_star % sampling.n_stages)


def _log_weights(log_p, ll, log_q) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(log_p), log_p - log_q, -np.inf) + ll


Forward = Callable[[torch.Tensor], torch.Tensor]


def allocate(n_draws: int, ess: np.ndarray, need: np.ndarray) -> list[int]:
    """``n_draws`` split over the magnitudes that ``need`` more, in proportion to 1 / ESS (the worst
    sampled get the most; before any draw, ESS 0 everywhere, an even split)."""
    exact = n_draws * (share := need / np.maximum(ess, 1.0)) / share.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact, kind="stable")[: n_draws - counts.sum()]] += 1  # largest remainders
    return counts.tolist()


def _one_star(forward, prior, obs: Observations, i: int, bank: tuple, sampling, rng) -> tuple:
    """Final log weights [M, S] and draws u [S, d] (bank first) of star i, by adaptive importance
    sampling (AMIS): the first stage draws from the linearised components, each later stage from
    components fitted to the weighted draws so far, more of them for the magnitudes with the smallest
    ESS; after each stage every draw is reweighted against the mixture of the prior and all components
    used so far. Up to ``extra_stages`` more stages follow while a magnitude's ESS is below ``min_ess``."""
    n_mags = obs.y.shape[1]
    lin_centre, lin_chol = linearised_fit(obs.flux0[i], obs.jac_u[i], obs.y[i], obs.w[i], obs.truth_u[i], prior,
                                          obs.linearisation(i))
    components = (lin_centre, sampling.inflate * lin_chol)
    u, lp, ll = bank
    centres, chols, counts, ess = [], [], [], np.zeros(n_mags)
    for stage in range(sampling.n_stages + sampling.extra_stages):
        need = np.ones(n_mags, bool) if stage < sampling.n_stages else ess < sampling.min_ess
        if not need.any():
            break
        stage_counts = allocate(_stage_size(sampling, stage), ess, need)
        u_s, lp_s, ll_s = _star_draws(forward, prior, obs, i, components, stage_counts, rng, sampling)
        u, lp, ll = np.concatenate([u, u_s]), np.concatenate([lp, lp_s]), np.concatenate([ll, ll_s], 1)
        centres.append(components[0]), chols.append(components[1]), counts.extend(stage_counts)
        log_q = log_mixture_density(u, lp, np.concatenate(centres), np.concatenate(chols), counts,
                                    sampling.n_prior, sampling.dof)
        log_w = _log_weights(lp, ll, log_q)
        ess = importance_summary(log_w, u[:, 0])["ess"]
        components = adapted_components(u, log_w, lin_chol, sampling.inflate_adapted)
    return log_w, u


def posterior_means(forward: Forward, truth: np.ndarray, mags, *, prior: BoxPrior, noise_seeds: Sequence[int],
                    noise_level: float = 1.0, sampling: PosteriorSampling = PosteriorSampling(),
                    index: int = LOGG, continuum: ContinuumError | None = None) -> dict[str, np.ndarray]:
    """Importance-sampling posterior of label ``index`` for stars ``truth`` [N, d] at each magnitude;
    with a ``continuum`` error, the observations carry the stars' true coefficients and the
    likelihood integrates them out (the sampled parameters are those of ``prior``).

    Returns arrays [M, N]: ``mean`` and ``sd`` (posterior, in the label's units), ``ess``, ``mc_var``
    (the Monte Carlo variance of ``mean``), ``bank_share`` (posterior weight carried by the prior
    bank), ``snr``; and ``truth`` [N] (the label's true values).
    """
    mags = [float(m) for m in mags]
    obs = observe(forward, prior.to_u(truth), prior, mags, noise_level=noise_level, noise_seeds=noise_seeds,
                  continuum=continuum)
    bank_u = prior.sample_u(sampling.n_prior, np.random.default_rng([sampling.seed, 0]))
    bank_lp = prior.log_density_u(bank_u)
    bank_ll = _bank_log_likelihood(forward, bank_u, prior, obs, sampling.batch_size)
    keys = ("mean", "sd", "ess", "mc_var", "bank_share")
    out = {k: np.empty((len(mags), truth.shape[0])) for k in keys}
    low, width = prior.low[index], prior.width[index]
    for i in range(truth.shape[0]):
        rng = np.random.default_rng([sampling.seed, 1, int(noise_seeds[i])])
        log_w, u = _one_star(forward, prior, obs, i, (bank_u, bank_lp, bank_ll[i]), sampling, rng)
        stats = importance_summary(log_w, u[:, index])
        stats["bank_share"] = np.exp(logsumexp(log_w[:, : sampling.n_prior], axis=-1)
                                     - logsumexp(log_w, axis=-1))
        stats["mean"], stats["sd"], stats["mc_var"] = low + width * stats["mean"], width * stats["sd"], \
            width**2 * stats["mc_var"]
        for k in keys:
            out[k][:, i] = stats[k]
    return {**out, "snr": obs.snr.T, "truth": np.asarray(truth, float)[:, index]}


