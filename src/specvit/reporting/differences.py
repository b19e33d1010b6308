"""The paired differences of the main models (``results/tables/model_differences.*``).

For every pair of main models (in the order of the config's run groups: model a is the earlier
group), every view and every magnitude of the sweep: the difference a - b of their test R² and MAE
on the same stars, with a paired-bootstrap 95 % interval (``specvit.evaluation.paired``). Each
model's training seeds are pooled; a model scored on its first test stars only (the template fit's
``max_eval_stars``) is compared with the others on those stars. R² is the workflow's one definition,
1 - MSE / Var(prior), with the denominator stored in the prediction files.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from specvit.evaluation.paired import DIFFERENCE_COLUMNS, paired_difference
from specvit.evaluation.predictions import r2_variance

KEY_COLUMNS = ["model_a", "model_b", "view", "mag", "n_seeds_a", "n_seeds_b"]
COLUMNS = KEY_COLUMNS + list(DIFFERENCE_COLUMNS)
CAPTION = ("Paired differences of the main models (a − b) on the same test stars: R² (1 − MSE / Var(log g prior)) "
           "and MAE, with 95 % paired-bootstrap intervals (the same resampled stars for both models); each model's "
           "training seeds pooled (n_seeds_a, n_seeds_b); n: the stars both were scored on. The interval holds the "
           "seeds fixed: their own spread is in table3_seeds.")


def _cells(df: pd.DataFrame, view: str):
    """(mag, rows) of one prediction table: the whole pooled view (mag None), or each sweep magnitude."""
    if view == "pooled":
        yield None, df
        return
    for mag, rows in df.groupby("mag", sort=True):
        yield float(mag), rows


def _aligned(seeds_a: list[pd.DataFrame], seeds_b: list[pd.DataFrame], label: str):
    """(truth [n], pred_a [S_a, n], pred_b [S_b, n]) on the stars every seed of both models was scored on."""
    every = seeds_a + seeds_b
    common = sorted(set.intersection(*(set(d["star"]) for d in every)))
    by_star = [d.set_index("star").loc[common] for d in every]
    truth = by_star[0][f"true_{label}"].to_numpy(float)
    preds = np.stack([d[f"pred_{label}"].to_numpy(float) for d in by_star])
    return truth, preds[:len(seeds_a)], preds[len(seeds_a):]


def _variance(frames: list[pd.DataFrame], label: str) -> float:
    values = {r2_variance(d, label) for d in frames}
    if len(values) != 1 or None in values:
        raise ValueError(f"the prediction files do not share one stored R² denominator of {label} ({values}); "
                         "evaluate every run with the same config")
    return values.pop()


def model_differences(predictions: dict[str, dict[str, list[pd.DataFrame]]], *, label: str = "logg",
                      n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """The table (``COLUMNS``) from ``predictions`` {model: {view: [prediction table of each seed]}}
    (``read_predictions``), models in the order of the pairs; ``n_boot`` resamples from ``seed``."""
    rows = []
    for a, b in combinations(predictions, 2):
        for view in predictions[a]:
            cells_a = [dict(_cells(d, view)) for d in predictions[a][view]]
            cells_b = [dict(_cells(d, view)) for d in predictions[b][view]]
            for mag in cells_a[0]:
                part_a = [c[mag] for c in cells_a]
                part_b = [c[mag] for c in cells_b if mag in c]
                if len(part_b) != len(cells_b):
                    continue  # b was not scored at this magnitude
                truth, pa, pb = _aligned(part_a, part_b, label)
                diff = paired_difference(truth, pa, pb, variance=_variance(part_a + part_b, label),
                                         n_boot=n_boot, seed=seed)
                rows.append({"model_a": a, "model_b": b, "view": view, "mag": np.nan if mag is None else mag,
                             "n_seeds_a": len(pa),
                             "n_seeds_b": len(pb), **diff})
    return pd.DataFrame(rows, columns=COLUMNS)
