"""Information ceilings of log g per magnitude bin, three ways, for the test stars.

Per star and magnitude the exact Jacobian J = d flux / d labels gives the Fisher matrix
F = J^T diag(sigma^-2) J (``specvit.physics.fisher``) and two Cramer-Rao bounds of log g:
``5d`` = (F^-1)_gg (the other labels unknown) and ``1d`` = 1 / F_gg (the other labels known).
J comes from the forward model (synthetic data) or from the test file's optional ``jacobian``
dataset (user data without a forward model); sigma = pixel_sigma(flux, mag, noise_level).

Each bound s^2 becomes a ceiling R^2 in three ways (``kind``):

- ``median``: median over stars of 1 - s^2 / Var(logg), the paper's convention; r2_q10 / r2_q90
  are the 10 % / 90 % quantiles of the per-star values (the star-to-star spread);
- ``mse``: 1 - mean(s^2) / Var(logg), the ceiling consistent with how a model's R^2 is computed
  (1 - MSE / Var);
- ``bayes``: 1 - mean(B) / Var(logg), with B the per-star Bayes bound below.

For ``mse`` and ``bayes``, r2_q10 / r2_q90 are a 10-90 % bootstrap interval over the test stars
(resampling stars, ``n_boot`` times, fixed seed): the sampling uncertainty of the population mean,
not a star-to-star spread; ``n_boot=0`` gives NaN.

The Bayes bound (``bayes_bound``). The Cramer-Rao bound holds for unbiased estimators only;
at low SNR an estimator that knows log g lies in [low, high] beats it (the paper's models
"exceed" the ceiling at mag 22.5). Under the local linear-Gaussian approximation the
spectrum of a star with true log g theta is summarised by an efficient unbiased estimate
t ~ N(theta, s^2), s^2 = its CRLB. Given the log g prior p(theta) (uniform on [low, high], or a
normal truncated to it), the estimator with the least mean squared error is the posterior mean
E[theta | t] (the mean of the Gaussian likelihood times the prior: a truncated normal, in closed
form), and B(theta) = E_t[(theta - E[theta | t])^2] is evaluated by Gauss-Hermite quadrature
over t. Averaged over theta ~ prior, B is the Bayes (minimum) MSE of any estimator that sees t:
no estimator can beat mean(B) on average over the prior, though at a single theta a biased
estimator may (e.g. one that always answers that theta). Mean B <= min(mean CRLB, Var prior)
for stars drawn from the prior. It is a bound under the Gaussian approximation of the likelihood
(exact for a linear model with Gaussian noise); for strongly non-linear spectra at very low SNR
the true likelihood is not Gaussian, and the bound is an approximation.

For ``5d`` the Bayes bound uses the prior of every label (``bayes_bound_box``): the other labels
are bounded too (Teff, [M/H], ... have finite ranges), which adds information exactly where
log g is degenerate with them; with the log g range alone, a model that learned the other
ranges could beat the bound (LightGBM did, by 0.01-0.02 at mag 21-21.5 in the default run).
The posterior mean is then a mean of a 5D Gaussian truncated to the box, estimated by
defensive importance sampling. This needs uniform priors on the labels of the Jacobian;
otherwise ``5d`` falls back to the log g range. ``1d`` (the other labels known) uses
``bayes_bound``, which is exact for that case.

Var(logg) defaults to the variance of the configured log g prior (``logg_variance="prior"``,
as the paper and the calibration do); ``"sample"`` uses the test stars' sample variance
(ddof=1), and a number is used as given. The Bayes bound always uses the prior.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np
import pandas as pd
import torch

from specvit.physics.bayes import BoxSampling, bayes_bound, bayes_bound_box
from specvit.physics.fisher import LABEL_SCALES, ceiling_per_star, crlb, fisher_matrix
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.noise import pixel_sigma
from specvit.physics.noise import snr as snr_fn

COLUMNS = ["mag", "snr_median", "kind", "dims", "r2", "r2_q10", "r2_q90"]
KINDS = ("median", "mse", "bayes")
DIMS = ("5d", "1d")
NO_JACOBIAN = ("no information ceiling is available: the test data are not synthetic (no forward model) "
               "and the test file has no 'jacobian' dataset (d flux / d labels, with attribute "
               "'jacobian_labels' including 'logg'); add one to get the CRLB ceiling")


# ----------------------------------------------------------------------------- per-star bounds


def ceiling_unavailable(model, test_path=None) -> str | None:
    """Why no ceiling can be computed (a message for ``no_ceiling_table``), or None if it can."""
    if model is not None:
        return None
    if test_path is None:
        return "no information ceiling is available: neither a forward model nor a test file was given"
    with h5py.File(test_path, "r") as f:
        names = list(f["jacobian"].attrs.get("jacobian_labels", [])) if "jacobian" in f else []
    names = [x.decode() if isinstance(x, bytes) else x for x in np.atleast_1d(names)]
    return None if "logg" in names else f"{test_path}: {NO_JACOBIAN}"


def _file_per_star(test_path, mags, noise_level: float, batch_size: int) -> dict[str, np.ndarray]:
    """CRLBs and SNR from the file's ``jacobian`` and ``flux``, in float64, one block of stars at a time."""
    from specvit.data.contract import validate_file

    info = validate_file(test_path, check_values=False)
    names = list(info.jacobian_labels)
    index = names.index("logg")
    scales = np.array([LABEL_SCALES[LABEL_NAMES.index(x)] if x in LABEL_NAMES else 1.0 for x in names])
    out = {key: np.empty((mags.size, info.n)) for key in ("crlb_5d", "crlb_1d", "snr")}
    out["fisher"] = np.empty((mags.size, info.n, len(names), len(names)))
    out["fisher_labels"] = names
    with h5py.File(test_path, "r") as f:
        for i in range(0, info.n, batch_size):
            rows = slice(i, i + batch_size)
            # np.asarray first: torch refuses the other byte order, which user files may hold
            flux = torch.as_tensor(np.asarray(f["flux"][rows], np.float64))
            jac = torch.as_tensor(np.asarray(f["jacobian"][rows], np.float64))
            for m, mag in enumerate(mags):
                sigma = pixel_sigma(flux, float(mag), noise_level)
                fisher = fisher_matrix(jac, sigma)
                marginal, conditional = crlb(fisher, index=index, scales=scales)
                out["fisher"][m, rows] = fisher.numpy()
                out["crlb_5d"][m, rows] = marginal.numpy()
                out["crlb_1d"][m, rows] = conditional.numpy()
                out["snr"][m, rows] = snr_fn(flux, sigma).numpy()
    return out


def per_star_ceilings(model, labels, mags, label_space: LabelSpace | None = None, test_path=None,
                      noise_level: float = 1.0, batch_size: int = 256) -> dict[str, np.ndarray] | None:
    """Per-star bounds for plotting bands, or None when no ceiling is available.

    With a forward ``model`` the Jacobian is the model's at ``labels`` [N, 5] (read from
    ``test_path`` when None); without one it is the test file's ``jacobian`` dataset, and
    ``5d`` then marginalises over the labels listed in its ``jacobian_labels``.
    Returns ``mag`` [M], ``logg`` [N] and, each [M, N]: ``snr``, ``crlb_5d``, ``crlb_1d``,
    ``bayes_5d``, ``bayes_1d`` (the per-star Bayes bounds, see the module docstring).
    """
    if ceiling_unavailable(model, test_path) is not None:
        return None
    from specvit.data.contract import read_labels

    label_space = label_space or LabelSpace()
    mags = np.atleast_1d(np.asarray(mags, dtype=np.float64))
    if model is not None:
        if labels is None:
            found = read_labels(test_path, LABEL_NAMES)
            labels = np.stack([found[x] for x in LABEL_NAMES], axis=1)
        labels = np.asarray(labels, dtype=np.float64)
        out = ceiling_per_star(model, labels, mags, noise_level, batch_size, return_fisher=True)
        names = list(LABEL_NAMES)
    else:
        out = _file_per_star(test_path, mags, noise_level, batch_size)
        names = out.pop("fisher_labels")
        found = read_labels(test_path, names)
        labels = np.stack([found[x] for x in names], axis=1).astype(np.float64)
    logg = labels[:, names.index("logg")]
    prior = label_space.priors["logg"]
    for dims in DIMS:
        out[f"bayes_{dims}"] = bayes_bound(logg, out[f"crlb_{dims}"], prior)
    fisher = out.pop("fisher")
    priors = [label_space.priors.get(x) for x in names]
    if all(p is not None and p.distribution == "uniform" for p in priors):
        # 5D: the prior box of every label, not only log g's range
        low, high = np.array([p.low for p in priors]), np.array([p.high for p in priors])
        out["bayes_5d"] = np.stack([bayes_bound_box(labels, fisher[m], low, high, index=names.index("logg"),
                                                    sampling=BoxSampling(seed=m)) for m in range(mags.size)])
    return {"mag": mags, "logg": logg, **out}


# ----------------------------------------------------------------------------- tables


def _bootstrap_r2(bound: np.ndarray, var: float, n_boot: int, rng) -> tuple[float, float]:
    if n_boot <= 0:
        return np.nan, np.nan
    means = bound[rng.integers(0, bound.size, size=(n_boot, bound.size))].mean(axis=1)
    q90, q10 = np.quantile(1.0 - means / var, [0.9, 0.1])  # large bound -> low R^2
    return float(min(q10, q90)), float(max(q10, q90))


def summarise(per_star: dict[str, np.ndarray], var: float, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """The ceiling table (``COLUMNS``) from ``per_star_ceilings`` output and Var(logg)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, mag in enumerate(per_star["mag"]):
        snr = float(np.median(per_star["snr"][m]))
        for kind in KINDS:
            for dims in DIMS:
                bound = per_star[f"{'bayes' if kind == 'bayes' else 'crlb'}_{dims}"][m]
                if kind == "median":
                    r2 = 1.0 - bound / var
                    stats = (np.median(r2), *np.quantile(r2, [0.1, 0.9]))
                else:
                    stats = (1.0 - bound.mean() / var, *_bootstrap_r2(bound, var, n_boot, rng))
                rows.append((float(mag), snr, kind, dims, *map(float, stats)))
    return pd.DataFrame(rows, columns=COLUMNS)


def logg_variance_of(choice, label_space: LabelSpace, logg: np.ndarray) -> float:
    """Var(logg) for the R^2 denominators: ``"prior"`` (default), ``"sample"`` or a number."""
    if choice == "prior":
        return float(label_space.priors["logg"].variance())
    if choice == "sample":
        return float(np.var(logg, ddof=1))
    return float(choice)


@dataclass(frozen=True)
class CeilingSettings:
    """How bounds become a ceiling table: the label priors (Var(logg) and the Bayes bounds), the
    noise level of the test spectra, Var(logg) of the R^2 denominators (see ``logg_variance_of``),
    and the bootstrap of the ``mse`` / ``bayes`` intervals (``n_boot`` resamples from ``seed``)."""

    label_space: LabelSpace = field(default_factory=LabelSpace)
    noise_level: float = 1.0
    logg_variance: str | float = "prior"
    n_boot: int = 200
    seed: int = 0


def ceiling_table(model, labels, mags, test_path=None, settings: CeilingSettings = CeilingSettings()
                  ) -> pd.DataFrame | None:
    """Ceiling R^2 of log g per magnitude: one row per mag x kind (median, mse, bayes) x dims
    (5d, 1d), columns ``COLUMNS``; snr_median is the median over stars of ||flux|| / ||sigma||.
    The stars are ``labels`` [N, 5] under the forward ``model``, or those of ``test_path`` (see
    ``per_star_ceilings``).

    Returns None when no ceiling is available (no forward model and no ``jacobian`` in the
    test file); write ``no_ceiling_table(ceiling_unavailable(model, test_path), mags)`` then.
    """
    per_star = per_star_ceilings(model, labels, mags, settings.label_space, test_path, settings.noise_level)
    if per_star is None:
        return None
    var = logg_variance_of(settings.logg_variance, settings.label_space, per_star["logg"])
    return summarise(per_star, var, settings.n_boot, settings.seed)


def no_ceiling_table(reason: str | None = None, mags=()) -> pd.DataFrame:
    """The ceiling table's rows (``COLUMNS``) with NaN values plus a ``note`` column saying
    plainly why no ceiling is available; a single row with NaN mag when ``mags`` is empty."""
    mags = [float(m) for m in np.atleast_1d(mags)] or [np.nan]
    rows = [(mag, np.nan, kind, dims, np.nan, np.nan, np.nan) for mag in mags for kind in KINDS for dims in DIMS]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["note"] = reason or NO_JACOBIAN
    return table


def ceiling_for_file(test_path, mags, label_space: LabelSpace | None = None, noise_level: float = 1.0,
                     synthetic: bool = False, model=None, logg_variance="prior") -> pd.DataFrame:
    """The ceiling table of a test file, always a DataFrame: for ``synthetic`` data the forward
    model (``model``, default ``SpectrumModel()``) at the file's labels, otherwise the file's
    ``jacobian``; without either, ``no_ceiling_table`` with the reason in its ``note`` column."""
    if synthetic and model is None:
        from specvit.physics.spectrum import SpectrumModel

        model = SpectrumModel()
    model = model if synthetic else None
    settings = CeilingSettings(label_space or LabelSpace(), noise_level, logg_variance)
    table = ceiling_table(model, None, mags, test_path, settings)
    return table if table is not None else no_ceiling_table(ceiling_unavailable(model, test_path), mags)
