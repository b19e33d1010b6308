"""The nuisance study: models trained and tested on spectra with calibration nuisances (a continuum
error and a radial velocity, ``specvit.data.simulate``), against the ceiling that leaves the same
nuisances unknown, beside the clean runs and the clean ceiling.

One long table (``COLUMNS``), one row per curve and magnitude of the SNR sweep:

- ``case``: ``clean`` (the main data, the clean runs and the 5D ceiling) or ``nuisance`` (the
  study's data and runs, the ceiling of its nuisance set);
- ``source``: ``model`` (a run's sweep R² with its 95 % bootstrap interval in ``r2_lo``/``r2_hi``)
  or ``ceiling`` (a row of ceiling.csv: ``name`` is its kind, ``r2_lo``/``r2_hi`` its q10/q90);
- ``name``: the model's run group, or the ceiling kind (``median``, ``mse``, ``bayes``, ``mmse_sim``);
- ``dims``: the ceiling's marginalised dimensions (``5d``, ``5d+cont2+rv``, ...): for a model, the
  dims of the ceiling its data match.
"""
from __future__ import annotations

import pandas as pd

COLUMNS = ["case", "source", "name", "dims", "run_id", "n_train", "mag", "snr_median", "r2", "r2_lo", "r2_hi"]
CASES = ("clean", "nuisance")


def model_rows(metrics: pd.DataFrame, *, case: str, group: str, dims: str, run_id: str, n_train: int) -> pd.DataFrame:
    """The SNR-sweep rows of one run's ``metrics_test.csv`` in the study's columns."""
    sweep = metrics[metrics["view"] == "sweep"]
    return pd.DataFrame({"case": case, "source": "model", "name": group, "dims": dims, "run_id": run_id,
                         "n_train": int(n_train), "mag": sweep["mag"].to_numpy(float),
                         "snr_median": sweep["snr_median"].to_numpy(float), "r2": sweep["r2"].to_numpy(float),
                         "r2_lo": sweep["r2_lo"].to_numpy(float), "r2_hi": sweep["r2_hi"].to_numpy(float)})


def ceiling_rows(ceiling: pd.DataFrame, *, case: str, dims: str) -> pd.DataFrame:
    """The rows of ceiling.csv with ``dims`` (every kind), in the study's columns (empty if it has none)."""
    part = ceiling[ceiling["dims"] == dims]
    return pd.DataFrame({"case": case, "source": "ceiling", "name": part["kind"].to_numpy(str), "dims": dims,
                         "run_id": "", "n_train": 0, "mag": part["mag"].to_numpy(float),
                         "snr_median": part["snr_median"].to_numpy(float), "r2": part["r2"].to_numpy(float),
                         "r2_lo": part["r2_q10"].to_numpy(float), "r2_hi": part["r2_q90"].to_numpy(float)})


def nuisance_table(runs: list[dict], ceiling: pd.DataFrame, *, nuisance_dims: str,
                   clean_dims: str = "5d") -> pd.DataFrame:
    """The study's table (``COLUMNS``) from ``runs``, each {case, group, run_id, n_train, metrics (its
    metrics_test.csv as a DataFrame)}, and the ceiling table; sorted by case, source, name, mag."""
    dims = {"clean": clean_dims, "nuisance": nuisance_dims}
    unknown = sorted({r["case"] for r in runs} - set(CASES))
    if unknown:
        raise ValueError(f"run cases must be among {CASES}, got {unknown}")
    parts = [model_rows(r["metrics"], case=r["case"], group=r["group"], dims=dims[r["case"]], run_id=r["run_id"],
                        n_train=r["n_train"]) for r in runs]
    parts += [ceiling_rows(ceiling, case=case, dims=d) for case, d in dims.items()]
    table = pd.concat([p for p in parts if len(p)], ignore_index=True)[COLUMNS]
    return table.sort_values(["case", "source", "name", "mag"], kind="stable", ignore_index=True)
