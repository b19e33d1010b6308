"""The paper's tabular baselines, LightGBM and Ridge, behind the ``Regressor`` interface.

Both take the noisy spectra as given (the caller draws one seeded noise realisation per training
spectrum) and predict each label independently.

LightGBM: one booster per label, trained with the native ``lgb.train``. The training matrix is
binned once into a ``lgb.Dataset`` that every label reuses (only its label vector changes); the
validation Dataset takes its bins from it (``reference=``). Early stopping on the validation l2;
the booster kept is cut at the best iteration, so predict, save and load all use the same trees.
``deterministic=True`` plus a forced histogram layout makes a seed give byte-identical
predictions on one machine. Binning 50k x 4096 costs ~30 s; 100 rounds ~2 min at
``feature_fraction=0.8`` (see DESIGN.md).

Threads: LightGBM runs on OpenMP (libgomp), whose default busy-waiting collapses when its cores
are shared with any other busy process: 100 rounds on 20k x 4096 with 2 threads took 258 s
instead of 75 s next to one other job, and small fits ran 20-80x slower. Start processes that
run LightGBM with ``OMP_WAIT_POLICY=PASSIVE`` in the environment. It must be set before the
process loads libgomp, and ``import specvit.models`` loads it (through torch), so setting it from
this module would be too late.

Ridge: closed form in float64. Smooth spectra make the pixel Gram matrix ill-conditioned (rcond
~ 5e-9), which float32 normal equations cannot solve. Features are centred and (optionally)
standardised with their float64 training mean / std, the Gram matrix ``Zᵀ Z`` is accumulated
from float64 row blocks (no float64 copy of the whole of ``x``), then solved by Cholesky. An alpha
grid either repeats the Cholesky solve per alpha or reuses one eigendecomposition for every alpha
(``grid_solver``; "auto" takes the eigendecomposition only for grids of more than 16 alphas, since
at P = 4096 it costs ~20 Cholesky solves); each label takes the alpha of lowest validation MSE.
Predictions are ``(x - mean) @ coef + y_mean``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg

from specvit.models.base import Regressor, atomic_write, check_fit_inputs, check_labels, check_x, register

# An alpha grid is solved by one eigendecomposition when it has more alphas than this, else by one
# Cholesky per alpha: at P = 4096 (OpenBLAS, 2 cores) eigh takes ~50 s, a Cholesky solve ~2.5 s.
_EIGH_MIN_ALPHAS = 16

# Row blocks of this many float64 bytes when converting float32 spectra (Gram accumulation, predict).
_BLOCK_BYTES = 64 << 20


def _row_blocks(n: int, p: int):
    rows = max(1, _BLOCK_BYTES // (8 * max(p, 1)))
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


def _lgb():
    import lightgbm

    return lightgbm


# ============================================================================ LightGBM


@register("lightgbm")
class LightGBMRegressor(Regressor):
    """Gradient-boosted trees, one booster per label; defaults are the paper's settings.

    ``early_stopping_rounds`` None/0 disables early stopping; ``log_period`` 0 disables the
    periodic validation log. ``col_wise`` picks LightGBM's histogram layout (``force_col_wise`` if
    True, ``force_row_wise`` if False); forcing one keeps ``deterministic=True`` results stable
    and skips LightGBM's timing test. Column-wise is the default: it is faster for wide dense
    spectra on few cores and only touches the sampled features when ``feature_fraction`` < 1.
    """

    def __init__(self, labels=("logg",), n_estimators: int = 1000, learning_rate: float = 0.05,
                 num_leaves: int = 63, feature_fraction: float = 0.8, bagging_fraction: float = 0.8,
                 bagging_freq: int = 1, early_stopping_rounds: int | None = 50, max_bin: int = 255,
                 min_data_in_leaf: int = 20, num_threads: int = 0, seed: int = 0, verbose: int = -1,
                 log_period: int = 100, col_wise: bool = True):
        self.labels = check_labels(labels)
        if int(n_estimators) < 1:
            raise ValueError(f"n_estimators must be >= 1, got {n_estimators}")
        for nm, v in (("feature_fraction", feature_fraction), ("bagging_fraction", bagging_fraction)):
            if not 0.0 < float(v) <= 1.0:
                raise ValueError(f"{nm} must be in (0, 1], got {v}")
        if not float(learning_rate) > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.n_estimators = int(n_estimators)
        self.learning_rate = float(learning_rate)
        self.num_leaves = int(num_leaves)
        self.feature_fraction = float(feature_fraction)
        self.bagging_fraction = float(bagging_fraction)
        self.bagging_freq = int(bagging_freq)
        self.early_stopping_rounds = int(early_stopping_rounds) if early_stopping_rounds else None
        self.max_bin = int(max_bin)
        self.min_data_in_leaf = int(min_data_in_leaf)
        self.num_threads = int(num_threads)
        self.seed = int(seed)
        self.verbose = int(verbose)
        self.log_period = int(log_period)
        self.col_wise = bool(col_wise)
        self.boosters: dict[str, Any] = {}

    def settings(self) -> dict:
        return {k: getattr(self, k) for k in (
            "n_estimators", "learning_rate", "num_leaves", "feature_fraction", "bagging_fraction",
            "bagging_freq", "early_stopping_rounds", "max_bin", "min_data_in_leaf", "num_threads",
            "seed", "verbose", "log_period", "col_wise")}

    def params(self) -> dict:
        """The LightGBM parameter dict (shared by the Datasets and lgb.train, so bins are never rebuilt)."""
        return {
            "objective": "regression", "metric": "l2",
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "feature_fraction": self.feature_fraction, "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq, "max_bin": self.max_bin,
            "min_data_in_leaf": self.min_data_in_leaf, "num_threads": self.num_threads,
            "seed": self.seed, "verbose": self.verbose, "deterministic": True,
            "force_col_wise": self.col_wise, "force_row_wise": not self.col_wise,
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
                if self.log_period > 0:
                    callbacks.append(_log_evaluation(self.log_period, log, lab))
                if self.early_stopping_rounds:
                    callbacks.append(lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True,
                                                        verbose=False))
            t1 = time.perf_counter()
            booster = lgb.train(params, train_set, num_boost_round=self.n_estimators,
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
                    "early_stopped": ran < self.n_estimators, "fit_seconds": round(fit_s, 3)}
            if val_set is not None:
                pred = booster.predict(self._as_lgb_matrix(x_val), num_threads=self.num_threads)
                info["val_mse"] = float(np.mean((pred - y_val[lab]) ** 2))
            per_label[lab] = info
            log(f"lightgbm[{lab}]: best iteration {best}/{self.n_estimators}"
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
        return {lab: np.asarray(self.boosters[lab].predict(x, num_threads=self.num_threads), dtype=np.float64)
                for lab in self.labels}

    def _versions(self) -> dict:
        return {**super()._versions(), "lightgbm": _lgb().__version__}

    @staticmethod
    def _file(i: int) -> str:
        return f"booster_{i:02d}.txt"  # by position: label names need not be valid file names

    def _write_payload(self, directory: Path) -> dict[str, dict]:
        return {self._file(i): atomic_write(directory / self._file(i),
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


# ============================================================================ Ridge


@register("ridge")
class RidgeRegressor(Regressor):
    """Ridge regression in closed form (float64), one coefficient vector and alpha per label.

    ``alpha`` is used when ``alphas`` is None; with a grid ``alphas`` each label takes the alpha of
    lowest validation MSE (validation data required). The penalty acts on the standardised
    coefficients when ``standardize`` (like sklearn ``StandardScaler`` + ``Ridge``), else on the
    raw ones; the intercept is never penalised. ``grid_solver``: "cholesky" (one solve per alpha),
    "eigh" (one eigendecomposition for all alphas) or "auto" (eigh for grids of more than 16).
    """

    _NPZ = "ridge.npz"
    _ARRAYS = ("coef", "intercept", "mean", "scale", "y_mean", "alpha")

    def __init__(self, labels=("logg",), alpha: float = 1.0, alphas=None, standardize: bool = True,
                 grid_solver: str = "auto"):
        self.labels = check_labels(labels)
        self.alpha = self._check_alpha(alpha, "alpha")
        if alphas is not None:
            alphas = [self._check_alpha(a, "alphas") for a in np.atleast_1d(np.asarray(alphas, dtype=float))]
            if not alphas:
                raise ValueError("alphas is empty; give None for a single alpha")
        self.alphas = alphas
        self.standardize = bool(standardize)
        if grid_solver not in ("auto", "cholesky", "eigh"):
            raise ValueError(f"grid_solver must be 'auto', 'cholesky' or 'eigh', got {grid_solver!r}")
        self.grid_solver = grid_solver
        self.coef_: np.ndarray | None = None  # [P, K], per raw feature
        self.mean_ = self.scale_ = self.y_mean_ = self.alpha_ = None

    @staticmethod
    def _check_alpha(a, name) -> float:
        a = float(a)
        if not (np.isfinite(a) and a > 0):
            raise ValueError(f"{name} must be finite and > 0, got {a}")
        return a

    def settings(self) -> dict:
        return {"alpha": self.alpha, "alphas": self.alphas, "standardize": self.standardize,
                "grid_solver": self.grid_solver}

    @property
    def intercept_(self) -> np.ndarray:
        """[K] intercept of the raw-feature form ``x @ coef_ + intercept_``."""
        self._require_fitted()
        return self.y_mean_ - self.mean_ @ self.coef_

    def fit(self, x_train, y_train, x_val=None, y_val=None, log: Callable[[str], Any] = print) -> dict:
        x_train, y_train, x_val, y_val = check_fit_inputs(self.labels, x_train, y_train, x_val, y_val)
        if self.alphas is not None and x_val is None:
            raise ValueError("an alpha grid (alphas=...) needs x_val and y_val to choose by validation MSE")
        n, p = x_train.shape
        if n < 2:
            raise ValueError(f"x_train has {n} row(s); ridge needs at least 2")
        t0 = time.perf_counter()
        y = np.stack([y_train[lab] for lab in self.labels], axis=1)  # [N, K] float64
        y_mean = y.mean(axis=0)

        # Pass 1: float64 feature means. Pass 2: centred Gram (upper triangle, syrk) and Xcᵀ yc.
        mean = np.zeros(p)
        for s in _row_blocks(n, p):
            mean += x_train[s].sum(axis=0, dtype=np.float64)
        mean /= n
        gram = np.zeros((p, p), order="F")
        xty = np.zeros((p, y.shape[1]))
        syrk = scipy.linalg.blas.dsyrk
        for s in _row_blocks(n, p):
            b = x_train[s].astype(np.float64)
            b -= mean
            gram = syrk(1.0, b.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
            xty += b.T @ (y[s] - y_mean)
        iu = np.triu_indices(p, 1)
        gram.T[iu] = gram[iu]  # mirror the upper triangle
        gram = np.ascontiguousarray(gram)
        if self.standardize:
            var = np.diag(gram) / n
            scale = np.sqrt(var)
            # Like sklearn's StandardScaler: features constant up to rounding keep scale 1.
            eps = np.finfo(np.float64).eps
            scale[var <= n * eps * var + (n * mean * eps) ** 2] = 1.0
            gram /= scale[:, None]
            gram /= scale[None, :]
            xty /= scale[:, None]
        else:
            scale = np.ones(p)
        gram_s = time.perf_counter() - t0
        log(f"ridge: Gram matrix of {n} x {p} in {gram_s:.1f} s")

        t1 = time.perf_counter()
        info: dict = {"model": self.name, "n_train": n, "n_val": int(x_val.shape[0]) if x_val is not None else 0}
        if self.alphas is None:
            coef_z = self._solve(gram, xty, self.alpha)
            alpha = np.full(len(self.labels), self.alpha)
        else:
            na, k = len(self.alphas), len(self.labels)
            solver = self.grid_solver
            if solver == "auto":
                solver = "eigh" if na > _EIGH_MIN_ALPHAS else "cholesky"
            if solver == "eigh":
                # One eigendecomposition for all alphas: coef(a) = V diag(1/(lam + a)) Vᵀ Zᵀy.
                lam, vec = scipy.linalg.eigh(gram, overwrite_a=True, check_finite=False)
                del gram
                vty = vec.T @ xty  # [P, K]
                coefs = np.stack([vec @ (vty / (lam + a)[:, None]) for a in self.alphas], axis=1)  # [P, A, K]
                info["eig_min"], info["eig_max"] = float(lam[0]), float(lam[-1])
            else:
                coefs = np.stack([self._solve(gram, xty, a) for a in self.alphas], axis=1)
            yv = np.stack([y_val[lab] for lab in self.labels], axis=1)
            pred = self._predict_matrix(x_val, coefs.reshape(p, na * k) / scale[:, None], mean,
                                        np.tile(y_mean, na)).reshape(-1, na, k)
            mse = np.mean((pred - yv[:, None, :]) ** 2, axis=0)  # [A, K]
            best = np.argmin(mse, axis=0)
            coef_z = np.stack([coefs[:, b, j] for j, b in enumerate(best)], axis=1)
            alpha = np.array([self.alphas[b] for b in best])
            info["alphas"] = list(self.alphas)
            info["grid_solver"] = solver
            info["val_mse_grid"] = {lab: mse[:, j].tolist() for j, lab in enumerate(self.labels)}
        solve_s = time.perf_counter() - t1

        self.coef_ = coef_z / scale[:, None]
        self.mean_, self.scale_, self.y_mean_, self.alpha_ = mean, scale, y_mean, alpha
        self.n_features = p
        info["alpha"] = {lab: float(alpha[k]) for k, lab in enumerate(self.labels)}
        if x_val is not None:
            pred = self.predict(x_val)
            info["val_mse"] = {lab: float(np.mean((pred[lab] - y_val[lab]) ** 2)) for lab in self.labels}
        info.update(gram_seconds=round(gram_s, 3), solve_seconds=round(solve_s, 3),
                    fit_seconds=round(time.perf_counter() - t0, 3))
        log(f"ridge: alpha {info['alpha']}" + (f", val MSE {info['val_mse']}" if x_val is not None else "")
            + f", solve {solve_s:.1f} s")
        self.fit_info = info
        return info

    @staticmethod
    def _solve(gram: np.ndarray, rhs: np.ndarray, alpha: float) -> np.ndarray:
        a = gram.copy()
        a[np.diag_indices_from(a)] += alpha
        try:
            return scipy.linalg.solve(a, rhs, assume_a="pos", overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError as e:
            raise ValueError(f"ridge: Gram + alpha*I is not positive definite at alpha={alpha}; "
                             f"increase alpha ({e})") from e

    @staticmethod
    def _predict_matrix(x: np.ndarray, coef: np.ndarray, mean: np.ndarray, y_mean: np.ndarray) -> np.ndarray:
        """(x - mean) @ coef + y_mean in float64, converting x in row blocks."""
        out = np.empty((x.shape[0], coef.shape[1]))
        for s in _row_blocks(x.shape[0], x.shape[1]):
            b = x[s].astype(np.float64)
            b -= mean
            out[s] = b @ coef
        out += y_mean
        return out

    def predict(self, x) -> dict[str, np.ndarray]:
        self._require_fitted()
        x = check_x(x, "x", n_features=self.n_features)
        pred = self._predict_matrix(x, self.coef_, self.mean_, self.y_mean_)
        return {lab: np.ascontiguousarray(pred[:, k]) for k, lab in enumerate(self.labels)}

    def _write_payload(self, directory: Path) -> dict[str, dict]:
        arrays = {"coef": self.coef_, "intercept": self.intercept_, "mean": self.mean_, "scale": self.scale_,
                  "y_mean": self.y_mean_, "alpha": self.alpha_}

        def write(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, **arrays)

        return {self._NPZ: atomic_write(directory / self._NPZ, write)}

    def _read_payload(self, directory: Path, meta: dict) -> None:
        path = directory / self._NPZ
        if self._NPZ not in meta["files"]:
            raise ValueError(f"{directory / 'model.json'}: does not list {self._NPZ}")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k], dtype=np.float64) for k in self._ARRAYS}
        except Exception as e:  # BadZipFile, KeyError, ValueError, OSError
            raise ValueError(f"{path}: not a readable ridge model ({type(e).__name__}: {e})") from e
        p, k = self.n_features, len(self.labels)
        expect = {"coef": (p, k), "intercept": (k,), "mean": (p,), "scale": (p,), "y_mean": (k,), "alpha": (k,)}
        for name, shape in expect.items():
            if arrays[name].shape != shape:
                raise ValueError(f"{path}: array {name!r} has shape {arrays[name].shape}, expected {shape}")
            if not np.all(np.isfinite(arrays[name])):
                raise ValueError(f"{path}: array {name!r} has non-finite values")
        self.coef_, self.mean_, self.scale_ = arrays["coef"], arrays["mean"], arrays["scale"]
        self.y_mean_, self.alpha_ = arrays["y_mean"], arrays["alpha"]
