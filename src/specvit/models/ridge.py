"""The paper's linear baseline, Ridge regression, behind the ``Regressor`` interface (registered as ``ridge``).

It takes the noisy spectra as given (the caller draws one seeded noise realisation per training
spectrum) and predicts each label independently. Closed form in float64: smooth spectra make the
pixel Gram matrix ill-conditioned (rcond ~ 5e-9), which float32 normal equations cannot solve.
Features are centred and (optionally) standardised with their float64 training mean / std, the
Gram matrix ``Zᵀ Z`` is accumulated from float64 row blocks (no float64 copy of the whole of
``x``), then solved by Cholesky. An alpha grid either repeats the Cholesky solve per alpha or
reuses one eigendecomposition for every alpha (``grid_solver``; "auto" takes the
eigendecomposition only for grids of more than 16 alphas, since at P = 4096 it costs ~20 Cholesky
solves); each label takes the alpha of lowest validation MSE. Predictions are
``(x - mean) @ coef + y_mean``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg

from specvit.models.base import Regressor, register, write_model_file
from specvit.models.checks import check_fit_inputs, check_labels, check_x

# An alpha grid is solved by one eigendecomposition when it has more alphas than this, else by one
# Cholesky per alpha: at P = 4096 (OpenBLAS, 2 cores) eigh takes ~50 s, a Cholesky solve ~2.5 s.
_EIGH_MIN_ALPHAS = 16

# Row blocks of this many float64 bytes when converting float32 spectra (Gram accumulation, predict).
_BLOCK_BYTES = 64 << 20


def _row_blocks(n: int, p: int):
    rows = max(1, _BLOCK_BYTES // (8 * max(p, 1)))
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


def _centred_gram(x: np.ndarray, y: np.ndarray, y_mean: np.ndarray):
    """(mean [P], centred Gram [P, P], Xcᵀ yc [P, K]) in float64, from row blocks of float32 ``x``.
    Pass 1: the feature means. Pass 2: the Gram's upper triangle (syrk), then mirrored."""
    n, p = x.shape
    mean = np.zeros(p)
    for s in _row_blocks(n, p):
        mean += x[s].sum(axis=0, dtype=np.float64)
    mean /= n
    gram = np.zeros((p, p), order="F")
    xty = np.zeros((p, y.shape[1]))
    syrk = scipy.linalg.blas.dsyrk
    for s in _row_blocks(n, p):
        b = x[s].astype(np.float64)
        b -= mean
        gram = syrk(1.0, b.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
        xty += b.T @ (y[s] - y_mean)
    iu = np.triu_indices(p, 1)
    gram.T[iu] = gram[iu]  # mirror the upper triangle
    return mean, np.ascontiguousarray(gram), xty


def _standardise(gram: np.ndarray, xty: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """Rescale ``gram`` and ``xty`` in place to unit-variance features; returns the scale [P].
    Like sklearn's StandardScaler: features constant up to rounding keep scale 1."""
    var = np.diag(gram) / n
    scale = np.sqrt(var)
    eps = np.finfo(np.float64).eps
    scale[var <= n * eps * var + (n * mean * eps) ** 2] = 1.0
    gram /= scale[:, None]
    gram /= scale[None, :]
    xty /= scale[:, None]
    return scale


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
        mean, gram, xty = _centred_gram(x_train, y, y_mean)
        scale = _standardise(gram, xty, mean, n) if self.standardize else np.ones(p)
        gram_s = time.perf_counter() - t0
        log(f"ridge: Gram matrix of {n} x {p} in {gram_s:.1f} s")

        t1 = time.perf_counter()
        info: dict = {"model": self.name, "n_train": n, "n_val": int(x_val.shape[0]) if x_val is not None else 0}
        if self.alphas is None:
            coef_z = self._solve(gram, xty, self.alpha)
            alpha = np.full(len(self.labels), self.alpha)
        else:
            coef_z, alpha = self._solve_grid(gram, xty, (x_val, y_val), (mean, scale, y_mean), info)
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

    def _solve_grid(self, gram: np.ndarray, xty: np.ndarray, val, centring, info: dict):
        """(coef_z [P, K], alpha [K]): per label the coefficients of the grid's alpha of lowest
        validation MSE. ``val`` is (x_val, y_val), ``centring`` (mean, scale, y_mean); the grid's
        MSEs and solver go into ``info``. ``gram`` is overwritten by the eigendecomposition."""
        (x_val, y_val), (mean, scale, y_mean) = val, centring
        p = gram.shape[0]
        na, k = len(self.alphas), len(self.labels)
        solver = self.grid_solver
        if solver == "auto":
            solver = "eigh" if na > _EIGH_MIN_ALPHAS else "cholesky"
        if solver == "eigh":
            # One eigendecomposition for all alphas: coef(a) = V diag(1/(lam + a)) Vᵀ Zᵀy.
            lam, vec = scipy.linalg.eigh(gram, overwrite_a=True, check_finite=False)
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
        return coef_z, alpha

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

        return {self._NPZ: write_model_file(directory / self._NPZ, write)}

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
