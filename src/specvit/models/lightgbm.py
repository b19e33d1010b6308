"""The paper's tree baseline, LightGBM, behind the ``Regressor`` interface (registered as ``lightgbm``).

It takes the noisy spectra as given (the caller draws one seeded noise realisation per training
spectrum) and predicts each label independently, with one booster per label, trained with the
native ``lgb.train``. The training matrix is binned once into a ``lgb.Dataset`` that every label
reuses (only its label vector changes); the validation Dataset takes its bins from it
(``reference=``). Early stopping on the validation l2; the booster kept is cut at the best
iteration, so predict, save and load all use the same trees. ``deterministic=True`` plus a forced
histogram layout makes a seed give byte-identical predictions on one machine. Binning 50k x 4096
costs ~30 s; 100 rounds ~2 min at ``feature_fraction=0.8``.

Threads: LightGBM runs on OpenMP (libgomp), whose default busy-waiting collapses when its cores
are shared with any other busy process: 100 rounds on 20k x 4096 with 2 threads took 258 s
instead of 75 s next to one other job, and small fits ran 20-80x slower. Start processes that
run LightGBM with ``OMP_WAIT_POLICY=PASSIVE`` in the environment. It must be set before the
process loads libgomp, and ``import specvit.models`` loads it (through torch), so setting it from
this module would be too late.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from specvit.models.base import Regressor, register, write_model_file
from specvit.models.checks import check_fit_inputs, check_labels, check_x


def _lgb():
    import lightgbm

    return lightgbm


@dataclass(frozen=True)
class LightGBMParams:
    """Settings of a LightGBM model; the defaults are the paper's.

    ``early_stopping_rounds`` None/0 disables early stopping; ``log_period`` 0 disables the
    periodic validation log. ``col_wise`` picks LightGBM's histogram layout (``force_col_wise`` if
    True, ``force_row_wise`` if False); forcing one keeps ``deterministic=True`` results stable
    and skips LightGBM's timing test. Column-wise is the default: it is faster for wide dense
    spectra on few cores and only touches the sampled features when ``feature_fraction`` < 1.
    Values are checked, then stored as the type of their default (a config may write 1e3 rounds).
    """

    n_estimators: int = 1000
    learning_rate: float = 0.05
    num_leaves: int = 63
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    early_stopping_rounds: int | None = 50
    max_bin: int = 255
    min_data_in_leaf: int = 20
    num_threads: int = 0
    seed: int = 0
    verbose: int = -1
    log_period: int = 100
    col_wise: bool = True

    def __post_init__(self):
        if int(self.n_estimators) < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators}")
        for nm in ("feature_fraction", "bagging_fraction"):
            v = getattr(self, nm)
            if not 0.0 < float(v) <= 1.0:
                raise ValueError(f"{nm} must be in (0, 1], got {v}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "early_stopping_rounds":
                value = int(value) if value else None
            else:
                value = type(f.default)(value)
            object.__setattr__(self, f.name, value)


@register("lightgbm")
class LightGBMRegressor(Regressor):
    """Gradient-boosted trees, one booster per label; ``params`` are the fields of ``LightGBMParams``
    (a run group's ``params`` in the config; model.json's ``settings``)."""

    def __init__(self, labels=("logg",), **params):
        self.labels = check_labels(labels)
        known = [f.name for f in fields(LightGBMParams)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise TypeError(f"unknown LightGBM setting(s) {unknown}; known: {known}")
        self.config = LightGBMParams(**params)
        self.boosters: dict[str, Any] = {}

    def settings(self) -> dict:
        return asdict(self.config)

    def params(self) -> dict:
        """The LightGBM parameter dict (shared by the Datasets and lgb.train, so bins are never rebuilt)."""
        c = self.config
        return {
            "objective": "regression", "metric": "l2",
            "learning_rate": c.learning_rate, "num_leaves": c.num_leaves,
            "feature_fraction": c.feature_fraction, "bagging_fraction": c.bagging_fraction,
            "bagging_freq": c.bagging_freq, "max_bin": c.max_bin,
            "min_data_in_leaf": c.min_data_in_leaf, "num_threads": c.num_threads,
            "seed": c.seed, "verbose": c.verbose, "deterministic": True,
            "force_col_wise": c.col_wise, "force_row_wise": not c.col_wise,
        }

    @staticmethod
    def _as_lgb_matrix(x: np.ndarray) -> np.ndarray:
        # LightGBM reads C-contiguous float32/float64 in place; anything else would be copied anyway.
        if x.dtype in (np.float32, np.float64) and x.flags.c_contiguous:
            return x
        return np.ascontiguousarray(x, dtype=np.float32)

    def fit(self, x_train, y_train, x_val=None, y_val=None, log: Callable[[str], Any] = print) -> dict:
        lgb = _lgb()
        x_train, y_train, x_val, y_val = check_fit_inputs(self.labels, x_train, y_train, x_val, y_val)
        params = self.params()
        t0 = time.perf_counter()
        first = self.labels[0]
        train_set = lgb.Dataset(self._as_lgb_matrix(x_train), label=y_train[first], params=params,
                                free_raw_data=False).construct()
        val_set = None
        if x_val is not None:
            val_set = lgb.Dataset(self._as_lgb_matrix(x_val), label=y_val[first], reference=train_set,
                                  params=params, free_raw_data=False).construct()
        dataset_s = time.perf_counter() - t0
        log(f"lightgbm: binned {x_train.shape[0]} x {x_train.shape[1]} training matrix"
            + (f" (+ {x_val.shape[0]} validation rows)" if x_val is not None else "") + f" in {dataset_s:.1f} s")

        boosters, per_label = {}, {}
        for lab in self.labels:
            train_set.set_label(y_train[lab])
            callbacks = []
            if val_set is not None:
                val_set.set_label(y_val[lab])
                if self.config.log_period > 0:
                    callbacks.append(_log_evaluation(self.config.log_period, log, lab))
                if self.config.early_stopping_rounds:
                    callbacks.append(lgb.early_stopping(self.config.early_stopping_rounds, first_metric_only=True,
                                                        verbose=False))
            t1 = time.perf_counter()
            booster = lgb.train(params, train_set, num_boost_round=self.config.n_estimators,
                                valid_sets=[val_set] if val_set is not None else None,
                                valid_names=["val"] if val_set is not None else None,
                                callbacks=callbacks, keep_training_booster=True)
            ran = booster.current_iteration()
            best = int(booster.best_iteration) or ran
            # Keep exactly the trees that predict: predict(), save() and load() then agree bit for bit.
            booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))  # frees the training one
            fit_s = time.perf_counter() - t1
            boosters[lab] = booster
            info = {"best_iteration": best, "iterations_run": ran, "n_trees": booster.num_trees(),
                    "early_stopped": ran < self.config.n_estimators, "fit_seconds": round(fit_s, 3)}
            if val_set is not None:
                pred = booster.predict(self._as_lgb_matrix(x_val), num_threads=self.config.num_threads)
                info["val_mse"] = float(np.mean((pred - y_val[lab]) ** 2))
            per_label[lab] = info
            log(f"lightgbm[{lab}]: best iteration {best}/{self.config.n_estimators}"
                + (f", val MSE {info['val_mse']:.6g}" if "val_mse" in info else "") + f", {fit_s:.1f} s")
        del train_set, val_set
        self.boosters = boosters
        self.n_features = int(x_train.shape[1])
        self.fit_info = {"model": self.name, "n_train": int(x_train.shape[0]),
                         "n_val": int(x_val.shape[0]) if x_val is not None else 0,
                         "dataset_seconds": round(dataset_s, 3),
                         "fit_seconds": round(time.perf_counter() - t0, 3), "labels": per_label}
        return self.fit_info

    def predict(self, x) -> dict[str, np.ndarray]:
        self._require_fitted()
        x = self._as_lgb_matrix(check_x(x, "x", n_features=self.n_features))
        return {lab: np.asarray(self.boosters[lab].predict(x, num_threads=self.config.num_threads), dtype=np.float64)
                for lab in self.labels}

    def _versions(self) -> dict:
        return {**super()._versions(), "lightgbm": _lgb().__version__}

    @staticmethod
    def _file(i: int) -> str:
        return f"booster_{i:02d}.txt"  # by position: label names need not be valid file names

    def _write_payload(self, directory: Path) -> dict[str, dict]:
        return {self._file(i): write_model_file(directory / self._file(i),
                                                lambda p, b=self.boosters[lab]: b.save_model(p))
                for i, lab in enumerate(self.labels)}

    def _read_payload(self, directory: Path, meta: dict) -> None:
        lgb = _lgb()
        boosters = {}
        for i, lab in enumerate(self.labels):
            path = directory / self._file(i)
            if self._file(i) not in meta["files"]:
                raise ValueError(f"{directory / 'model.json'}: does not list {path.name} (label {lab!r})")
            try:
                b = lgb.Booster(model_file=str(path))
            except Exception as e:  # LightGBMError on a malformed text model
                raise ValueError(f"{path}: not a readable LightGBM model ({type(e).__name__}: {e})") from e
            if b.num_feature() != self.n_features:
                raise ValueError(f"{path}: booster has {b.num_feature()} features; model.json says {self.n_features}")
            boosters[lab] = b
        self.boosters = boosters


def _log_evaluation(period: int, log: Callable[[str], Any], label: str):
    """Like ``lgb.log_evaluation(period)``, but to ``log`` (per fit) instead of LightGBM's global logger."""

    def _callback(env) -> None:
        it = env.iteration + 1
        if env.evaluation_result_list and (it % period == 0 or it == env.end_iteration):
            res = ", ".join(f"{r[0]} {r[1]} {r[2]:.6g}" for r in env.evaluation_result_list)
            log(f"lightgbm[{label}] iter {it}: {res}")

    _callback.order = 10
    return _callback
