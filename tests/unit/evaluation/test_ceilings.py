"""Ceiling tables and the prior-aware (Bayes) bound against known answers."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import truncnorm

from specvit.data.writer import write_split
from specvit.evaluation.ceilings import (
    COLUMNS,
    CeilingSettings,
    ceiling_for_file,
    ceiling_table,
    ceiling_unavailable,
    no_ceiling_table,
)
from specvit.physics.bayes import _truncnorm_mean, bayes_bound, bayes_risk
from specvit.physics.fisher import jacobian
from specvit.physics.labels import LABEL_NAMES, LabelPrior, LabelSpace
from specvit.physics.noise import pixel_sigma
from specvit.physics.nuisances import NuisanceSet, legendre_basis
from specvit.physics.spectrum import SpectrumModel

torch.set_num_threads(1)
A, B = 1.0, 5.0
UNIFORM = LabelPrior(A, B)
VAR_U = (B - A) ** 2 / 12


def test_truncated_normal_mean_matches_scipy_and_is_stable_in_the_tails():
    for a, b in [(-1, 1), (0.5, 3), (30, 31), (-31, -30), (-40, 0.1), (-0.1, 40), (-3, -2), (100, 200)]:
        assert _truncnorm_mean(a, b) == pytest.approx(truncnorm.mean(a, b), rel=1e-9, abs=1e-12)


def test_bayes_bound_limits_crlb_and_prior_variance():
    assert bayes_risk(1e-4, UNIFORM) == pytest.approx(1e-4, rel=1e-2)  # s -> 0: the CRLB
    assert bayes_risk(1e8, UNIFORM) == pytest.approx(VAR_U, rel=1e-4)  # s -> inf: the prior variance
    s2 = np.geomspace(1e-4, 1e4, 30)
    assert (bayes_risk(s2, UNIFORM) <= np.minimum(s2, VAR_U) * (1 + 1e-6)).all()


def test_bayes_bound_matches_monte_carlo_of_the_posterior_mean():
    s, n = 1.0, 40_000
    rng = np.random.default_rng(0)
    theta = rng.uniform(A, B, n)
    t = theta + s * rng.normal(size=n)
    grid = np.linspace(A, B, 1001)
    post = np.empty(n)
    for i in range(0, n, 4000):  # posterior mean by dense integration on a grid
        w = np.exp(-0.5 * ((t[i:i + 4000, None] - grid) / s) ** 2)
        post[i:i + 4000] = (w @ grid) / w.sum(axis=1)
    mse_bayes = np.mean((post - theta) ** 2)
    bound = bayes_risk(s * s, UNIFORM)
    assert mse_bayes == pytest.approx(bound, rel=0.03)
    assert np.mean(bayes_bound(theta, s * s, UNIFORM)) == pytest.approx(mse_bayes, rel=0.03)
    # an ordinary biased estimator that knows the range does worse than the bound, better than the CRLB
    mse_clip = np.mean((np.clip(t, A, B) - theta) ** 2)
    assert bound * 0.97 <= mse_bayes < mse_clip < s * s


def test_bayes_bound_with_a_gaussian_prior_is_the_closed_form():
    mu, sp, s2 = 3.0, 0.4, 0.09
    prior = LabelPrior(mu - 40 * sp, mu + 40 * sp, "normal", mu, sp)
    w = sp ** 2 / (s2 + sp ** 2)
    theta = np.array([2.0, 3.0, 3.7])
    assert bayes_bound(theta, s2, prior) == pytest.approx((1 - w) ** 2 * (theta - mu) ** 2 + w ** 2 * s2, rel=1e-8)
    x, wq = np.polynomial.hermite.hermgauss(40)  # average over theta ~ N(mu, sp^2)
    average = bayes_bound(mu + np.sqrt(2) * sp * x, s2, prior) @ wq / np.sqrt(np.pi)
    assert average == pytest.approx(s2 * sp ** 2 / (s2 + sp ** 2), rel=1e-8)


@pytest.fixture(scope="module")
def stars():
    space = LabelSpace()
    return space, space.sample_quasi_random(6, seed=3)


def test_ceiling_table_on_synthetic_stars(stars):
    space, labels = stars
    table = ceiling_table(SpectrumModel(), labels, [18.0, 22.5], settings=CeilingSettings(space))
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 * 3 * 2
    assert set(table["kind"]) == {"median", "mse", "bayes"} and set(table["dims"]) == {"5d", "1d"}
    r2 = table.set_index(["mag", "kind", "dims"])["r2"]
    for kind in ("median", "mse", "bayes"):
        for dims in ("5d", "1d"):
            assert r2[18.0, kind, dims] > r2[22.5, kind, dims]  # fainter: less information
        for mag in (18.0, 22.5):
            assert r2[mag, kind, "1d"] >= r2[mag, kind, "5d"]  # knowing the other labels helps
    for dims in ("5d", "1d"):
        assert r2[22.5, "bayes", dims] >= r2[22.5, "mse", dims]
        at18 = [r2[18.0, kind, dims] for kind in ("median", "mse", "bayes")]
        assert max(at18) - min(at18) < 0.02
    assert r2[22.5, "bayes", "5d"] > 0  # the prior keeps the bound sensible where the CRLB fails
    med = table[table["kind"] == "median"]
    assert ((med["r2_q10"] <= med["r2"]) & (med["r2"] <= med["r2_q90"])).all()
    assert (table["r2_q10"] <= table["r2_q90"]).all()
    assert table.loc[table["mag"] == 18.0, "snr_median"].iloc[0] == pytest.approx(87, rel=0.05)


def test_user_file_with_and_without_a_jacobian(stars, tmp_path):
    space, labels = stars
    model = SpectrumModel().double()
    flux, jac = jacobian(model, torch.as_tensor(labels))
    flux, jac = flux.detach().numpy(), jac.detach().numpy()
    common = dict(wave=model.wave, flux=flux.astype(np.float32), error=pixel_sigma(flux, 21.0).astype(np.float32),
                  labels={x: labels[:, i] for i, x in enumerate(LABEL_NAMES)}, attrs={"source": "hdf5"})
    with_jac, without = tmp_path / "with.h5", tmp_path / "without.h5"
    write_split(with_jac, **common, jacobian={x: jac[..., i].astype(np.float32) for i, x in enumerate(LABEL_NAMES)})
    write_split(without, **common)

    mags = [18.0, 22.5]
    expected = ceiling_table(SpectrumModel(), labels, mags, settings=CeilingSettings(space))
    from_file = ceiling_table(None, None, mags, test_path=with_jac, settings=CeilingSettings(space))
    assert ceiling_unavailable(None, with_jac) is None
    assert from_file[["mag", "kind", "dims"]].equals(expected[["mag", "kind", "dims"]])
    for col in ("snr_median", "r2", "r2_q10", "r2_q90"):
        assert from_file[col].to_numpy() == pytest.approx(expected[col].to_numpy(), rel=1e-4, abs=1e-4)

    assert ceiling_table(None, None, mags, test_path=without, settings=CeilingSettings(space)) is None
    reason = ceiling_unavailable(None, without)
    assert "no information ceiling" in reason and "jacobian" in reason
    note = no_ceiling_table(reason, mags)
    assert list(note.columns) == COLUMNS + ["note"] and len(note) == len(expected)
    assert note["r2"].isna().all() and (note["note"] == reason).all()
    # the workflow's entry point: always a table, from the file's Jacobian, the model, or a note
    settings = CeilingSettings(space)
    assert ceiling_for_file(with_jac, mags, settings)["r2"].to_numpy() == pytest.approx(from_file["r2"].to_numpy())
    assert ceiling_for_file(without, mags, settings).equals(note)
    by_model = ceiling_for_file(without, mags, settings, synthetic=True)  # labels read back as float32
    assert by_model["r2"].to_numpy() == pytest.approx(expected["r2"].to_numpy(), rel=1e-4, abs=1e-4)


def test_nuisance_sets_add_row_sets_that_marginalise_more(stars):
    space, labels = stars
    sets = (NuisanceSet(continuum_degree=0), NuisanceSet(continuum_degree=2, rv=True))
    table = ceiling_table(SpectrumModel(), labels, [18.0, 22.0], settings=CeilingSettings(space, nuisances=sets))
    assert list(table.columns) == COLUMNS and len(table) == 2 * 3 * 4
    assert list(dict.fromkeys(table["dims"])) == ["5d", "1d", "5d+cont0", "5d+cont2+rv"]
    clean = ceiling_table(SpectrumModel(), labels, [18.0, 22.0], settings=CeilingSettings(space))
    pd.testing.assert_frame_equal(table[table["dims"].isin(["5d", "1d"])].reset_index(drop=True), clean)
    r2 = table.set_index(["mag", "kind", "dims"])["r2"]
    for mag in (18.0, 22.0):
        for kind in ("median", "mse"):  # nested sets of unknowns: the bound can only grow
            assert r2[mag, kind, "5d+cont2+rv"] <= r2[mag, kind, "5d+cont0"] <= r2[mag, kind, "5d"]
        # the Bayes rows integrate the nuisances out under their priors: less information than the clean
        # rows (up to the importance sampling's noise), more than the unconstrained nuisances give
        assert r2[mag, "bayes", "5d+cont2+rv"] <= r2[mag, "bayes", "5d"] + 0.01
        assert r2[mag, "bayes", "5d+cont2+rv"] >= r2[mag, "mse", "5d+cont2+rv"] - 0.01
    assert r2[22.0, "median", "5d+cont2+rv"] < r2[22.0, "median", "5d"] - 0.02  # it matters at low SNR


def test_user_file_rows_are_named_for_what_they_marginalise(stars, tmp_path):
    """A file whose jacobian has three labels: its marginal rows are '3d' (the three labels unknown), a
    continuum set works from the flux alone, and a radial-velocity set, which needs the forward model,
    gets NaN rows with a note."""
    space, labels = stars
    model = SpectrumModel().double()
    flux, jac = jacobian(model, torch.as_tensor(labels))
    flux, jac = flux.detach().numpy(), jac.detach().numpy()
    names = ["Teff", "logg", "M_H"]
    path = tmp_path / "three.h5"
    write_split(path, model.wave, flux.astype(np.float32), pixel_sigma(flux, 21.0).astype(np.float32),
                {x: labels[:, i] for i, x in enumerate(LABEL_NAMES)}, {"source": "hdf5"},
                jacobian={x: jac[..., LABEL_NAMES.index(x)].astype(np.float32) for x in names})
    sets = (NuisanceSet(continuum_degree=1), NuisanceSet(continuum_degree=0, rv=True))
    table = ceiling_for_file(path, [20.0], CeilingSettings(space, nuisances=sets))
    assert list(dict.fromkeys(table["dims"])) == ["3d", "1d", "3d+cont1", "3d+cont0+rv"]
    rv_rows = table[table["dims"] == "3d+cont0+rv"]
    assert rv_rows["r2"].isna().all() and rv_rows["note"].str.contains("radial velocity").all()
    assert (table.loc[table["dims"] != "3d+cont0+rv", "note"] == "").all()
    f32, j32 = flux.astype(np.float32).astype(np.float64), jac.astype(np.float32).astype(np.float64)
    sigma = pixel_sigma(f32, 20.0)
    cont = f32[:, :, None] * legendre_basis(model.wave, 1)
    expected = {}
    for dims, extra in (("3d", 0), ("3d+cont1", 2)):
        cols = [np.column_stack([j32[i][:, [0, 1, 2]], cont[i][:, :extra]]) for i in range(len(labels))]
        bounds = np.array([np.linalg.inv(c.T @ np.diag(sigma[i] ** -2) @ c)[1, 1] for i, c in enumerate(cols)])
        expected[dims] = np.median(1 - bounds / space.priors["logg"].variance())
    med = table[table["kind"] == "median"].set_index("dims")["r2"]
    assert med["3d"] == pytest.approx(expected["3d"], rel=1e-6)
    assert med["3d+cont1"] == pytest.approx(expected["3d+cont1"], rel=1e-6)


# ----------------------------------------------------------------------------- 5D box prior


def _box_case(n=120, seed=0):
    from specvit.physics.labels import LabelSpace

    space = LabelSpace()
    theta = space.sample(n, np.random.default_rng(seed))
    return space, theta


@pytest.mark.parametrize("s_logg", [0.05, 0.5, 4.0])
def test_box_bound_with_independent_labels_equals_the_log_g_bound(s_logg):
    """With a diagonal Fisher matrix the other labels carry nothing about log g: the 5D box
    posterior mean of log g is the 1D one, so both bounds agree (up to Monte Carlo error)."""
    from specvit.physics.bayes import bayes_bound, bayes_bound_box

    space, theta = _box_case()
    sd = np.array([300.0, s_logg, 0.5, 0.2, 0.3])
    fisher = np.broadcast_to(np.diag(sd**-2.0), (len(theta), 5, 5))
    box = bayes_bound_box(theta, fisher, space.low, space.high)
    one = bayes_bound(theta[:, 1], np.full(len(theta), s_logg**2), space.priors["logg"])
    assert box.mean() == pytest.approx(one.mean(), rel=0.06)


def test_box_bound_of_stacked_fisher_matrices_uses_common_random_numbers():
    """fisher [M, N, 5, 5] (one set per magnitude): each slice's bound is that slice's alone, drawn from
    the same random numbers, so the bounds differ by the Fisher matrices, not by sampling noise."""
    from specvit.physics.bayes import bayes_bound_box

    space, theta = _box_case()
    base = np.diag(np.array([300.0, 0.5, 0.5, 0.2, 0.3]) ** -2.0)
    stacked = np.stack([np.broadcast_to(base * s, (len(theta), 5, 5)) for s in (0.25, 1.0, 4.0)])
    both = bayes_bound_box(theta, stacked, space.low, space.high)
    assert both.shape == (3, len(theta))
    for m in range(3):
        assert np.array_equal(both[m], bayes_bound_box(theta, stacked[m], space.low, space.high))
    assert both[0].mean() > both[1].mean() > both[2].mean()  # more information, a smaller bound


def test_box_bound_uses_the_other_labels_ranges():
    """log g degenerate with [M/H] (correlation 0.95): the bounded [M/H] range breaks part of the
    degeneracy, so the 5D box bound is well below the log-g-only bound, and below the CRLB."""
    from specvit.physics.bayes import bayes_bound, bayes_bound_box

    space, theta = _box_case()
    cov = np.diag([300.0, 1.0, 1.0, 0.2, 0.3]) ** 2
    cov[1, 2] = cov[2, 1] = 0.95
    fisher = np.broadcast_to(np.linalg.inv(cov), (len(theta), 5, 5))
    box = bayes_bound_box(theta, fisher, space.low, space.high)
    one = bayes_bound(theta[:, 1], np.full(len(theta), 1.0), space.priors["logg"])
    assert box.mean() < 0.8 * one.mean()
    assert 0 < box.mean() < 1.0  # the CRLB is 1.0 here
    again = bayes_bound_box(theta, fisher, space.low, space.high)
    assert np.array_equal(box, again)  # seeded
