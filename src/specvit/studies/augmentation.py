"""The noise-augmentation study's tables (the arms and their runs: ``specvit.pipeline.augmentation``).

Per arm and N: the pooled test R² and MAE of log g (1 - MSE / Var(prior), the mean over seeds; the
bootstrap interval's ends averaged over seeds) and how many noise draws of each training spectrum
the arm's model saw: a baseline's ``noise_copies``, 1 for the ViT on one fixed draw, the epochs it
trained for the ViT with fresh draws. Per model group, the scaling slope dR²/dlog10 N of each arm and
their difference, the part of the slope that comes from the augmentation.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

COLUMNS = ["group", "model", "arm", "augmented", "noise_draws", "n_train", "n_seeds", "r2", "r2_lo", "r2_hi",
           "r2_seed_std", "mae"]
SLOPE_COLUMNS = ["group", "model", "n_min", "n_max", "slope_augmented", "slope_unaugmented", "slope_from_augmentation",
                 "r2_gain_at_n_min", "r2_gain_at_n_max"]
CAPTION = ("Noise-augmentation study: pooled test R² (1 − MSE / Var(log g prior)) and MAE of log g of each model "
           "with and without its noise augmentation, per training-set size N (mean over seeds; r2_lo/r2_hi: 95 % "
           "bootstrap interval, ends averaged over seeds). noise_draws: noisy draws of each training spectrum the "
           "model saw (LightGBM/Ridge: noise_copies; the ViT: its epochs with fresh noise, 1 with one fixed draw).")
SLOPE_CAPTION = ("Scaling slopes dR²/dlog10 N of each model with and without noise augmentation, their difference "
                 "(the part of the slope that comes from the augmentation), and the R² the augmentation adds at the "
                 "smallest and largest N.")


def arm_label(arm: dict) -> str:
    """How an arm is named in the table and the figure."""
    if arm["model"] == "vit":
        return "fresh noise every epoch" if arm["augmented"] else "one fixed noise draw"
    return f"{arm['noise_copies']} noisy cop{'ies' if arm['noise_copies'] > 1 else 'y'}"


def _pooled(metrics_test: pd.DataFrame) -> pd.Series:
    return metrics_test[metrics_test["view"] == "pooled"].iloc[0]


def _noise_draws(arm: dict, fits: list[dict]) -> float:
    if arm["model"] != "vit":
        return float(arm["noise_copies"])
    if not arm["augmented"]:
        return 1.0
    return float(np.mean([f.get("fit", {}).get("epochs", math.nan) for f in fits]))


def augmentation_table(arms: list[dict], metrics: dict[str, pd.DataFrame], run_info: dict[str, dict],
                       n_train: dict[str, int]) -> pd.DataFrame:
    """Rows ``COLUMNS`` per arm and N, from each run's ``metrics_test.csv`` (``metrics``), its
    ``metrics.json`` (``run_info``) and its N (``n_train``); ``arms`` as ``dataclasses.asdict(Arm)``."""
    rows = []
    for arm in arms:
        for n in sorted({n_train[r] for r in arm["runs"]}):
            runs = [r for r in arm["runs"] if n_train[r] == n]
            pooled = pd.DataFrame([_pooled(metrics[r]) for r in runs])
            draws = _noise_draws(arm, [run_info[r] for r in runs])
            rows.append({"group": arm["group"], "model": arm["model"], "arm": arm_label(arm),
                         "augmented": bool(arm["augmented"]), "noise_draws": draws,
                         "n_train": int(n), "n_seeds": len(runs), "r2": pooled["r2"].mean(),
                         "r2_lo": pooled["r2_lo"].mean(), "r2_hi": pooled["r2_hi"].mean(),
                         "r2_seed_std": pooled["r2"].std() if len(runs) > 1 else math.nan,
                         "mae": pooled["mae"].mean()})
    return pd.DataFrame(rows, columns=COLUMNS)


def _slope(rows: pd.DataFrame) -> float:
    return float(np.polyfit(np.log10(rows["n_train"]), rows["r2"], 1)[0]) if len(rows) > 1 else math.nan


def slopes(table: pd.DataFrame) -> pd.DataFrame:
    """Per model group: the slope of each arm, their difference and the augmentation's gain in R² at the
    smallest and largest N (``SLOPE_COLUMNS``)."""
    out = []
    for group, g in table.groupby("group", sort=False):
        aug, plain = g[g["augmented"]].sort_values("n_train"), g[~g["augmented"]].sort_values("n_train")
        gain = aug.set_index("n_train")["r2"] - plain.set_index("n_train")["r2"]
        s_aug, s_plain = _slope(aug), _slope(plain)
        out.append({"group": group, "model": g["model"].iloc[0], "n_min": int(g["n_train"].min()),
                    "n_max": int(g["n_train"].max()), "slope_augmented": s_aug, "slope_unaugmented": s_plain,
                    "slope_from_augmentation": s_aug - s_plain,
                    "r2_gain_at_n_min": float(gain.get(g["n_train"].min(), math.nan)),
                    "r2_gain_at_n_max": float(gain.get(g["n_train"].max(), math.nan))})
    return pd.DataFrame(out, columns=SLOPE_COLUMNS)
