"""The metrics of the paper's tables: R², MAE, RMSE, bias, robust scatter and outliers, with
percentile-bootstrap intervals, per magnitude bin or pooled.

R² has one definition in every table and figure of the workflow: ``1 - MSE / Var``, with ``Var``
the variance of the label's prior (``data.labels``, ``specvit.physics.labels.LabelSpace``), the
same denominator the information ceilings use (``specvit.evaluation.ceilings``). Every function
here takes it as ``variance``; without one, R² falls back to sklearn's definition (1 - SS_res /
SS_tot about the sample's own mean), which the trainer's validation R² still uses.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

NMAD_SCALE = 1.4826  # makes the NMAD of a normal sample its standard deviation


OUTLIER_DEX = 1.0


METRIC_COLUMNS = ("snr_median", "n", "r2", "r2_lo", "r2_hi", "mae", "mae_lo", "mae_hi", "rmse", "bias",
                  "sigma_nmad", "outlier_frac")


# Bootstrap replicates are gathered this many values at a time, so memory stays bounded on the
# whole 90k-row sweep (200 x 90k float64 would be ~150 MB per array).
_BOOT_CHUNK_VALUES = 1 << 22


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true, dtype=np.float64).ravel(), np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    return t, p


def check_variance(variance) -> float | None:
    """``variance`` as a float, checked finite and positive; None stays None (sklearn's R²)."""
    if variance is None:
        return None
    v = float(variance)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"the R² reference variance must be finite and > 0, got {variance!r}")
    return v


def r2_of(y_true, y_pred, variance: float | None = None) -> float:
    """R²: 1 - MSE / ``variance`` (the label's prior variance: the workflow's one definition), or,
    without ``variance``, 1 - SS_res / SS_tot about the sample's own mean (NaN if y_true is constant)."""
    t, p = _pair(y_true, y_pred)
    v = check_variance(variance)
    if t.size == 0:
        return math.nan
    ss_res = float(np.sum((p - t) ** 2))
    if v is not None:
        return 1.0 - ss_res / t.size / v
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan


def point_metrics(y_true, y_pred, outlier_dex: float = OUTLIER_DEX, *, variance: float | None = None) -> dict:
    """R² (``r2_of``: against ``variance``, else sklearn's), MAE, RMSE, bias (mean of pred - true),
    sigma_NMAD (robust scatter: 1.4826 median |d - median d|), the fraction of |pred - true| >
    ``outlier_dex`` and n. All NaN when empty."""
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        return {k: math.nan for k in ("r2", "mae", "rmse", "bias", "sigma_nmad", "outlier_frac")} | {"n": 0}
    d = p - t
    return {
        "r2": r2_of(t, p, variance),
        "mae": float(np.mean(np.abs(d))),
        "rmse": float(np.sqrt(np.mean(d ** 2))),
        "bias": float(np.mean(d)),
        "sigma_nmad": NMAD_SCALE * float(np.median(np.abs(d - np.median(d)))),
        "outlier_frac": float(np.mean(np.abs(d) > outlier_dex)),
        "n": int(t.size),
    }


def bootstrap_intervals(y_true, y_pred, n_boot: int = 200, seed: int = 0, level: float = 0.95, *,
                        variance: float | None = None) -> dict:
    """Percentile-bootstrap intervals of R² (against ``variance``, as ``r2_of``) and MAE, resampling
    stars with replacement. A percentile interval need not contain the point estimate.

    Index matrices [chunk, n] come from one seeded generator (chunks only bound memory), so the
    same (data, n_boot, seed) gives the same intervals, and bins of equal size resample the same
    stars: on the sweep, where each magnitude holds the same stars in the same order, this is a
    paired bootstrap across magnitudes. NaN bounds when n < 2.
    """
    t, p = _pair(y_true, y_pred)
    n = t.size
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n < 2 or n_boot < 1:
        return {"r2_lo": math.nan, "r2_hi": math.nan, "mae_lo": math.nan, "mae_hi": math.nan}
    v = check_variance(variance)
    d = p - t
    r2, mae = np.empty(n_boot), np.empty(n_boot)
    for start, idx in resampled_stars(n, n_boot, seed):
        tb, db = t[idx], d[idx]
        if v is not None:
            r2[start:start + len(idx)] = 1.0 - np.mean(db ** 2, axis=1) / v
        else:
            ss_tot = np.sum((tb - tb.mean(axis=1, keepdims=True)) ** 2, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2[start:start + len(idx)] = np.where(ss_tot > 0, 1.0 - np.sum(db ** 2, axis=1) / ss_tot, np.nan)
        mae[start:start + len(idx)] = np.mean(np.abs(db), axis=1)
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    (r2_lo, r2_hi), (mae_lo, mae_hi) = np.nanpercentile(r2, q), np.percentile(mae, q)
    return {"r2_lo": float(r2_lo), "r2_hi": float(r2_hi), "mae_lo": float(mae_lo), "mae_hi": float(mae_hi)}


def resampled_stars(n: int, n_boot: int, seed: int):
    """Yield ``(first replicate, index matrix [chunk, n])``: ``n_boot`` bootstrap resamples of ``n``
    stars from one seeded generator, a chunk at a time (chunks only bound memory). Two calls with the
    same (n, n_boot, seed) resample the same stars: what makes a bootstrap paired."""
    rng = np.random.default_rng(seed)
    step = max(1, _BOOT_CHUNK_VALUES // max(n, 1))
    for start in range(0, n_boot, step):
        yield start, rng.integers(0, n, size=(min(step, n_boot - start), n))


def metrics_table(df: pd.DataFrame, label: str = "logg", by: str | None = "mag", n_boot: int = 200,
                  seed: int = 0, bins=None, level: float = 0.95, outlier_dex: float = OUTLIER_DEX, *,
                  variance: float | None = None) -> pd.DataFrame:
    """One row of metrics per value of ``df[by]`` (ascending), or one row for all when ``by`` is None.
    R² is computed against ``variance`` (the label's prior variance; see the module doc).

    ``bins`` (edges) groups a continuous ``by`` (e.g. the pooled view's own magnitudes) into
    intervals [lo, hi); the key column then holds the bin centre and values outside are dropped.
    Columns: ``<by> (or mag), snr_median, n, r2, r2_lo, r2_hi, mae, mae_lo, mae_hi, rmse, bias,
    sigma_nmad, outlier_frac``. ``outlier_dex`` is in the label's units (1 dex for logg).
    """
    t_col, p_col = f"true_{label}", f"pred_{label}"
    missing = [c for c in (t_col, p_col) + ((by,) if by else ()) if c not in df.columns]
    if missing:
        raise ValueError(f"prediction table lacks columns {missing}; it has {list(df.columns)}")
    key = by or "mag"
    if by is None:
        groups = [(math.nan, df)]
    elif bins is None:
        groups = list(df.groupby(by, sort=True, dropna=False))
    else:
        edges = np.asarray(bins, dtype=float)
        which = np.digitize(df[by].to_numpy(), edges) - 1  # bin i holds edges[i] <= v < edges[i + 1]
        groups = [((edges[i] + edges[i + 1]) / 2, df[which == i]) for i in range(len(edges) - 1)]
    rows = []
    for value, part in groups:
        t, p = part[t_col].to_numpy(), part[p_col].to_numpy()
        row = {key: float(value),
               "snr_median": float(np.median(part["snr"])) if "snr" in part and len(part) else math.nan}
        row.update(point_metrics(t, p, outlier_dex, variance=variance))
        row.update(bootstrap_intervals(t, p, n_boot=n_boot, seed=seed, level=level, variance=variance))
        rows.append(row)
    return pd.DataFrame(rows, columns=[key, *METRIC_COLUMNS])


def prior_variances(label_priors: dict | None, labels) -> dict[str, float]:
    """{label: variance of its prior}: the R² denominators of ``labels`` under the config's
    ``data.labels`` (None: the paper's uniform ranges), as the ceilings compute them."""
    from specvit.physics.labels import LabelSpace

    space = LabelSpace.from_config(label_priors)
    return {lab: float(space.priors[lab].variance()) for lab in labels}
