"""Label priors: ranges, distributions, quasi-random samples, config overrides."""
import numpy as np
import pytest

from specvit.physics.labels import DEFAULT_RANGES, LABEL_NAMES, LabelPrior, LabelSpace


def test_default_ranges_are_the_papers_grid():
    assert LABEL_NAMES == ("Teff", "logg", "M_H", "a_M", "C_M")
    assert DEFAULT_RANGES["Teff"] == (3750.0, 6000.0) and DEFAULT_RANGES["logg"] == (1.0, 5.0)
    x = LabelSpace().sample(20000, np.random.default_rng(0))
    assert x.shape == (20000, 5)
    assert (x >= LabelSpace().low).all() and (x <= LabelSpace().high).all()
    assert x[:, 1].var() == pytest.approx(16 / 12, rel=0.03)


def test_truncated_normal_prior_and_its_variance():
    prior = LabelPrior(1.0, 5.0, "normal", mean=4.5, std=0.5)
    x = prior.sample(50000, np.random.default_rng(1))
    assert x.min() >= 1.0 and x.max() <= 5.0
    assert x.var() == pytest.approx(prior.variance(), rel=0.03)
    assert LabelPrior(1.0, 5.0).variance() == pytest.approx(16 / 12)


def test_quasi_random_sample_covers_the_prior_evenly():
    space = LabelSpace()
    x = space.sample_quasi_random(1024, seed=5)
    assert x.shape == (1024, 5)
    u = (x - space.low) / (space.high - space.low)
    counts = np.histogram(u[:, 1], bins=8, range=(0, 1))[0]
    assert counts.min() == counts.max() == 128  # a Sobol sample of 2^10 points is exactly balanced
    assert not np.array_equal(x, space.sample_quasi_random(1024, seed=6))


def test_config_overrides_and_errors():
    space = LabelSpace.from_config({"logg": {"min": 2.0, "max": 3.0}})
    assert space.priors["logg"].low == 2.0 and space.priors["Teff"].high == 6000.0
    with pytest.raises(ValueError, match="low < high"):
        LabelPrior(3.0, 2.0)
    with pytest.raises(ValueError, match="unknown label distribution 'cauchy'"):
        LabelPrior(0.0, 1.0, "cauchy")
    with pytest.raises(ValueError, match="mean"):
        LabelPrior(0.0, 1.0, "normal")
