"""The run registry: one row per run folder, and a params diff of the runs of each experiment.

``results/runs.csv`` collects what every run folder says about itself (``run.json``,
``metrics.json``, ``metrics_test.csv``): its settings, status, best epoch, validation and test
metrics, wall time, device and git commit. ``results/tables/runs_compare.md`` shows, per
experiment, the parameters that differ between its runs side by side (a params diff, as DVC
and MLflow give) and the ones they share once.

An experiment is the model kind (``vit``, ``lightgbm``, ``ridge``, ``template``): runs of one
kind share one parameter space, so their diff is meaningful (ViT ablation groups differ in a
few ``vit.*`` / ``train.*`` fields; N and seed always show).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from specvit.physics.labels import headline_label

# The columns every registry has, in this order; the run's settings follow as
# ``vit.<field>``, ``train.<field>``, ``params.<name>`` (sorted).
REGISTRY_COLUMNS = ["run_id", "group", "model", "n_train", "seed", "noise_level", "labels", "in_config", "status",
                    "best_epoch", "epochs", "steps", "best_iteration", "val_r2", "val_mae", "test_r2", "test_mae",
                    "wall_seconds", "device", "peak_memory_mb", "git_commit", "git_dirty"]
SETTING_PREFIXES = ("vit", "train", "params")
# Shown in the diff tables beside the differing parameters.
METRIC_COLUMNS = ["status", "val_r2", "test_r2", "test_mae", "wall_seconds", "device"]


def flatten(d: dict, prefix: str) -> dict:
    """{"vit.patch": 64, "params.alphas": "[0.1, 1.0]"}: nested mappings joined by '.', lists as JSON text
    (so a CSV cell holds one value and equal lists compare equal)."""
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        elif isinstance(v, (list, tuple, dict)):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def run_status(run_dir: Path) -> str:
    """evaluated (test metrics written) / trained (metrics.json) / incomplete (started, not finished)."""
    if (run_dir / "metrics_test.csv").is_file() and (run_dir / "metrics.json").is_file():
        return "evaluated"
    if (run_dir / "metrics.json").is_file():
        return "trained"
    return "incomplete"


def _best_iteration(fit: dict, label: str):
    """LightGBM's early-stopping round of the first label (None for other models)."""
    info = (fit.get("labels") or {}).get(label) or {}
    return info.get("best_iteration")


def run_record(run_dir, in_config: bool = True) -> dict:
    """One registry row from a run folder (it must hold ``run.json``)."""
    run_dir = Path(run_dir)
    spec_file = run_dir / "run.json"
    if not spec_file.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no run.json); expected the folder of one training run")
    spec = json.loads(spec_file.read_text())
    label = headline_label(spec["labels"])
    row = {"run_id": spec["run_id"], "group": spec["group"], "model": spec["model"], "n_train": spec["n_train"],
           "seed": spec["seed"], "noise_level": spec["noise_level"], "labels": " ".join(spec["labels"]),
           "in_config": in_config, "status": run_status(run_dir)}
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        m = json.loads(metrics_file.read_text())
        fit = m.get("fit") or {}
        git = m.get("git") or {}
        row.update(best_epoch=fit.get("best_epoch"), epochs=fit.get("epochs"), steps=fit.get("steps"),
                   best_iteration=_best_iteration(fit, label),
                   val_r2=m["val"][label]["r2"], val_mae=m["val"][label]["mae"], wall_seconds=m.get("wall_seconds"),
                   device=m.get("device"), peak_memory_mb=m.get("peak_memory_mb"),
                   git_commit=git.get("commit"), git_dirty=git.get("dirty"))
    test_file = run_dir / "metrics_test.csv"
    if test_file.is_file():
        test = pd.read_csv(test_file)
        pooled = test[test["view"] == "pooled"]
        if len(pooled):
            row.update(test_r2=float(pooled["r2"].iloc[0]), test_mae=float(pooled["mae"].iloc[0]))
    for prefix in SETTING_PREFIXES:
        row.update(flatten(spec.get(prefix) or {}, prefix))
    row["max_eval_stars"] = spec.get("max_eval_stars")
    row["noise_copies"] = spec.get("noise_copies", 1)  # noisy draws of each training spectrum (LightGBM, Ridge)
    return row


def build_registry(runs_dir, config_run_ids) -> pd.DataFrame:
    """Every run folder under ``runs_dir`` (those of the config and any left by other configs,
    marked ``in_config`` False), sorted by model, group, N, seed."""
    runs_dir = Path(runs_dir)
    wanted = set(config_run_ids)
    missing = sorted(r for r in wanted if not (runs_dir / r / "run.json").is_file())
    if missing:
        raise FileNotFoundError(f"{runs_dir}: no run folder (run.json) for the config's runs {missing}")
    folders = sorted(p.parent for p in runs_dir.glob("*/run.json"))
    rows = [run_record(d, in_config=d.name in wanted) for d in folders]
    df = pd.DataFrame(rows)
    for c in df.columns:  # integer settings stay integers where other runs lack them (not 40.0)
        values = [r[c] for r in rows if r.get(c) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            df[c] = df[c].astype("Int64")
    settings = sorted(c for c in df.columns if c not in REGISTRY_COLUMNS)
    df = df.reindex(columns=REGISTRY_COLUMNS + settings)
    return df.sort_values(["model", "group", "n_train", "seed"]).reset_index(drop=True)


def _same(values) -> bool:
    """All equal, counting missing values (NaN/None) as one value."""
    norm = {("<missing>" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for v in values}
    return len(norm) <= 1


def compare_runs(registry: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, dict]]:
    """{experiment: (runs x differing parameters + metrics, {shared parameter: value})} per model kind."""
    out = {}
    for model, g in registry.groupby("model", sort=True):
        params = ["group", "n_train", "seed", "noise_level", "labels"] + [
            c for c in registry.columns if c.split(".")[0] in SETTING_PREFIXES or c == "max_eval_stars"]
        params = [c for c in params if not g[c].isna().all()]
        differ = [c for c in params if not _same(g[c].tolist())]
        shared = {c: g[c].iloc[0] for c in params if c not in differ}
        table = g[["run_id"] + differ + METRIC_COLUMNS].reset_index(drop=True)
        out[model] = (table, shared)
    return out


def compare_markdown(registry: pd.DataFrame, digits: int = 3) -> str:
    """``runs_compare.md``: per experiment, the differing parameters side by side, then the shared ones."""
    from specvit.reporting.tables import to_markdown

    parts = ["# Runs compared per experiment", "",
             "One section per model kind. The table lists the parameters that differ between the runs "
             "of the experiment (a params diff) beside their metrics (pooled test R² and MAE of log g); "
             "the parameters the runs share follow the table. Source: `results/runs.csv`.", ""]
    for model, (table, shared) in compare_runs(registry).items():
        runs = f"{len(table)} run{'' if len(table) == 1 else 's'}"
        parts += [f"## {model} ({runs})", "", to_markdown(table, digits).rstrip(), ""]
        if shared:
            parts.append("Shared by every run: " + ", ".join(f"`{k}` = {_fmt(v)}" for k, v in shared.items()))
            parts.append("")
    return "\n".join(parts)


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
