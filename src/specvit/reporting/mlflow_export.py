"""Optional export to MLflow: the run registry, the ViT histories and the figures, for browsing
in the MLflow UI. One workflow job writes the store (rule ``mlflow``, a local rule): a single
writer, so no SQLite lock races between cluster jobs.

Every registry row becomes one MLflow run (tag ``specvit.run_id``) with its settings as params,
its metrics, and per-epoch metrics from ``history.csv``; tables and figures go into one more run
(tag ``specvit.kind`` = ``results``) as artifacts. Exporting again replaces the MLflow runs of
the same run ids (MLflow params are immutable), so the store mirrors ``results/``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

# Registry columns logged as metrics; the settings columns become params, these become tags.
METRICS = ["val_r2", "val_mae", "test_r2", "test_mae", "wall_seconds", "peak_memory_mb", "best_epoch",
           "best_iteration"]
TAGS = ["status", "device", "git_commit", "git_dirty", "group", "model", "in_config"]
HISTORY_METRICS = ["train_loss", "val_r2", "val_mae", "lr", "grad_norm_median", "samples_per_s"]


def tracking_uri(configured: str | None, root) -> str:
    """The config's URI, else $MLFLOW_TRACKING_URI, else a SQLite file under results/mlflow/."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return "sqlite:///" + str((Path(root) / "results" / "mlflow" / "mlflow.db").resolve())


def _import_mlflow():
    try:
        import mlflow
    except ImportError:
        raise ImportError("config key 'tracking.mlflow' is true but the mlflow package is not installed; "
                          "install the optional dependency: pip install -e \".[mlflow]\"") from None
    return mlflow


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v is not pd.NA


def _experiment_id(client, name: str, artifact_root: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifact_root.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=artifact_root.resolve().as_uri())


def _replace(client, experiment_id: str, tag: str, value: str):
    """Delete earlier MLflow runs with ``tag`` = ``value`` (the export mirrors results/)."""
    for old in client.search_runs([experiment_id], filter_string=f"tags.`{tag}` = '{value}'"):
        client.delete_run(old.info.run_id)


def export(registry: pd.DataFrame, runs_dir, result_files, uri: str, experiment: str, artifact_root) -> dict:
    """Log every registry row and the result files; returns {"runs": {run_id: mlflow run id}, ...}."""
    mlflow = _import_mlflow()
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp_id = _experiment_id(client, experiment, Path(artifact_root))
    settings = [c for c in registry.columns if c.split(".")[0] in ("vit", "train", "params")] + [
        "n_train", "seed", "noise_level", "labels", "max_eval_stars"]
    logged = {}
    for row in registry.to_dict("records"):
        rid = row["run_id"]
        _replace(client, exp_id, "specvit.run_id", rid)
        run = client.create_run(exp_id, run_name=rid, tags={"specvit.run_id": rid, "specvit.kind": "run"})
        params = [Param(c, str(row[c])) for c in settings if c in row and _present(row[c])]
        metrics = [Metric(c, float(row[c]), 0, 0) for c in METRICS if _present(row.get(c))]
        history = Path(runs_dir) / rid / "history.csv"
        if history.is_file():
            h = pd.read_csv(history)
            metrics += [Metric(f"epoch_{c}", float(v), 0, int(e)) for c in HISTORY_METRICS if c in h
                        for e, v in zip(h["epoch"], h[c]) if _present(v)]
        tags = [RunTag(c, str(row[c])) for c in TAGS if _present(row.get(c))]
        for i in range(0, max(len(metrics), 1), 1000):  # MLflow takes at most 1000 metrics per batch
            client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000], params=params if i == 0 else [],
                             tags=tags if i == 0 else [])
        client.set_terminated(run.info.run_id, status="FINISHED" if row["status"] == "evaluated" else "KILLED")
        logged[rid] = run.info.run_id
    _replace(client, exp_id, "specvit.kind", "results")
    results = client.create_run(exp_id, run_name="tables and figures", tags={"specvit.kind": "results"})
    for path in result_files:
        client.log_artifact(results.info.run_id, str(path), artifact_path=Path(path).parent.name)
    client.set_terminated(results.info.run_id)
    return {"tracking_uri": uri, "experiment": experiment, "experiment_id": exp_id, "runs": logged,
            "results_run": results.info.run_id, "artifacts": sorted(str(p) for p in result_files)}
