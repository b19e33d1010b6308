"""Ablations: groups of run variants declared in the config, expanded into ordinary runs, and
summarised into one table each (the paper's P0.5 and P1.1-P1.4).

One ablation in the config is a base run group, a list of named variants (each a set of
overrides of the base), the training-set size and the seeds::

    ablations:
      pe:
        base: {model: vit, preset: tiny, train: {lr: 0.001}}
        n_train: 10000
        seeds: [0, 1, 2]
        variants:
          - {name: none, vit: {pos_encoding: none}}
          - {name: rope, vit: {pos_encoding: rope}}

Each variant becomes the run group ``abl-<ablation>-<variant>`` (mappings such as ``vit``,
``train`` and ``params`` are merged into the base's, other fields replace it), so its runs have
the readable, stable ids ``abl-pe-rope-N10000-s0`` and are trained and evaluated by the same
rules as every other run. The ablation names are fixed: each has its table and figure, and the
columns that describe a variant (``KINDS``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from specvit.evaluation.metrics import point_metrics
from specvit.evaluation.predictions import r2_variance, read_predictions
from specvit.physics.labels import LABEL_NAMES
from specvit.training.spec import RunSpec

GROUP_PREFIX = "abl"


@dataclass(frozen=True)
class Kind:
    """How one ablation is reported: its output names and the columns that identify a cell."""

    table: str            # results/tables/<table>.{csv,md,tex}
    figure: str           # results/figures/<figure>.{pdf,png}
    keys: tuple           # columns that identify a cell of the table (besides variant order)
    section: str          # the paper section (report category)
    per_label: bool = False    # one row per predicted label (multi-task)
    test_noise: bool = False   # one row per test noise level (needs metrics_noise.csv)


KINDS: dict[str, Kind] = {
    "tokenization": Kind("ablation_tokenization", "fig_tokenization",
                         ("variant", "tokenizer", "patch", "stride", "init", "token_norm", "lr", "warmup_epochs",
                          "clip"),
                         "P0.5 tokenization"),
    "pe": Kind("ablation_pe", "fig_pe", ("variant", "pos_encoding"), "P1.2 positional encoding"),
    "loss_norm": Kind("ablation_loss_norm", "fig_loss_norm_curves", ("variant", "loss", "label_norm"),
                      "P1.1 loss and label normalisation"),
    "multitask": Kind("multitask", "fig_multitask_residuals", ("label", "setting"), "P1.3 multi-task",
                      per_label=True),
    "robustness": Kind("robustness_matrix", "fig_robustness_matrix", ("model", "train_noise", "test_noise"),
                       "P1.4 cross-noise robustness", test_noise=True),
}


def group_name(ablation: str, variant: str) -> str:
    return f"{GROUP_PREFIX}-{ablation}-{variant}"


def variant_of(spec: RunSpec, ablation: str) -> str:
    return spec.group.removeprefix(f"{GROUP_PREFIX}-{ablation}-")


# ----------------------------------------------------------------------------- tables


def tokenizer_columns(vit: dict) -> dict:
    """How a ViT cuts the spectrum into tokens, as table columns (the ablation and init-gradient tables)."""
    return {"tokenizer": vit.get("tokenizer"), "patch": vit.get("patch"),
            "stride": vit.get("stride") or vit.get("patch"), "init": vit.get("tokenizer_init", "lecun"),
            "token_norm": vit.get("token_norm", "none")}


def describe(spec: RunSpec, ablation: str) -> dict:
    """The columns that say what a run's variant is (from the resolved spec, not its name)."""
    vit, train = spec.vit, spec.train
    return {
        "variant": variant_of(spec, ablation), "setting": variant_of(spec, ablation), "model": spec.model,
        **tokenizer_columns(vit), "pos_encoding": vit.get("pos_encoding"),
        "lr": train.get("lr"), "warmup_epochs": train.get("warmup_epochs"), "clip": train.get("clip"),
        "loss": train.get("loss", "mse"), "label_norm": train.get("label_norm", "standard"),
        "train_noise": spec.noise_level,
    }


def read_history(run_dir) -> pd.DataFrame | None:
    path = Path(run_dir) / "history.csv"
    return pd.read_csv(path) if path.exists() else None


def diverged(metrics: dict) -> bool:
    """The loss of the run became non-finite (the trainer, with ``on_nonfinite: skip``, skipped the step)."""
    return bool(metrics.get("fit", {}).get("skipped_steps", 0) > 0)


def failed(metrics: dict) -> bool:
    """The run diverged, or no epoch predicted the validation set better than its mean (R² <= 0)."""
    best = metrics.get("fit", {}).get("best_val_r2")
    return diverged(metrics) or best is None or not math.isfinite(best) or best <= 0


def run_rows(ablation: str, spec: RunSpec, run_dir) -> list[dict]:
    """Per-run rows of an ablation's long table: test R² and MAE (pooled view) per label, or per
    test noise level for ``robustness``; ViT runs add their gradient norm and divergence."""
    run_dir = Path(run_dir)
    base = {"run_id": spec.run_id, "seed": spec.seed, **describe(spec, ablation)}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = read_history(run_dir)
    base["grad_norm_median"] = float(history["grad_norm_median"].median()) if history is not None else math.nan
    base["diverged"] = diverged(metrics) if spec.model == "vit" else False
    base["failed"] = failed(metrics) if spec.model == "vit" else False
    rows = []
    if KINDS[ablation].test_noise:
        noise = pd.read_csv(run_dir / "metrics_noise.csv")
        for r in noise[noise["label"] == "logg"].itertuples():
            rows.append({**base, "label": r.label, "test_noise": r.test_noise, "r2": r.r2, "mae": r.mae})
        return rows
    pred = read_predictions(run_dir / "predictions_pooled.h5")
    labels = spec.labels if KINDS[ablation].per_label else ("logg",)
    for lab in labels:
        m = point_metrics(pred[f"true_{lab}"], pred[f"pred_{lab}"], variance=r2_variance(pred, lab))
        rows.append({**base, "label": lab, "test_noise": math.nan, "r2": m["r2"], "mae": m["mae"]})
    return rows


def long_table(ablation: str, specs: dict[str, RunSpec], run_dirs: dict[str, Path]) -> pd.DataFrame:
    """All per-run rows of one ablation (every seed), in variant declaration order."""
    rows = [row for rid, spec in specs.items() for row in run_rows(ablation, spec, run_dirs[rid])]
    return pd.DataFrame(rows)


def summarise(long: pd.DataFrame, ablation: str) -> pd.DataFrame:
    """The ablation's table: one row per cell (``KINDS[ablation].keys``), mean and sample standard
    deviation over seeds of R² and MAE; the tokenization table adds the median gradient norm of
    all epochs of all seeds and the number of seeds that diverged."""
    keys = list(KINDS[ablation].keys)
    order = {v: i for i, v in enumerate(dict.fromkeys(long["variant"]))}
    rows = []
    for cell, part in long.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, cell))
        r2, mae = part["r2"].to_numpy(float), part["mae"].to_numpy(float)
        row.update(n_seeds=int(part["seed"].nunique()), r2_mean=float(np.mean(r2)),
                   r2_std=float(np.std(r2, ddof=1)) if r2.size > 1 else math.nan,
                   mae_mean=float(np.mean(mae)), mae_std=float(np.std(mae, ddof=1)) if mae.size > 1 else math.nan)
        if ablation == "tokenization":
            row.update(grad_norm_median=float(part["grad_norm_median"].median()),
                       diverged=int(part["diverged"].sum()), failed=int(part["failed"].sum()))
        row["_order"] = order[part["variant"].iloc[0]]
        rows.append(row)
    table = pd.DataFrame(rows)
    sort = ["_order"] + (["test_noise"] if KINDS[ablation].test_noise else [])
    if KINDS[ablation].per_label:
        label_order = {lab: i for i, lab in enumerate(LABEL_NAMES)}
        table["_label"] = table["label"].map(label_order)
        sort = ["_label", "_order"]
    table = table.sort_values(sort, kind="stable").drop(columns=[c for c in table if c.startswith("_")])
    return table.reset_index(drop=True)


CAPTIONS = {
    "tokenization": "Tokenization ablation (P0.5): pooled test R² and MAE of log g, mean and standard deviation "
                    "over seeds; gradient norm before clipping (median over seeds of each run's median over epochs of "
                    "the epoch's median); "
                    "seeds that diverged (a non-finite loss) and that failed (diverged, or validation R² never "
                    "above 0).",
    "pe": "Positional-encoding ablation (P1.2): pooled test R² and MAE of log g, mean and standard deviation "
          "over seeds.",
    "loss_norm": "Loss × label normalisation (P1.1): pooled test R² and MAE of log g, mean and standard "
                 "deviation over seeds.",
    "multitask": "Multi-task vs single-task (P1.3): pooled test R² and MAE per label and setting, mean and "
                 "standard deviation over seeds.",
    "robustness": "Cross-noise robustness (P1.4): test R² of log g (pooled view) for models trained at one "
                  "noise level and tested at another, mean and standard deviation over seeds.",
}


def residual_correlation(predictions: list[pd.DataFrame], labels) -> pd.DataFrame:
    """Correlation matrix of the residuals (pred − true) of ``labels``, stars of all seeds pooled."""
    res = pd.concat([pd.DataFrame({lab: p[f"pred_{lab}"] - p[f"true_{lab}"] for lab in labels})
                     for p in predictions], ignore_index=True)
    return res.corr()
