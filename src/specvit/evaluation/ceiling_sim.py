"""The ``mmse_sim`` ceiling: the Bayes (minimum mean squared error) R^2 of log g, estimated by
simulating the real posterior of test stars (``specvit.physics.posterior``).

The ``bayes`` rows of the ceiling table (``specvit.evaluation.ceilings``) are exact only for a
surrogate problem: an efficient estimate t ~ N(theta, F(theta*)^-1) with the true star's Fisher
matrix for every competing hypothesis. Here the first ``n_stars`` stars of the test file get one
seeded noisy spectrum each per magnitude under the exact forward model and the noise model
(sigma of the star's noise-free flux at that magnitude, known), and their posterior mean
E[logg | y] under the label prior is computed by importance sampling. With ``nuisances`` (the
config's ``ceiling.nuisances``) each set is simulated too, on the same stars and noise draws: every
star's observation carries a seeded continuum error and radial velocity drawn from the set's priors;
the radial velocity is sampled as a sixth parameter (its Gaussian prior truncated to the forward
model's range) and the continuum coefficients are integrated out of the likelihood in closed form
(``specvit.physics.importance.log_likelihood_continuum``). Per row set (``dims``) and magnitude:

- ``r2`` = 1 - mean_i e_i / Var_prior(logg), e_i = (logg_i - E[logg | y_i])^2 minus the Monte Carlo
  variance of the estimated mean (which would otherwise add to the squared error);
- ``r2_mc_error``: the Monte Carlo error of r2 (delta method over the importance weights), the
  part of the uncertainty that more samples would remove;
- ``r2_q10`` / ``r2_q90``: a 10-90 % bootstrap interval over the stars (resampling stars and
  their noise draws), the part that more stars would remove;
- ``ess_median``: the median effective sample size of the stars' estimates.

``ceiling_sim.csv`` (``SIM_COLUMNS``) adds the 10 % and smallest ESS, the median share of posterior
weight on the prior bank, the number of stars, and the ``bayes`` bound of the same dims on the same
stars (``r2_bayes_same_stars``) for a paired comparison. The per-star table (``PER_STAR_COLUMNS``)
has every star's estimate, with the CRLB and the ``bayes`` bound of its dims.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from specvit.evaluation.ceilings import COLUMNS, CeilingSettings, logg_variance_of, per_star_ceilings
from specvit.physics.importance import BoxPrior, mmse_r2
from specvit.physics.labels import LABEL_NAMES, LOGG, LabelPrior, LabelSpace
from specvit.physics.nuisances import RV_MAX_KMS, NuisanceSet, legendre_basis
from specvit.physics.observations import ContinuumError, WithRadialVelocity
from specvit.physics.posterior import PosteriorSampling, posterior_means

KIND, DIMS = "mmse_sim", "5d"  # DIMS: the clean rows (all five labels unknown)
EXTRA_COLUMNS = ["r2_mc_error", "ess_median"]  # the columns ceiling.csv gets (NaN on the other kinds)
SIM_COLUMNS = COLUMNS + EXTRA_COLUMNS + ["ess_q10", "ess_min", "bank_share_median", "n_stars",
                                         "r2_bayes_same_stars"]
PER_STAR_COLUMNS = ["star", "dims", "mag", "snr", "logg", "post_mean", "post_sd", "ess", "mc_sd", "bank_share",
                    "crlb", "bayes"]


@dataclass(frozen=True)
class SimSettings:
    """The stars (the first ``n_stars`` of the test file), magnitudes, sampling and noise of the
    simulation, the seed of its noise draws, the bootstrap over stars, the label priors, the
    largest Monte Carlo error of R^2 accepted at any magnitude (None: no limit), and the nuisance
    sets simulated besides the clean case."""

    n_stars: int = 256
    mags: tuple[float, ...] = (21.5, 22.0, 22.5, 23.0)
    sampling: PosteriorSampling = field(default_factory=PosteriorSampling)
    seed: int = 0
    noise_level: float = 1.0
    n_boot: int = 200
    label_space: LabelSpace = field(default_factory=LabelSpace)
    max_mc_error: float | None = 0.01
    nuisances: tuple[NuisanceSet, ...] = ()


def noise_seeds(seed: int, rows) -> list[int]:
    """One seed per test-file row, so a star's noise does not depend on how many stars are simulated."""
    return [int(np.random.SeedSequence([int(seed), int(r)]).generate_state(1)[0]) for r in rows]


def stars_of(test_path, n_stars: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels [n, 5]) of the first ``n_stars`` stars of the test file (all if it has fewer)."""
    from specvit.data.contract import read_labels

    found = read_labels(test_path, LABEL_NAMES)
    labels = np.stack([found[x] for x in LABEL_NAMES], axis=1).astype(np.float64)[:n_stars]
    return np.arange(labels.shape[0]), labels


def _rows(per_star: dict, bounds: dict, mags, var: float, settings: SimSettings, dims: str) -> pd.DataFrame:
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
                     "dims": dims, "r2": r2, "r2_q10": float(q10), "r2_q90": float(q90), "r2_mc_error": mc_error,
                     "ess_median": float(np.median(ess)), "ess_q10": float(np.quantile(ess, 0.1)),
                     "ess_min": float(ess.min()), "bank_share_median": float(np.median(per_star["bank_share"][m])),
                     "n_stars": int(truth.size),
                     "r2_bayes_same_stars": float(1.0 - bounds["bayes"][m].mean() / var)})
    return pd.DataFrame(rows, columns=SIM_COLUMNS)


def _per_star_table(per_star: dict, bounds: dict, rows, mags, dims: str) -> pd.DataFrame:
    parts = []
    for m, mag in enumerate(mags):
        parts.append(pd.DataFrame({
            "star": rows, "dims": dims, "mag": float(mag), "snr": per_star["snr"][m], "logg": per_star["truth"],
            "post_mean": per_star["mean"][m], "post_sd": per_star["sd"][m], "ess": per_star["ess"][m],
            "mc_sd": np.sqrt(per_star["mc_var"][m]), "bank_share": per_star["bank_share"][m],
            "crlb": bounds["crlb"][m], "bayes": bounds["bayes"][m]}))
    return pd.concat(parts, ignore_index=True)[PER_STAR_COLUMNS]


def check_mc_error(table: pd.DataFrame, limit: float | None, source) -> None:
    """ValueError naming ``source``, the magnitudes and their errors when a row's ``r2_mc_error`` is
    above ``limit`` or not finite (None: no check); the message names the keys that lower it."""
    if limit is None:
        return
    bad = table[~(table["r2_mc_error"] <= limit)]
    if len(bad):
        rows = ", ".join(f"{r.dims} at mag {r.mag:g}: {r.r2_mc_error:.3g}" for r in bad.itertuples())
        raise ValueError(f"{source}: the Monte Carlo error of the mmse_sim R² is above ceiling.mmse_sim.max_mc_error "
                         f"= {limit:g} ({rows}); raise ceiling.mmse_sim.n_star and n_prior (the error falls as one "
                         f"over the square root of the draws), or max_mc_error (null: no limit)")


def _nuisance_problem(model, labels: np.ndarray, seeds, nuisance: NuisanceSet | None, priors: tuple):
    """(forward model, true parameters [N, d], their priors, continuum error or None) of one row set: the
    clean labels, or the labels with each star's seeded radial velocity (a sixth parameter) and continuum
    coefficients (integrated out), drawn from the set's priors."""
    if nuisance is None:
        return model, labels, priors, None
    rngs = [np.random.default_rng([int(s), 2]) for s in seeds]  # per star: independent of the star count
    forward, truth, continuum = model, labels, None
    if nuisance.rv:
        rv_prior = LabelPrior(-RV_MAX_KMS, RV_MAX_KMS, "normal", mean=0.0, std=nuisance.rv_rms_kms)
        forward, priors = WithRadialVelocity(model), (*priors, rv_prior)
        truth = np.concatenate([labels, np.array([rv_prior.sample(1, r) for r in rngs])], axis=1)
    if nuisance.continuum_degree is not None:
        coeffs = np.stack([r.normal(0.0, nuisance.continuum_rms, nuisance.n_continuum) for r in rngs])
        continuum = ContinuumError(legendre_basis(model.wave, nuisance.continuum_degree), nuisance.continuum_rms,
                                   coeffs)
    return forward, truth, priors, continuum


def simulated_ceiling(test_path, settings: SimSettings = SimSettings(), model=None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``SIM_COLUMNS`` table, one row per dims and magnitude; ``PER_STAR_COLUMNS`` table) of the first
    ``settings.n_stars`` test stars under the forward ``model`` (default ``SpectrumModel()``), clean and
    with each of ``settings.nuisances``; ValueError when the Monte Carlo error of R^2 is above
    ``settings.max_mc_error`` (``check_mc_error``)."""
    if model is None:
        from specvit.physics.spectrum import SpectrumModel

        model = SpectrumModel()
    rows, labels = stars_of(test_path, settings.n_stars)
    if labels.shape[0] == 0:
        raise ValueError(f"{test_path}: no test stars to simulate the posterior of")
    space, seeds = settings.label_space, noise_seeds(settings.seed, rows)
    mags = [float(m) for m in settings.mags]
    sets = {DIMS: None, **{s.dims(DIMS): s for s in settings.nuisances}}
    per_star = {}
    for dims, nuisance in sets.items():
        forward, truth, priors, continuum = _nuisance_problem(model, labels, seeds, nuisance,
                                                              tuple(space.priors.values()))
        per_star[dims] = posterior_means(forward, truth, mags, prior=BoxPrior(priors), noise_seeds=seeds,
                                         noise_level=settings.noise_level, sampling=settings.sampling, index=LOGG,
                                         continuum=continuum)
    # after the sampling: this turns the model to float64 (the Fisher work), which samples more slowly
    found = per_star_ceilings(model, labels, mags, settings=CeilingSettings(space, settings.noise_level,
                                                                            nuisances=settings.nuisances))
    var = logg_variance_of("prior", space, labels[:, LOGG])
    tables, stars = [], []
    for dims, post in per_star.items():
        bounds = {"crlb": found["crlb"][dims], "bayes": found["bayes"][dims]}
        tables.append(_rows(post, bounds, mags, var, settings, dims))
        stars.append(_per_star_table(post, bounds, rows, mags, dims))
    table = pd.concat(tables, ignore_index=True)
    check_mc_error(table, settings.max_mc_error, test_path)
    return table, pd.concat(stars, ignore_index=True)


def with_sim_rows(table: pd.DataFrame, sim: pd.DataFrame | None) -> pd.DataFrame:
    """The ceiling table with the ``mmse_sim`` rows of ``sim`` (a ``ceiling_sim.csv``) appended and the
    columns ``EXTRA_COLUMNS`` added (NaN on the other kinds' rows, and everywhere when ``sim`` is None)."""
    table = table.assign(**{c: np.nan for c in EXTRA_COLUMNS if c not in table})
    if sim is None or not len(sim):
        return table
    return pd.concat([table, sim[COLUMNS + EXTRA_COLUMNS]], ignore_index=True)

