"""Paired differences between two models scored on the same stars, with a paired bootstrap.

Two intervals that overlap do not say whether two models differ on the same test stars; the
difference does, with an interval from resampling the stars once for both models. A model may
come with several training seeds: its predictions [S, n] (seeds x stars) are pooled, i.e. each
star's squared and absolute errors are averaged over the seeds, so the pooled R² is the mean of
the seeds' R² (the R² denominator, the label's prior variance, is the same for every seed) and
the pooled MAE the mean of their MAEs. The interval resamples stars only: it holds the seeds
fixed, and the seeds' own spread is reported beside it (Table 3's seed columns).

With R² = 1 - MSE / Var (``specvit.evaluation.metrics``) the difference of two models on a set of
stars is exact: R²_a - R²_b = (MSE_b - MSE_a) / Var.
"""
from __future__ import annotations

import math

import numpy as np

from specvit.evaluation.metrics import check_variance, resampled_stars

DIFFERENCE_COLUMNS = ("n", "r2_a", "r2_b", "r2_diff", "r2_diff_lo", "r2_diff_hi",
                      "mae_a", "mae_b", "mae_diff", "mae_diff_lo", "mae_diff_hi")


def _per_star_errors(y_true: np.ndarray, pred) -> tuple[np.ndarray, np.ndarray]:
    """(squared, absolute) error of every star [n], averaged over the seeds of ``pred`` [S, n] or [n]."""
    p = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    if p.shape[1] != y_true.size:
        raise ValueError(f"predictions have {p.shape[1]} stars per seed but y_true has {y_true.size}")
    d = p - y_true[None, :]
    return np.mean(d ** 2, axis=0), np.mean(np.abs(d), axis=0)


def paired_difference(y_true, pred_a, pred_b, *, variance: float, n_boot: int = 200, seed: int = 0,
                      level: float = 0.95) -> dict:
    """R² and MAE of model a and model b on the same stars, their differences (a - b) and percentile
    intervals of the differences from a paired bootstrap: every replicate resamples the stars once
    and scores both models on them. ``pred_a`` and ``pred_b`` are [n] or [seeds, n] (seeds pooled,
    see the module doc); ``variance`` is the R² denominator. Keys ``DIFFERENCE_COLUMNS``; NaN
    interval when n < 2."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    v = check_variance(variance)
    if v is None:
        raise ValueError("paired_difference needs the R² reference variance")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    sq_a, abs_a = _per_star_errors(t, pred_a)
    sq_b, abs_b = _per_star_errors(t, pred_b)
    n = t.size
    out = {"n": int(n), "r2_a": 1 - sq_a.mean() / v, "r2_b": 1 - sq_b.mean() / v,
           "mae_a": float(abs_a.mean()), "mae_b": float(abs_b.mean())}
    out["r2_diff"], out["mae_diff"] = out["r2_a"] - out["r2_b"], out["mae_a"] - out["mae_b"]
    bounds = dict.fromkeys(("r2_diff_lo", "r2_diff_hi", "mae_diff_lo", "mae_diff_hi"), math.nan)
    if n >= 2 and n_boot >= 1:
        d_sq, d_abs = sq_b - sq_a, abs_a - abs_b  # per star: what a gains in R² (x Var), in MAE
        r2, mae = np.empty(n_boot), np.empty(n_boot)
        for start, idx in resampled_stars(n, n_boot, seed):
            r2[start:start + len(idx)] = d_sq[idx].mean(axis=1) / v
            mae[start:start + len(idx)] = d_abs[idx].mean(axis=1)
        q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
        (bounds["r2_diff_lo"], bounds["r2_diff_hi"]), (bounds["mae_diff_lo"], bounds["mae_diff_hi"]) = (
            np.percentile(r2, q), np.percentile(mae, q))
    out.update({k: float(x) for k, x in bounds.items()})
    return {k: (float(out[k]) if k != "n" else out[k]) for k in DIFFERENCE_COLUMNS}
