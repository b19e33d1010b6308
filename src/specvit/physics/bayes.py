"""Prior-aware (Bayes) bounds on the mean squared error of log g, from a star's Fisher information.

The Cramer-Rao bound holds for unbiased estimators only; at low SNR an estimator that knows log g
lies in [low, high] beats it. Under the local linear-Gaussian approximation the spectrum of a star
with true labels theta is summarised by an efficient unbiased estimate t ~ N(theta, F^-1). Given
the prior, the estimator with the least mean squared error is the posterior mean E[theta | t],
and B(theta) = E_t[(theta - E[theta | t])^2] is its per-star Bayes bound:

- ``bayes_bound``: log g alone (s^2 its CRLB) with its prior (uniform, or a normal truncated to
  [low, high]); the posterior is a truncated normal in closed form, and B is evaluated by
  Gauss-Hermite quadrature over t;
- ``bayes_bound_box``: every label of the Fisher matrix with a uniform prior on the label box; the
  posterior mean is estimated by defensive importance sampling.

Averaged over theta ~ prior, B is the Bayes (minimum) MSE of an estimator that sees t: no such
estimator beats mean(B) on average over the prior. It is exact for a linear model with Gaussian
noise; for strongly non-linear spectra at very low SNR the true likelihood is not Gaussian and the
bound is an approximation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

from specvit.physics.labels import LOGG, LabelPrior


def _log_phi(x):
    return -0.5 * x * x - 0.5 * np.log(2 * np.pi)


def _truncnorm_mean(alpha, beta):
    """Mean of a standard normal truncated to [alpha, beta], stable far in either tail."""
    alpha, beta = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(beta, float))
    flip = alpha > 0  # both bounds in the upper tail: reflect into the lower one
    a, b = np.where(flip, -beta, alpha), np.where(flip, -alpha, beta)
    with np.errstate(all="ignore"):
        direct = (np.exp(_log_phi(a)) - np.exp(_log_phi(b))) / (ndtr(b) - ndtr(a))
        # b < 0: factor phi(b), Phi(b) out of numerator and denominator
        tail = (-np.exp(_log_phi(b) - log_ndtr(b)) * np.expm1(0.5 * (b * b - a * a))
                / np.expm1(log_ndtr(a) - log_ndtr(b)))
        mean = np.where(b < 0, tail, direct)
    return np.clip(np.where(flip, -mean, mean), alpha, beta)


def posterior_mean(t, s2, prior: LabelPrior):
    """E[theta | t] for t ~ N(theta, s2) and theta ~ ``prior`` (uniform, or normal truncated to
    [low, high]): the posterior is a normal truncated to [low, high]."""
    t, s2 = np.asarray(t, float), np.asarray(s2, float)
    if prior.distribution == "normal":
        v = 1.0 / (1.0 / s2 + 1.0 / prior.std ** 2)
        m = v * (t / s2 + prior.mean / prior.std ** 2)
    else:
        v, m = s2, t
    sd = np.sqrt(v)
    return m + sd * _truncnorm_mean((prior.low - m) / sd, (prior.high - m) / sd)


def bayes_bound(theta, s2, prior: LabelPrior, n_nodes: int = 64) -> np.ndarray:
    """Per-star Bayes bound E_t[(theta - E[theta | t])^2], t ~ N(theta, s2); broadcasts theta
    against s2. Gauss-Hermite quadrature over t with ``n_nodes`` nodes."""
    width = prior.high - prior.low
    theta = np.asarray(theta, float)
    s = np.clip(np.sqrt(np.asarray(s2, float)), 1e-9 * width, 1e4 * width)  # s=inf: the prior alone
    s = np.nan_to_num(s, nan=1e4 * width)
    x, w = np.polynomial.hermite.hermgauss(n_nodes)
    t = theta[..., None] + np.sqrt(2.0) * s[..., None] * x
    err2 = (theta[..., None] - posterior_mean(t, (s * s)[..., None], prior)) ** 2
    return err2 @ (w / np.sqrt(np.pi))


def bayes_risk(s2, prior: LabelPrior, n_theta: int = 401, n_nodes: int = 64) -> np.ndarray:
    """Bayes MSE for a constant CRLB ``s2`` (scalar or array): ``bayes_bound`` averaged over
    theta ~ prior (Gauss-Legendre in theta on [low, high] weighted by the prior density)."""
    x, w = np.polynomial.legendre.leggauss(n_theta)
    theta = prior.low + (x + 1.0) * 0.5 * (prior.high - prior.low)
    if prior.distribution == "normal":
        w = w * np.exp(-0.5 * ((theta - prior.mean) / prior.std) ** 2)
    w = w / w.sum()
    s2 = np.asarray(s2, float)
    return bayes_bound(theta, s2[..., None], prior, n_nodes) @ w


@dataclass(frozen=True)
class BoxSampling:
    """The importance sampling of ``bayes_bound_box``: ``n_draws`` values of t per star,
    ``n_samples`` samples per posterior mean, from ``seed``, ``batch_size`` stars at a time."""

    n_draws: int = 16
    n_samples: int = 1024
    seed: int = 0
    batch_size: int = 64


def _sum_last(a: np.ndarray) -> np.ndarray:
    """Sum over a short last axis (the labels) as a matrix-vector product: numpy's reduction over a
    last axis of 5 is several times slower."""
    return a @ np.ones(a.shape[-1])


def _inside_unit_box(u: np.ndarray) -> np.ndarray:
    """u [..., k] in [0, 1]^k, label by label (no reduction over the short last axis)."""
    ok = np.abs(u - 0.5) <= 0.5
    return np.logical_and.reduce([ok[..., j] for j in range(u.shape[-1])])


def _box_posterior_means(u_true, chol, inv_l, draws, index: int):
    """Two independent estimates (even and odd samples) of E[u_index | t] [b, n_draws] for stars u_true
    [b, k] with Fisher factors chol (F = L L^T) and inv_l = L^-1, from the standard normal and uniform
    ``draws`` of their batch (see ``bayes_bound_box``)."""
    z_t, z, uni, zz = draws
    b, k = u_true.shape
    log_norm = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1) - 0.5 * k * np.log(2 * np.pi)

    def gauss(x):  # x [b, ...] standard normal -> L^-T x, a draw from N(0, F^-1)
        return (x.reshape(b, -1, k) @ inv_l).reshape(x.shape)

    t = u_true[:, None, :] + gauss(z_t)                                         # [b, D, k]
    near = t[:, :, None, :] + gauss(z)                                         # N(t, F^-1) half
    # For the normal half d = L^-T z, so d^T F d = |z|^2 (zz); the uniform half is inside the box.
    dens_near = np.exp(log_norm[:, None, None] - 0.5 * zz) * _inside_unit_box(near)
    d = uni - t[:, :, None, :]
    quad = _sum_last((d.reshape(b, -1, k) @ chol) ** 2).reshape(d.shape[:-1])  # d^T F d = |L^T d|^2
    dens_uni = np.exp(log_norm[:, None, None] - 0.5 * quad)
    w_near = np.nan_to_num(dens_near / (0.5 * dens_near + 0.5))                  # 0 outside the box
    w_uni = np.nan_to_num(dens_uni / (0.5 * dens_uni + 0.5))
    x_near, x_uni = near[..., index], uni[..., index]
    first = z.shape[2] % 2  # the uniform half's samples that are even in the whole set
    means = []
    for a, c in ((0, first), (1, 1 - first)):
        wsum = w_near[..., a::2].sum(-1) + w_uni[..., c::2].sum(-1)
        wx = (w_near[..., a::2] * x_near[..., a::2]).sum(-1) + (w_uni[..., c::2] * x_uni[..., c::2]).sum(-1)
        means.append(wx / np.maximum(wsum, 1e-300))
    return means


def bayes_bound_box(theta: np.ndarray, fisher: np.ndarray, low: np.ndarray, high: np.ndarray, *,
                    index: int = LOGG, sampling: BoxSampling = BoxSampling()) -> np.ndarray:
    """Per-star Bayes MSE of label ``index`` with a uniform prior on the whole label box.

    theta [N, k]; fisher [..., N, k, k], one Fisher matrix per star with any leading axes (e.g. one
    per magnitude); returns [..., N]. The same local linear-Gaussian model as ``bayes_bound`` (an
    efficient estimate t ~ N(theta, F^-1)), but the posterior mean E[theta | t] uses the prior on all
    labels: the other labels are bounded too, which adds information where log g is degenerate with
    them. E[theta | t] is a mean of N(t, F^-1) truncated to the box, estimated by defensive
    importance sampling (half the samples from N(t, F^-1), half uniform in the box, so it works
    whether the likelihood is narrow or much wider than the box); the squared error uses two
    independent halves of the samples, (theta - m1)(theta - m2), which removes the upward bias that
    the sampling noise of one estimate would add. ``sampling.n_draws`` values of t per star. Every
    leading index uses the same standard normal and uniform numbers (common random numbers: the
    Monte Carlo noise of a difference between magnitudes is smaller, and the numbers are drawn once).
    Works in box units, so the result is in the label's units squared.
    """
    n_draws, n_samples, batch_size = sampling.n_draws, sampling.n_samples, sampling.batch_size
    theta = np.asarray(theta, float)
    width = np.asarray(high, float) - np.asarray(low, float)
    u_true = (theta - low) / width
    f_u = np.asarray(fisher, float) * width[:, None] * width[None, :]
    lead, (n, k) = f_u.shape[:-3], theta.shape
    f_u = f_u.reshape(-1, n, k, k)
    half = n_samples // 2
    rng = np.random.default_rng(sampling.seed)
    out = np.empty((f_u.shape[0], n))
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        b = u_true[sl].shape[0]
        z_t = rng.standard_normal((b, n_draws, k))
        z = rng.standard_normal((b, n_draws, half, k))
        draws = (z_t, z, rng.uniform(size=(b, n_draws, n_samples - half, k)), _sum_last(z * z))
        truth = u_true[sl][:, None, index]
        for m in range(f_u.shape[0]):
            f = f_u[m, sl] + 1e-9 * np.eye(k) * np.trace(f_u[m, sl], axis1=1, axis2=2)[:, None, None]
            chol = np.linalg.cholesky(f)                                   # F = L L^T
            m1, m2 = _box_posterior_means(u_true[sl], chol, np.linalg.inv(chol), draws, index)
            out[m, sl] = ((truth - m1) * (truth - m2)).mean(axis=1) * width[index] ** 2
    return out.reshape(*lead, n)
