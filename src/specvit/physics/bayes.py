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


def bayes_bound_box(theta: np.ndarray, fisher: np.ndarray, low: np.ndarray, high: np.ndarray, *,
                    index: int = LOGG, sampling: BoxSampling = BoxSampling()) -> np.ndarray:
    """Per-star Bayes MSE of label ``index`` with a uniform prior on the whole label box.

    The same local linear-Gaussian model as ``bayes_bound`` (an efficient estimate
    t ~ N(theta, F^-1)), but the posterior mean E[theta | t] uses the prior on all labels:
    the other labels are bounded too, which adds information where log g is degenerate with
    them. E[theta | t] is a mean of N(t, F^-1) truncated to the box, estimated by defensive
    importance sampling (half the samples from N(t, F^-1), half uniform in the box, so it
    works whether the likelihood is narrow or much wider than the box); the squared error
    uses two independent halves of the samples, (theta - m1)(theta - m2), which removes the
    upward bias that the sampling noise of one estimate would add. ``sampling.n_draws`` values
    of t per star. Works in box units, so the result is in the label's units squared.
    """
    n_draws, n_samples, batch_size = sampling.n_draws, sampling.n_samples, sampling.batch_size
    theta = np.asarray(theta, float)
    width = np.asarray(high, float) - np.asarray(low, float)
    u_true = (theta - low) / width
    f_u = np.asarray(fisher, float) * width[:, None] * width[None, :]
    k = theta.shape[1]
    half = n_samples // 2
    rng = np.random.default_rng(sampling.seed)
    out = np.empty(theta.shape[0])
    for start in range(0, theta.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        b = u_true[sl].shape[0]
        f = f_u[sl] + 1e-9 * np.eye(k) * np.trace(f_u[sl], axis1=1, axis2=2)[:, None, None]
        chol = np.linalg.cholesky(f)                                       # F = L L^T
        inv_l = np.linalg.inv(chol)                                        # (L^-T)^T, so z @ L^-1 = (L^-T z)^T
        log_norm = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1) - 0.5 * k * np.log(2 * np.pi)

        def gauss(z, b=b, inv_l=inv_l):  # z [b, ...] standard normal -> L^-T z, a draw from N(0, F^-1)
            return (z.reshape(b, -1, k) @ inv_l).reshape(z.shape)

        t = u_true[sl][:, None, :] + gauss(rng.standard_normal((b, n_draws, k)))
        proposals = np.concatenate([
            t[:, :, None, :] + gauss(rng.standard_normal((b, n_draws, half, k))),
            rng.uniform(size=(b, n_draws, n_samples - half, k)),
        ], axis=2)
        d = proposals - t[:, :, None, :]
        quad = ((d.reshape(b, -1, k) @ chol) ** 2).sum(-1).reshape(d.shape[:-1])  # d^T F d = |L^T d|^2
        density = np.exp(log_norm[:, None, None] - 0.5 * quad)
        inside = np.all((proposals >= 0.0) & (proposals <= 1.0), axis=-1)
        w = inside * density / (0.5 * density + 0.5 * inside)
        w = np.nan_to_num(w)
        x = proposals[..., index]
        m1 = (w[..., 0::2] * x[..., 0::2]).sum(-1) / np.maximum(w[..., 0::2].sum(-1), 1e-300)
        m2 = (w[..., 1::2] * x[..., 1::2]).sum(-1) / np.maximum(w[..., 1::2].sum(-1), 1e-300)
        err = (u_true[sl][:, None, index] - m1) * (u_true[sl][:, None, index] - m2)
        out[sl] = err.mean(axis=1) * width[index] ** 2
    return out
