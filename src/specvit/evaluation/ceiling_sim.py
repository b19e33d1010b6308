"""The ``mmse_sim`` ceiling: the Bayes (minimum mean squared error) R^2 of log g, estimated by
simulating the real posterior of test stars (``specvit.physics.posterior``).

The ``bayes`` rows of the ceiling table (``specvit.evaluation.ceilings``) are exact only for a
surrogate problem: an efficient estimate t ~ N(theta, F(theta*)^-1) with the true star's Fisher
matrix for every competing hypothesis. Here the first ``n_stars`` stars of the test file get one
seeded noisy spectrum each per magnitude under the exact forward model and the noise model
(sigma of the star's noise-free flux at that magnitude, known), and their posterior mean
E[logg | y] under the label prior is computed by importance sampling. Per magnitude:

- ``r2`` = 1 - mean_i e_i / Var_prior(logg), e_i = (logg_i - E[logg | y_i])^2 minus the Monte Carlo
  variance of the estimated mean (which would otherwise add to the squared error);
- ``r2_mc_error``: the Monte Carlo error of r2 (delta method over the importance weights), the
  part of the uncertainty that more samples would remove;
- ``r2_q10`` / ``r2_q90``: a 10-90 % bootstrap interval over the stars (resampling stars and
  their noise draws), the part that more stars would remove;
- ``ess_median``: the median effective sample size of the stars' estimates.

``ceiling_sim.csv`` (``SIM_COLUMNS``) adds the 10 % and smallest ESS, the median share of posterior
weight on the prior bank, the number of stars, and the ``bayes`` (5D, label-box) bound of the same
stars (``r2_bayes_same_stars``) for a paired comparison. The per-star table (``PER_STAR_COLUMNS``)
has every star's estimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from specvit.evaluation.ceilings import COLUMNS, CeilingSettings, logg_variance_of, per_star_ceilings
from specvit.physics.importance import BoxPrior, mmse_r2
from specvit.physics.labels import LABEL_NAMES, LOGG, LabelSpace
from specvit.physics.posterior import PosteriorSampling, posterior_means

KIND, DIMS = "mmse_sim", "5d"
EXTRA_COLUMNS = ["r2_mc_error", "ess_median"]  # the columns ceiling.csv gets (NaN on the other kinds)
SIM_COLUMNS = COLUMNS + EXTRA_COLUMNS + ["ess_q10", "ess_min", "bank_share_median", "n_stars",
                                         "r2_bayes_same_stars"]
PER_STAR_COLUMNS = ["star", "mag", "snr", "logg", "post_mean", "post_sd", "ess", "mc_sd", "bank_share",
                    "crlb_5d", "bayes_5d"]


@dataclass(frozen=True)
class SimSettings:
    """The stars (the first ``n_stars`` of the test file), magnitudes, sampling and noise of the
    simulation, the seed of its noise draws, the bootstrap over stars, the label priors, and the
    largest Monte Carlo error of R^2 accepted at any magnitude (None: no limit)."""

    n_stars: int = 256
    mags: tuple[float, ...] = (21.5, 22.0, 22.5, 23.0)
    sampling: PosteriorSampling = field(default_factory=PosteriorSampling)
    seed: int = 0
    noise_level: float = 1.0
    n_boot: int = 200
    label_space: LabelSpace = field(default_factory=LabelSpace)
    max_mc_error: float | None = 0.01


def noise_seeds(seed: int, rows) -> list[int]:
    """One seed per test-file row, so a star's noise does not depend on how many stars are simulated."""
    return [int(np.random.SeedSequence([int(seed), int(r)]).generate_state(1)[0]) for r in rows]


def stars_of(test_path, n_stars: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels [n, 5]) of the first ``n_stars`` stars of the test file (all if it has fewer)."""
    from specvit.data.contract import read_labels

    found = read_labels(test_path, LABEL_NAMES)
    labels = np.stack([found[x] for x in LABEL_NAMES], axis=1).astype(np.float64)[:n_stars]
    return np.arange(labels.shape[0]), labels


def _rows(per_star: dict, bounds: dict, mags, var: float, settings: SimSettings) -> pd.DataFrame:
    rng = np.random.default_rng(settings.seed)
    rows = []
    for m, mag in enumerate(mags):
        truth, mean, mc_var, ess = per_star["truth"], per_star["mean"][m], per_star["mc_var"][m], per_star["ess"][m]
        r2, mc_error = mmse_r2(truth, mean, mc_var, var)
        sq_err = (truth - mean) ** 2 - mc_var
        if settings.n_boot > 0:
            boot = sq_err[rng.integers(0, sq_err.size, size=(settings.n_boot, sq_err.size))].mean(axis=1)
            q10, q90 = np.quantile(1.0 - boot / var, [0.1, 0.9])
        else:
            q10 = q90 = np.nan
        rows.append({"mag": float(mag), "snr_median": float(np.median(per_star["snr"][m])), "kind": KIND,
                     "dims": DIMS, "r2": r2, "r2_q10": float(q10), "r2_q90": float(q90), "r2_mc_error": mc_error,
                     "ess_median": float(np.median(ess)), "ess_q10": float(np.quantile(ess, 0.1)),
                     "ess_min": float(ess.min()), "bank_share_median": float(np.median(per_star["bank_share"][m])),
                     "n_stars": int(truth.size),
                     "r2_bayes_same_stars": float(1.0 - bounds["bayes_5d"][m].mean() / var)})
    return pd.DataFrame(rows, columns=SIM_COLUMNS)


def _per_star_table(per_star: dict, bounds: dict, rows, mags) -> pd.DataFrame:
    parts = []
    for m, mag in enumerate(mags):
        parts.append(pd.DataFrame({
            "star": rows, "mag": float(mag), "snr": per_star["snr"][m], "logg": per_star["truth"],
            "post_mean": per_star["mean"][m], "post_sd": per_star["sd"][m], "ess": per_star["ess"][m],
            "mc_sd": np.sqrt(per_star["mc_var"][m]), "bank_share": per_star["bank_share"][m],
            "crlb_5d": bounds["crlb_5d"][m], "bayes_5d": bounds["bayes_5d"][m]}))
    return pd.concat(parts, ignore_index=True)[PER_STAR_COLUMNS]


def check_mc_error(table: pd.DataFrame, limit: float | None, source) -> None:
    """ValueError naming ``source``, the magnitudes and their errors when a row's ``r2_mc_error`` is
    above ``limit`` or not finite (None: no check); the message names the keys that lower it."""
    if limit is None:
        return
    bad = table[~(table["r2_mc_error"] <= limit)]
    if len(bad):
        rows = ", ".join(f"mag {r.mag:g}: {r.r2_mc_error:.3g}" for r in bad.itertuples())
        raise ValueError(f"{source}: the Monte Carlo error of the mmse_sim R² is above ceiling.mmse_sim.max_mc_error "
                         f"= {limit:g} ({rows}); raise ceiling.mmse_sim.n_star and n_prior (the error falls as one "
                         f"over the square root of the draws), or max_mc_error (null: no limit)")


def simulated_ceiling(test_path, settings: SimSettings = SimSettings(), model=None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``SIM_COLUMNS`` table, one row per magnitude; ``PER_STAR_COLUMNS`` table) of the first
    ``settings.n_stars`` test stars under the forward ``model`` (default ``SpectrumModel()``);
    ValueError when the Monte Carlo error of R^2 is above ``settings.max_mc_error`` (``check_mc_error``)."""
    if model is None:
        from specvit.physics.spectrum import SpectrumModel

        model = SpectrumModel()
    rows, labels = stars_of(test_path, settings.n_stars)
    if labels.shape[0] == 0:
        raise ValueError(f"{test_path}: no test stars to simulate the posterior of")
    space = settings.label_space
    mags = [float(m) for m in settings.mags]
    per_star = posterior_means(model, labels, mags, prior=BoxPrior(tuple(space.priors.values())),
                               noise_seeds=noise_seeds(settings.seed, rows), noise_level=settings.noise_level,
                               sampling=settings.sampling, index=LOGG)
    # after the sampling: this turns the model to float64 (the Fisher work), which samples more slowly
    found = per_star_ceilings(model, labels, mags, settings=CeilingSettings(space, settings.noise_level))
    bounds = {"crlb_5d": found["crlb"][DIMS], "bayes_5d": found["bayes"][DIMS]}
    var = logg_variance_of("prior", space, per_star["truth"])
    table = _rows(per_star, bounds, mags, var, settings)
    check_mc_error(table, settings.max_mc_error, test_path)
    return table, _per_star_table(per_star, bounds, rows, mags)


def with_sim_rows(table: pd.DataFrame, sim: pd.DataFrame | None) -> pd.DataFrame:
    """The ceiling table with the ``mmse_sim`` rows of ``sim`` (a ``ceiling_sim.csv``) appended and the
    columns ``EXTRA_COLUMNS`` added (NaN on the other kinds' rows, and everywhere when ``sim`` is None)."""
    table = table.assign(**{c: np.nan for c in EXTRA_COLUMNS if c not in table})
    if sim is None or not len(sim):
        return table
    return pd.concat([table, sim[COLUMNS + EXTRA_COLUMNS]], ignore_index=True)

