"""The one R² definition (1 - MSE / Var of the prior) and the paired bootstrap of model differences,
against hand-computed cases."""
import math

import numpy as np
import pandas as pd
import pytest

from specvit.evaluation import metrics as em
from specvit.evaluation.paired import paired_difference


def test_r2_against_a_given_variance_is_one_minus_mse_over_it():
    t = np.array([1.0, 2.0, 4.0, 5.0])
    p = np.array([1.5, 2.0, 3.0, 5.0])            # squared errors 0.25, 0, 1, 0: MSE 0.3125
    assert em.r2_of(t, p, variance=4 / 3) == pytest.approx(1 - 0.3125 / (4 / 3), rel=1e-15)
    # the same predictions scored against the sample's own variance (sklearn's R²) differ
    assert em.r2_of(t, p) == pytest.approx(1 - 1.25 / 10.0, rel=1e-15)
    m = em.point_metrics(t, p, variance=2.0)
    assert m["r2"] == pytest.approx(1 - 0.3125 / 2.0) and m["mae"] == pytest.approx(0.375)
    # a constant truth has no sample variance, but R² against the prior is defined
    assert math.isnan(em.r2_of([2.0, 2.0], [1.0, 3.0])) and em.r2_of([2.0, 2.0], [1.0, 3.0], variance=2.0) == 0.5
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="reference variance"):
            em.r2_of(t, p, variance=bad)


def test_bootstrap_against_a_variance_resamples_mse_only():
    """Against a fixed variance every replicate is 1 - mean(d²[idx]) / Var: two stars with squared
    errors 0 and 2 give replicates 1, 1 - 1/Var, 1 - 2/Var with probabilities 1/4, 1/2, 1/4."""
    ci = em.bootstrap_intervals([0.0, 0.0], [0.0, math.sqrt(2)], n_boot=4000, seed=3, variance=2.0)
    assert (ci["r2_lo"], ci["r2_hi"]) == pytest.approx((0.0, 1.0), abs=1e-12)
    assert ci["mae_lo"] == 0.0 and ci["mae_hi"] == pytest.approx(math.sqrt(2))
    table = em.metrics_table(pd.DataFrame({"true_logg": [1.0, 3.0, 5.0], "pred_logg": [2.0, 3.0, 4.0]}),
                             by=None, n_boot=20, variance=4 / 3)
    assert table["r2"].item() == pytest.approx(1 - (2 / 3) / (4 / 3))


def test_prior_variances_follow_the_configured_priors():
    v = em.prior_variances(None, ["logg", "Teff"])
    assert v["logg"] == pytest.approx(16 / 12, rel=1e-6) and v["Teff"] == pytest.approx(2250 ** 2 / 12, rel=1e-6)
    assert em.prior_variances({"logg": {"min": 2.0, "max": 4.0}}, ["logg"])["logg"] == pytest.approx(4 / 12, rel=1e-6)


def test_paired_difference_of_a_hand_computed_case():
    """Two stars; model a misses star 1 by 1 dex, model b misses star 0 by 1 and star 1 by sqrt(2).
    Per star, b's squared error exceeds a's by [1, 1]: every resample gives R²_a - R²_b = 1 / Var,
    a zero-width interval that an unpaired bootstrap could not give. The MAE differences per star are
    [-1, 1 - sqrt(2)]: resamples give their means -1, (-sqrt(2)) / 2, 1 - sqrt(2) (1/4, 1/2, 1/4)."""
    truth = np.array([3.0, 3.0])
    a, b = np.array([3.0, 4.0]), np.array([4.0, 3.0 + math.sqrt(2)])
    d = paired_difference(truth, a, b, variance=0.5, n_boot=4000, seed=1)
    assert d["n"] == 2
    assert d["r2_a"] == pytest.approx(1 - 0.5 / 0.5) and d["r2_b"] == pytest.approx(1 - 1.5 / 0.5)
    assert d["r2_diff"] == pytest.approx(2.0) and (d["r2_diff_lo"], d["r2_diff_hi"]) == pytest.approx((2.0, 2.0))
    assert d["mae_diff"] == pytest.approx(0.5 - (1 + math.sqrt(2)) / 2)
    assert d["mae_diff_lo"] == pytest.approx(-1.0) and d["mae_diff_hi"] == pytest.approx(1 - math.sqrt(2))


def test_paired_difference_pools_seeds_and_is_reproducible():
    """Seeds pooled: a star's errors averaged over the seeds, so the pooled R² is the mean of the seeds' R²."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 5, 300)
    a = truth + rng.normal(0, 0.3, (3, 300))      # three seeds
    b = truth + rng.normal(0.1, 0.5, 300)         # one seed
    var = 4 / 3
    d = paired_difference(truth, a, b, variance=var, n_boot=300, seed=7)
    assert d["r2_a"] == pytest.approx(np.mean([em.r2_of(truth, s, var) for s in a]), rel=1e-12)
    assert d["mae_a"] == pytest.approx(np.mean([np.mean(np.abs(s - truth)) for s in a]), rel=1e-12)
    assert d["r2_diff"] == pytest.approx(d["r2_a"] - em.r2_of(truth, b, var), rel=1e-12)
    assert d["r2_diff_lo"] < d["r2_diff"] < d["r2_diff_hi"] and d["r2_diff_lo"] > 0  # a is clearly better
    assert d == paired_difference(truth, a, b, variance=var, n_boot=300, seed=7)
    with pytest.raises(ValueError, match="stars per seed"):
        paired_difference(truth, a[:, :10], b, variance=var)
