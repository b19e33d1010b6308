"""The ``template`` baseline: per-spectrum ML fit of all five labels with the forward model."""
import numpy as np
import pytest
import torch

from specvit.models.template import TemplateFitRegressor
from specvit.physics.fisher import ceiling_per_star, fisher_matrix, jacobian
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.noise import add_noise, pixel_sigma
from specvit.physics.nuisances import legendre_basis
from specvit.physics.spectrum import SpectrumModel, simulate
from specvit.training.factory import load_model

torch.set_num_threads(1)

# Six stars spanning the box: cool dwarf (TiO), cool giant, metal-poor giant, Sun-like, warm subgiant, warm giant.
STARS = np.array([[3850.0, 4.7, 0.5, 0.0, 0.2],
                  [4000.0, 1.4, -0.5, 0.3, -0.4],
                  [4800.0, 2.5, -2.2, 0.4, 0.3],
                  [5200.0, 4.4, 0.0, 0.0, 0.0],
                  [5800.0, 3.6, -1.2, 0.2, -0.6],
                  [5900.0, 1.2, 0.6, -0.2, 0.4]])


@pytest.fixture(scope="module")
def model():
    return SpectrumModel().double()


def fitted(x, **settings):
    m = TemplateFitRegressor(**settings)
    m.fit(x, {lab: np.zeros(len(x)) for lab in m.labels}, log=lambda s: None)
    return m


def test_noise_free_recovery(model):
    flux = simulate(STARS, model)
    m = fitted(flux, labels=LABEL_NAMES)
    pred = m.predict(flux, error=np.full_like(flux, 1e-3), log=None)
    assert set(pred) == set(LABEL_NAMES) and all(v.dtype == np.float64 for v in pred.values())
    np.testing.assert_allclose(pred["logg"], STARS[:, 1], atol=0.01)
    np.testing.assert_allclose(pred["Teff"], STARS[:, 0], atol=5.0)
    np.testing.assert_allclose(pred["M_H"], STARS[:, 2], atol=0.01)


def test_efficient_at_high_snr(model):
    """At mag 18 the log g scatter over noise draws matches the 5D marginal CRLB (ML is asymptotically
    efficient), with the given errors and with the IRLS noise estimate. Stars are away from the box edges
    and the metal-poor corner, where mag 18 is not yet asymptotic. One start (the box centre) keeps it quick."""
    space, n_draws = LabelSpace(), 12
    low, high = space.low.copy(), space.high
    low[2] = -1.5
    stars = low + np.random.default_rng(0).uniform(0.15, 0.85, (8, 5)) * (high - low)
    crlb = ceiling_per_star(model, stars, [18.0])["crlb_5d"][0]
    flux = simulate(stars, model)
    err = pixel_sigma(flux.astype(np.float64), 18.0).astype(np.float32)
    x = np.concatenate([add_noise(flux, err, 1.0, np.random.default_rng(100 + k)) for k in range(n_draws)])
    truth, var = np.tile(stars[:, 1], n_draws), np.tile(crlb, n_draws)
    m = fitted(x, n_starts=1)
    for error, tol in ((np.tile(err, (n_draws, 1)), 0.15), (None, 0.20)):
        d = m.predict(x, error=error, log=None)["logg"] - truth
        z_rms = np.sqrt(np.mean(d**2 / var))          # RMS scatter in units of sqrt(CRLB), per draw
        ratio = np.sqrt(np.mean(d**2) / np.mean(var))  # RMS scatter / RMS sqrt(CRLB)
        assert abs(z_rms - 1) < tol and abs(ratio - 1) < tol, (error is None, z_rms, ratio)


def test_efficient_at_high_snr_with_continuum_and_radial_velocity(model):
    """Spectra that carry a degree-2 multiplicative continuum error (coefficients N(0, 0.05)) and a radial
    velocity (N(0, 20) km/s): the fit with those nuisances reaches the nuisance-aware 5D CRLB of log g at
    mag 18 (the bound at the true labels and nuisances, everything unknown) within 15 %."""
    space, n_draws, degree = LabelSpace(), 12, 2
    low, high = space.low.copy(), space.high
    low[2] = -1.5
    rng = np.random.default_rng(0)
    stars = low + rng.uniform(0.15, 0.85, (8, 5)) * (high - low)
    coeffs, rv = rng.normal(0.0, 0.05, (8, degree + 1)), rng.normal(0.0, 20.0, 8)
    basis = legendre_basis(model.wave, degree)
    theta, v = torch.as_tensor(stars), torch.as_tensor(rv)
    f, jac = jacobian(model, theta, rv=True, rv_kms=v)
    factor = torch.as_tensor(1.0 + coeffs @ basis.T)
    full = torch.cat([jac[..., :5] * factor[..., None], f[..., None] * torch.as_tensor(basis),
                      jac[..., 5:] * factor[..., None]], dim=-1).detach()
    flux = (f * factor).detach().numpy()
    err = pixel_sigma(flux, 18.0)
    crlb = torch.linalg.inv(fisher_matrix(full, torch.as_tensor(err)))[:, 1, 1].numpy()
    x = np.concatenate([add_noise(flux.astype(np.float32), err.astype(np.float32), 1.0,
                                  np.random.default_rng(100 + k)) for k in range(n_draws)])
    truth, var = np.tile(stars[:, 1], n_draws), np.tile(crlb, n_draws)
    m = fitted(x, n_starts=1, nuisances={"continuum_degree": degree, "rv": True})
    out = m.fit_spectra(x, error=np.tile(err, (n_draws, 1)).astype(np.float32))
    d = out["labels"][:, 1] - truth
    z_rms, ratio = np.sqrt(np.mean(d**2 / var)), np.sqrt(np.mean(d**2) / np.mean(var))
    assert abs(z_rms - 1) < 0.15 and abs(ratio - 1) < 0.15, (z_rms, ratio)
    # the nuisances themselves are recovered (the radial velocity to a fraction of a km/s)
    assert np.abs(out["nuisances"][:, -1] - np.tile(rv, n_draws)).max() < 1.0
    assert np.abs(out["nuisances"][:, :3] - np.tile(coeffs, (n_draws, 1))).max() < 0.01
    # ... and the bound it reaches is the nuisance-aware one, well above the clean one at the same stars
    clean = ceiling_per_star(model, stars, [18.0])["crlb_5d"][0]
    assert np.mean(crlb) > 1.2 * np.mean(clean)


def test_stays_in_box_at_low_snr(model):
    space = LabelSpace()
    stars = space.sample(8, np.random.default_rng(3))
    flux = simulate(stars, model)
    err = pixel_sigma(flux.astype(np.float64), 23.0).astype(np.float32)
    x = add_noise(flux, err, 1.0, np.random.default_rng(4))
    m = fitted(x, labels=LABEL_NAMES, n_starts=2, max_iter=12)
    for error in (err, None):
        pred = np.stack([v for v in m.predict(x, error=error, log=None).values()], axis=1)
        assert np.isfinite(pred).all()
        assert (pred >= space.low).all() and (pred <= space.high).all()


def test_save_load_round_trip(tmp_path, model):
    flux = simulate(STARS[:2], model)
    m = fitted(flux, labels=("logg", "Teff"), n_starts=2, max_iter=3, seed=7, forward={"damping_scale": 1.1})
    before = m.predict(flux, log=None)
    loaded = load_model(m.save(tmp_path / "tpl"))
    assert isinstance(loaded, TemplateFitRegressor) and loaded.labels == ("logg", "Teff")
    assert loaded.settings() == m.settings() and loaded.n_features == flux.shape[1]
    after = loaded.predict(flux, log=None)
    for lab in before:
        np.testing.assert_array_equal(before[lab], after[lab])


def test_input_errors(model):
    m = TemplateFitRegressor()
    with pytest.raises(ValueError, match="wavelength grid"):
        m.fit(np.ones((3, 100), np.float32), {"logg": np.zeros(3)}, log=lambda s: None)
    with pytest.raises(ValueError, match="wavelength grid"):
        m.fit(np.ones((3, 4096), np.float32), {"logg": np.zeros(3)}, log=lambda s: None, wave=np.arange(4096.0))
    m.fit(np.ones((3, 4096), np.float32), {"logg": np.zeros(3)}, log=lambda s: None)
    with pytest.raises(ValueError, match="features"):
        m.predict(np.ones((2, 100), np.float32))
    with pytest.raises(ValueError, match="error"):
        m.predict(np.ones((2, 4096), np.float32), error=np.zeros((2, 4096), np.float32))
    with pytest.raises(ValueError, match="cannot predict"):
        TemplateFitRegressor(labels=("vsini",))
    with pytest.raises(ValueError, match="ForwardParams"):
        TemplateFitRegressor(forward={"no_such_knob": 1.0})
