"""From run folders to the paper's tables: which runs are "the" models, Table 3, the scaling curve.

Every number here is read from files the workflow made (``metrics_test.csv`` per run); the
figures read these tables in turn, so a table and its figure always show the same numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from specvit.training.spec import RunSpec

TABLE3_COLUMNS = ["model", "run_id", "n_train", "view", "mag", "snr_median", "n", "r2", "r2_lo", "r2_hi",
                  "mae", "mae_lo", "mae_hi", "rmse", "bias"]
SEED_COLUMNS = ["n_seeds", "r2_seed_mean", "r2_seed_std", "mae_seed_mean", "mae_seed_std"]
TABLE3_ALL_COLUMNS = TABLE3_COLUMNS + SEED_COLUMNS + ["in_train_mags"]
SCALING_COLUMNS = ["model", "n_train", "seed", "r2", "r2_lo", "r2_hi", "mae"]
TABLE3_CAPTION = ("Test R² and MAE of log g per model: pooled test set and per magnitude of the SNR sweep; "
                  "R² = 1 − MSE / Var(log g prior), the ceilings' denominator. r2_lo/r2_hi: 95 % bootstrap "
                  "interval of the model's lowest seed (test stars resampled); n_seeds, *_seed_mean, *_seed_std: "
                  "mean and standard deviation over its training seeds; in_train_mags: the row's magnitudes lie "
                  "inside data.train_mags (the others measure generalisation to another noise level). A model "
                  "scored on its first test stars only (n) has its ceilings on those stars in "
                  "ceiling_scored_stars.csv.")


def _seed_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, view, mag): the number of seeds and the mean and sample standard deviation of R²
    and MAE over them (NaN spread with one seed)."""
    keys = ["model", "view", "mag"]
    g = rows.groupby(keys, dropna=False)
    out = g.agg(n_seeds=("run_id", "nunique"), r2_seed_mean=("r2", "mean"), r2_seed_std=("r2", "std"),
                mae_seed_mean=("mae", "mean"), mae_seed_std=("mae", "std"))
    return out.reset_index()


def _in_range(view: str, mag: float, train_mags, test_mags) -> bool | None:
    """Whether a row's magnitudes lie inside the training magnitudes: a sweep row's own magnitude, the
    pooled view's whole ``data.test_mags`` range (None without ``train_mags``)."""
    if train_mags is None:
        return None
    lo, hi = sorted(train_mags)
    if view == "pooled":
        return test_mags is not None and lo <= min(test_mags) and max(test_mags) <= hi
    return bool(lo <= mag <= hi)


def table3(metrics: dict[str, pd.DataFrame], specs: dict[str, RunSpec], *, train_mags=None,
           test_mags=None) -> pd.DataFrame:
    """Table 3: per model, pooled metrics and R^2 per magnitude of the SNR sweep.

    ``metrics`` holds each model's runs at its largest N, one per seed. The row's metrics and
    bootstrap interval are those of the model's lowest seed (its main run); ``SEED_COLUMNS`` give
    the mean and spread over all its seeds; ``in_train_mags`` flags the rows whose magnitudes lie
    inside ``train_mags`` (``data.train_mags``; the pooled view: all of ``test_mags``): the others
    measure how a model generalises to another noise level.
    """
    rows = []
    for rid, df in metrics.items():
        spec = specs[rid]
        rows.append(df.assign(model=spec.group, run_id=rid, n_train=spec.n_train, seed=spec.seed))
    every = pd.concat(rows, ignore_index=True)
    main = every[every["seed"] == every.groupby("model")["seed"].transform("min")]
    out = main[TABLE3_COLUMNS].merge(_seed_columns(every), on=["model", "view", "mag"], how="left")
    out["in_train_mags"] = [_in_range(v, m, train_mags, test_mags) for v, m in zip(out["view"], out["mag"])]
    out["view_order"] = (out["view"] != "pooled").astype(int)
    out = out.sort_values(["model", "view_order", "mag"]).drop(columns="view_order").reset_index(drop=True)
    return out[TABLE3_ALL_COLUMNS]


def scaling(metrics: dict[str, pd.DataFrame], specs: dict[str, RunSpec]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pooled R^2 per run vs N, per-model summary: slope dR^2/dlog10 N and where a ViT overtakes LightGBM)."""
    rows = []
    for rid, df in metrics.items():
        spec = specs[rid]
        pooled = df[df["view"] == "pooled"].iloc[0]
        rows.append({"model": spec.group, "n_train": spec.n_train, "seed": spec.seed, "r2": pooled["r2"],
                     "r2_lo": pooled["r2_lo"], "r2_hi": pooled["r2_hi"], "mae": pooled["mae"]})
    table = pd.DataFrame(rows, columns=SCALING_COLUMNS).sort_values(["model", "n_train", "seed"]).reset_index(drop=True)
    mean = table.groupby(["model", "n_train"], as_index=False)["r2"].mean()
    kinds = {spec.group: spec.model for spec in specs.values()}
    lgb = [g for g in mean["model"].unique() if kinds.get(g) == "lightgbm"]
    summary = []
    for group, g in mean.groupby("model"):
        slope = np.polyfit(np.log10(g["n_train"]), g["r2"], 1)[0] if len(g) > 1 else float("nan")
        overtakes = float("nan")
        if kinds.get(group) == "vit" and lgb:
            ref = mean[mean["model"] == lgb[0]].set_index("n_train")["r2"]
            ahead = [n for n, r2 in zip(g["n_train"], g["r2"]) if n in ref.index and r2 > ref[n]]
            overtakes = float(min(ahead)) if ahead else float("nan")
        summary.append({"model": group, "slope_r2_per_dex": slope, "overtakes_lightgbm_at_n": overtakes,
                        "r2_at_max_n": float(g["r2"].iloc[-1]), "max_n": int(g["n_train"].iloc[-1])})
    return table, pd.DataFrame(summary)
