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
SCALING_COLUMNS = ["model", "n_train", "seed", "r2", "r2_lo", "r2_hi", "mae"]


def table3(metrics: dict[str, pd.DataFrame], specs: dict[str, RunSpec]) -> pd.DataFrame:
    """Table 3: per model, pooled metrics and R^2 per magnitude of the SNR sweep."""
    rows = []
    for rid, df in metrics.items():
        spec = specs[rid]
        df = df.assign(model=spec.group, run_id=rid, n_train=spec.n_train)
        rows.append(df[TABLE3_COLUMNS])
    out = pd.concat(rows, ignore_index=True)
    out["view_order"] = (out["view"] != "pooled").astype(int)
    return out.sort_values(["model", "view_order", "mag"]).drop(columns="view_order").reset_index(drop=True)


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
