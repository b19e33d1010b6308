"""Information ceilings of log g per magnitude bin, three ways, for the test stars.

Per star and magnitude the exact Jacobian J = d flux / d labels gives the Fisher matrix
F = J^T diag(sigma^-2) J (``specvit.physics.fisher``) and two Cramer-Rao bounds of log g: the
marginal (F^-1)_gg (the other labels unknown; ``dims`` ``5d``) and 1 / F_gg (the other labels known;
``1d``). J comes from the forward model (synthetic data) or from the test file's optional ``jacobian``
dataset (user data without a forward model); sigma = pixel_sigma(flux, mag, noise_level). For a user
file the marginal's ``dims`` names how many labels it marginalises, those of its ``jacobian_labels``
(``3d`` for three; a file with log g alone has only ``1d``).

Nuisances (``CeilingSettings.nuisances``, config ``ceiling.nuisances``): each ``NuisanceSet`` adds the
columns of a multiplicative Legendre continuum and/or a radial velocity to J, and its rows marginalise
them too: ``dims`` ``5d+cont2+rv`` and the like. The continuum columns need only the flux, so they work
for user files as well; the radial velocity needs the forward model (for a user file those rows are
NaN with a ``note``).

Each bound s^2 becomes a ceiling R^2 in three ways (``kind``):

- ``median``: median over stars of 1 - s^2 / Var(logg), the paper's convention; r2_q10 / r2_q90
  are the 10 % / 90 % quantiles of the per-star values (the star-to-star spread);
- ``mse``: 1 - mean(s^2) / Var(logg), the ceiling consistent with how a model's R^2 is computed
  (1 - MSE / Var);
- ``bayes``: 1 - mean(B) / Var(logg), with B the per-star Bayes bound below.

For ``mse`` and ``bayes``, r2_q10 / r2_q90 are a 10-90 % bootstrap interval over the test stars
(resampling stars, ``n_boot`` times, fixed seed): the sampling uncertainty of the population mean,
not a star-to-star spread; ``n_boot=0`` gives NaN.

The Bayes bound (``specvit.physics.bayes``) is an approximation. The Cramer-Rao bound holds for
unbiased estimators only; at low SNR an estimator that knows log g lies in [low, high] beats it (the
paper's models "exceed" the ceiling at mag 22.5). B replaces the real problem by a surrogate: the
spectrum of a star with true labels theta is summarised by an efficient unbiased estimate
t ~ N(theta, F(theta)^-1), with the true star's Fisher matrix used for every competing hypothesis,
and the estimator with the least mean squared error given t and the prior is the posterior mean
E[theta | t]; B(theta) = E_t[(theta - E[theta | t])^2]. Averaged over the prior, mean(B) is the
minimum MSE *of that surrogate problem*. It is exact for a linear model with Gaussian noise; for
the real spectra, whose Fisher matrix varies by three decades across the label box and whose
likelihood at SNR 3-5 is far from Gaussian, it is neither a proven lower bound nor an estimate of
the best achievable MSE, only an approximation of the latter.

- ``1d`` uses ``bayes_bound``: log g alone with its prior (uniform, or a normal truncated to the
  range); the posterior is a truncated normal in closed form, B by Gauss-Hermite quadrature.
- ``5d`` (and a user file's marginal) uses the prior box of every label (``bayes_bound_box``): the
  other labels are bounded too, which adds information exactly where log g is degenerate with them
  (with the log g range alone, LightGBM beat that bound by 0.01-0.02 at mag 21-21.5 in the default
  run). The posterior mean is a mean of a Gaussian truncated to the box, by defensive importance
  sampling. This needs uniform priors on the labels of the Jacobian; otherwise it falls back to the
  log g range.
- a nuisance set's rows use the same box bound with the nuisances integrated out under their
  Gaussian priors (rms from the config): for the surrogate, F is replaced by the labels' marginal
  information F_ll - F_ln (F_nn + diag(prior rms^-2))^-1 F_nl (``specvit.physics.fisher.marginal_fisher``).

Var(logg) defaults to the variance of the configured log g prior (``logg_variance="prior"``,
as the paper and the calibration do); ``"sample"`` uses the test stars' sample variance
(ddof=1), and a number is used as given. The Bayes bound always uses the prior.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import h5py
import numpy as np
import pandas as pd
import torch

from specvit.physics.bayes import bayes_bound, bayes_bound_box
from specvit.physics.fisher import LABEL_SCALES, BoundSpec, batch_bounds, ceiling_per_star
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.nuisances import NuisanceSet, legendre_basis

COLUMNS = ["mag", "snr_median", "kind", "dims", "r2", "r2_q10", "r2_q90"]
KINDS = ("median", "mse", "bayes")
DIMS = ("5d", "1d")  # the clean rows of synthetic data: all five labels unknown, or log g alone
NO_JACOBIAN = ("no information ceiling is available: the test data are not synthetic (no forward model) "
               "and the test file has no 'jacobian' dataset (d flux / d labels, with attribute "
               "'jacobian_labels' including 'logg'); add one to get the CRLB ceiling")
NO_RV = ("no ceiling with a radial velocity: its derivative needs the forward model, and these test data "
         "are not synthetic")


@dataclass(frozen=True)
class CeilingSettings:
    """How bounds become a ceiling table: the label priors (Var(logg) and the Bayes bounds), the
    noise level of the test spectra, Var(logg) of the R^2 denominators (see ``logg_variance_of``),
    the bootstrap of the ``mse`` / ``bayes`` intervals (``n_boot`` resamples from ``seed``), and the
    nuisance sets marginalised in rows of their own (``NuisanceSet``; config ``ceiling.nuisances``)."""

    label_space: LabelSpace = field(default_factory=LabelSpace)
    noise_level: float = 1.0
    logg_variance: str | float = "prior"
    n_boot: int = 200
    seed: int = 0
    nuisances: tuple[NuisanceSet, ...] = ()


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


def _file_per_star(test_path, mags, noise_level: float, nuisances, batch_size: int) -> dict:
    """Bounds from the file's ``jacobian`` and ``flux`` in float64, one block of stars at a time; the
    continuum columns of the nuisance sets from the flux (``nuisances`` without a radial velocity)."""
    from specvit.data.contract import read_wave, validate_file

    info = validate_file(test_path, check_values=False)
    names = list(info.jacobian_labels)
    scales = tuple(LABEL_SCALES[LABEL_NAMES.index(x)] if x in LABEL_NAMES else 1.0 for x in names)
    spec = BoundSpec(len(names), names.index("logg"), scales, tuple(nuisances))
    basis = None
    if spec.max_degree is not None:
        basis = torch.as_tensor(legendre_basis(read_wave(test_path), spec.max_degree))
    parts = []
    with h5py.File(test_path, "r") as f:
        for i in range(0, info.n, batch_size):
            # np.asarray first: torch refuses the other byte order, which user files may hold
            flux = torch.as_tensor(np.asarray(f["flux"][i : i + batch_size], np.float64))
            jac = torch.as_tensor(np.asarray(f["jacobian"][i : i + batch_size], np.float64))
            if basis is not None:
                jac = torch.cat([jac, flux[:, :, None] * basis], dim=-1)
            parts.append(batch_bounds(flux, jac, mags, spec, noise_level=noise_level, return_fisher=True))
    out = {key: np.concatenate([p[key] for p in parts], axis=1) for key in parts[0]}
    return {**out, "names": names}


def _marginal_dims(names) -> str | None:
    """The ``dims`` of the bound that marginalises every label of ``names``: ``5d`` for the five labels of
    the forward model, ``<k>d`` for a user file's k labels, None when log g is the only one (``1d`` then)."""
    return None if len(names) == 1 else f"{len(names)}d"


def per_star_ceilings(model, labels, mags, test_path=None, settings: CeilingSettings = CeilingSettings(),
                      batch_size: int = 256) -> dict | None:
    """Per-star bounds, or None when no ceiling is available.

    With a forward ``model`` the Jacobian is the model's at ``labels`` [N, 5] (read from ``test_path``
    when None); without one it is the test file's ``jacobian`` dataset, whose ``jacobian_labels`` are
    marginalised. Returns ``mag`` [M], ``logg`` [N], ``snr`` [M, N], ``dims`` (the row sets, in order),
    ``crlb`` and ``bayes`` ({dims: [M, N]}: the Cramér-Rao and the per-star Bayes bound) and ``notes``
    ({dims: why that set has no numbers}).
    """
    if ceiling_unavailable(model, test_path) is not None:
        return None
    from specvit.data.contract import read_labels

    space, nuisances = settings.label_space, tuple(settings.nuisances)
    mags = np.atleast_1d(np.asarray(mags, dtype=np.float64))
    notes = {}
    if model is not None:
        if labels is None:
            found = read_labels(test_path, LABEL_NAMES)
            labels = np.stack([found[x] for x in LABEL_NAMES], axis=1)
        labels = np.asarray(labels, dtype=np.float64)
        out = ceiling_per_star(model, labels, mags, settings.noise_level, batch_size, nuisances=nuisances,
                               return_fisher=True)
        out["crlb_marginal"] = out.pop("crlb_5d")
        names = list(LABEL_NAMES)
    else:
        usable = tuple(s for s in nuisances if not s.rv)
        out = _file_per_star(test_path, mags, settings.noise_level, usable, batch_size)
        names = out.pop("names")
        found = read_labels(test_path, names)
        labels = np.stack([found[x] for x in names], axis=1).astype(np.float64)
        notes = {s.dims(_marginal_dims(names) or "1d"): NO_RV for s in nuisances if s.rv}
    logg = labels[:, names.index("logg")]
    base = _marginal_dims(names)
    crlb, fisher = {"1d": out["crlb_1d"]}, {}
    if base is not None:
        crlb[base], fisher[base] = out["crlb_marginal"], out["fisher"]
    for s in nuisances:
        dims = s.dims(base or "1d")  # log g and the nuisances, when log g is the file's only label
        if dims not in notes:
            crlb[dims], fisher[dims] = out[f"crlb_{s.dims()}"], out[f"fisher_{s.dims()}"]
    bayes = {"1d": bayes_bound(logg, out["crlb_1d"], space.priors["logg"])}
    priors = [space.priors.get(x) for x in names]
    box = all(p is not None and p.distribution == "uniform" for p in priors)
    for dims, f in fisher.items():
        if box:  # the prior box of every label, not only log g's range
            low, high = np.array([p.low for p in priors]), np.array([p.high for p in priors])
            bayes[dims] = bayes_bound_box(labels, f, low, high, index=names.index("logg"))  # f [M, N, k, k]
        else:
            bayes[dims] = bayes_bound(logg, crlb[dims], space.priors["logg"])
    order = [d for d in (base, "1d") if d is not None] + [s.dims(base or "1d") for s in nuisances]
    return {"mag": mags, "logg": logg, "snr": out["snr"], "dims": order, "crlb": crlb, "bayes": bayes,
            "notes": notes}


# ----------------------------------------------------------------------------- tables


def _bootstrap_r2(bound: np.ndarray, var: float, n_boot: int, rng) -> tuple[float, float]:
    if n_boot <= 0:
        return np.nan, np.nan
    means = bound[rng.integers(0, bound.size, size=(n_boot, bound.size))].mean(axis=1)
    q90, q10 = np.quantile(1.0 - means / var, [0.9, 0.1])  # large bound -> low R^2
    return float(min(q10, q90)), float(max(q10, q90))


def summarise(per_star: dict, var: float, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """The ceiling table (``COLUMNS``, plus ``note`` where a row set has no numbers) from
    ``per_star_ceilings`` output and Var(logg): rows per mag x kind x dims, in that order. The bootstrap
    of a row depends only on ``seed``, its magnitude and its dims (not on which other rows exist)."""
    rows = []
    notes = per_star.get("notes", {})
    for m, mag in enumerate(per_star["mag"]):
        snr = float(np.median(per_star["snr"][m]))
        for kind in KINDS:
            for dims in per_star["dims"]:
                if dims in notes:
                    rows.append((float(mag), snr, kind, dims, np.nan, np.nan, np.nan, notes[dims]))
                    continue
                bound = per_star["bayes" if kind == "bayes" else "crlb"][dims][m]
                if kind == "median":
                    r2 = 1.0 - bound / var
                    stats = (np.median(r2), *np.quantile(r2, [0.1, 0.9]))
                else:
                    rng = np.random.default_rng((seed, m, zlib.crc32(dims.encode())))
                    stats = (1.0 - bound.mean() / var, *_bootstrap_r2(bound, var, n_boot, rng))
                rows.append((float(mag), snr, kind, dims, *map(float, stats), ""))
    table = pd.DataFrame(rows, columns=[*COLUMNS, "note"])
    return table if notes else table.drop(columns="note")


def logg_variance_of(choice, label_space: LabelSpace, logg: np.ndarray) -> float:
    """Var(logg) for the R^2 denominators: ``"prior"`` (default), ``"sample"`` or a number."""
    if choice == "prior":
        return float(label_space.priors["logg"].variance())
    if choice == "sample":
        return float(np.var(logg, ddof=1))
    return float(choice)


def ceiling_table(model, labels, mags, test_path=None, settings: CeilingSettings = CeilingSettings()
                  ) -> pd.DataFrame | None:
    """Ceiling R^2 of log g per magnitude: one row per mag x kind (median, mse, bayes) x dims
    (``5d``, ``1d``, then one per nuisance set of ``settings``), columns ``COLUMNS``; snr_median is
    the median over stars of ||flux|| / ||sigma||. The stars are ``labels`` [N, 5] under the forward
    ``model``, or those of ``test_path`` (see ``per_star_ceilings``).

    Returns None when no ceiling is available (no forward model and no ``jacobian`` in the
    test file); write ``no_ceiling_table(ceiling_unavailable(model, test_path), mags)`` then.
    """
    per_star = per_star_ceilings(model, labels, mags, test_path, settings)
    if per_star is None:
        return None
    var = logg_variance_of(settings.logg_variance, settings.label_space, per_star["logg"])
    return summarise(per_star, var, settings.n_boot, settings.seed)


def no_ceiling_table(reason: str | None = None, mags=(), nuisances=()) -> pd.DataFrame:
    """The ceiling table's rows (``COLUMNS``) with NaN values plus a ``note`` column saying
    plainly why no ceiling is available; a single row with NaN mag when ``mags`` is empty."""
    mags = [float(m) for m in np.atleast_1d(mags)] or [np.nan]
    dims = [*DIMS, *(s.dims() for s in nuisances)]
    rows = [(mag, np.nan, kind, d, np.nan, np.nan, np.nan) for mag in mags for kind in KINDS for d in dims]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["note"] = reason or NO_JACOBIAN
    return table


def ceiling_for_file(test_path, mags, settings: CeilingSettings = CeilingSettings(), *, synthetic: bool = False,
                     model=None) -> pd.DataFrame:
    """The ceiling table of a test file, always a DataFrame: for ``synthetic`` data the forward
    model (``model``, default ``SpectrumModel()``) at the file's labels, otherwise the file's
    ``jacobian``; without either, ``no_ceiling_table`` with the reason in its ``note`` column."""
    if synthetic and model is None:
        from specvit.physics.spectrum import SpectrumModel

        model = SpectrumModel()
    model = model if synthetic else None
    table = ceiling_table(model, None, mags, test_path, settings)
    if table is None:
        return no_ceiling_table(ceiling_unavailable(model, test_path), mags, settings.nuisances)
    return table
