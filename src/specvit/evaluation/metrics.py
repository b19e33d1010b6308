"""The metrics of the paper's tables: R², MAE, RMSE, bias, robust scatter and outliers, with
percentile-bootstrap intervals, per magnitude bin or pooled."""
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


def point_metrics(y_true, y_pred, outlier_dex: float = OUTLIER_DEX) -> dict:
    """R² (sklearn's: 1 - SS_res / SS_tot about the bin's own mean), MAE, RMSE, bias (mean of
    pred - true), sigma_NMAD (robust scatter: 1.4826 median |d - median d|), the fraction of
    |pred - true| > ``outlier_dex`` and n. R² is NaN when y_true is constant; all NaN when empty."""
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        return {k: math.nan for k in ("r2", "mae", "rmse", "bias", "sigma_nmad", "outlier_frac")} | {"n": 0}
    d = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "r2": 1.0 - float(np.sum(d ** 2)) / ss_tot if ss_tot > 0 else math.nan,
        "mae": float(np.mean(np.abs(d))),
        "rmse": float(np.sqrt(np.mean(d ** 2))),
        "bias": float(np.mean(d)),
        "sigma_nmad": NMAD_SCALE * float(np.median(np.abs(d - np.median(d)))),
        "outlier_frac": float(np.mean(np.abs(d) > outlier_dex)),
        "n": int(t.size),
    }


def bootstrap_intervals(y_true, y_pred, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile-bootstrap intervals of R² and MAE, resampling stars with replacement.

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
    rng = np.random.default_rng(seed)
    d = p - t
    r2, mae = np.empty(n_boot), np.empty(n_boot)
    step = max(1, _BOOT_CHUNK_VALUES // n)
    for start in range(0, n_boot, step):
        idx = rng.integers(0, n, size=(min(step, n_boot - start), n))
        tb, db = t[idx], d[idx]
        ss_tot = np.sum((tb - tb.mean(axis=1, keepdims=True)) ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2[start:start + len(idx)] = np.where(ss_tot > 0, 1.0 - np.sum(db ** 2, axis=1) / ss_tot, np.nan)
        mae[start:start + len(idx)] = np.mean(np.abs(db), axis=1)
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    (r2_lo, r2_hi), (mae_lo, mae_hi) = np.nanpercentile(r2, q), np.percentile(mae, q)
    return {"r2_lo": float(r2_lo), "r2_hi": float(r2_hi), "mae_lo": float(mae_lo), "mae_hi": float(mae_hi)}


def metrics_table(df: pd.DataFrame, label: str = "logg", by: str | None = "mag", n_boot: int = 200,
                  seed: int = 0, bins=None, level: float = 0.95, outlier_dex: float = OUTLIER_DEX) -> pd.DataFrame:
    """One row of metrics per value of ``df[by]`` (ascending), or one row for all when ``by`` is None.

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
        row.update(point_metrics(t, p, outlier_dex))
        row.update(bootstrap_intervals(t, p, n_boot=n_boot, seed=seed, level=level))
        rows.append(row)
    return pd.DataFrame(rows, columns=[key, *METRIC_COLUMNS])
