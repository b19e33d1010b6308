"""Evaluation of one model at several test noise levels (the cross-noise robustness ablation, P1.4).

The pooled test view (each star at its own magnitude, ``flux + level * error * eps``) is
predicted once per noise level. The draw ``eps`` is the pooled view's own fixed draw
(``evaluate.block_seed(seed, "pooled")``) at every level, so the levels differ only in the
noise amplitude, and at level 1.0 (with ``eval.noise_level`` 1.0) the spectra, and so the
metrics, are exactly those of the run's ``metrics_test.csv`` pooled row.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

# _truth: the true labels and own magnitudes of exactly the rows a view yields
from specvit.evaluation.metrics import METRIC_COLUMNS, metrics_table
from specvit.evaluation.predictions import _truth, view_inputs

NOISE_COLUMNS = ["test_noise", "label", *METRIC_COLUMNS]


def metrics_at_noise_levels(model, test_path, noise_levels: Sequence[float], seed: int, labels=None,
                            rows=None, n_boot: int = 200, variances: dict | None = None) -> pd.DataFrame:
    """One row of pooled-view metrics (``evaluate.metrics_table``) per noise level and label.

    ``labels`` defaults to every label the model predicts; ``rows`` selects test stars as in
    ``evaluate.view_inputs``; ``variances`` {label: R² denominator} (the prior's; without it R² is
    sklearn's). Columns ``NOISE_COLUMNS``.
    """
    levels = [float(v) for v in noise_levels]
    if not levels or any(not (math.isfinite(v) and v >= 0) for v in levels):
        raise ValueError(f"test noise levels must be a non-empty list of finite values >= 0, got {list(noise_levels)}")
    if len(set(levels)) != len(levels):
        raise ValueError(f"test noise levels {levels} repeat; each must appear once")
    labels = list(model.labels if labels is None else labels)
    stars, truth, own_mag = _truth(test_path, labels, rows)
    parts = []
    for level in levels:
        (_, x, snr), = view_inputs(test_path, "pooled", noise_level=level, seed=seed, rows=rows)
        pred = model.predict(x)
        df = pd.DataFrame({"mag": own_mag, "snr": snr, **{f"true_{k}": truth[k] for k in labels},
                           **{f"pred_{k}": pred[k] for k in labels}})
        for lab in labels:
            table = metrics_table(df, label=lab, by=None, n_boot=n_boot, seed=seed,
                                  variance=(variances or {}).get(lab)).drop(columns="mag")
            parts.append(table.assign(test_noise=level, label=lab))
    return pd.concat(parts, ignore_index=True)[NOISE_COLUMNS]
