"""Nuisances: the Legendre continuum basis, nuisance sets, and the forward model's radial velocity."""
import numpy as np
import pytest
import torch
from torch.func import jvp

from specvit.physics.nuisances import (
    C_KMS,
    NuisanceSet,
    apply_continuum,
    continuum_factor,
    describe_dims,
    legendre_basis,
    legendre_x,
)
from specvit.physics.spectrum import SpectrumModel, pfs_red_wave, simulate

STARS = np.array([[3900.0, 1.3, 0.3, 0.2, 0.1], [5300.0, 4.4, 0.0, 0.0, 0.0], [5900.0, 3.5, -2.1, 0.4, 0.3]])


@pytest.fixture(scope="module")
def model64():
    return SpectrumModel(dtype=torch.float64)


def test_legendre_basis_is_numpys_legendre_series_on_the_mapped_grid():
    wave = np.geomspace(7000.0, 9000.0, 501)  # not uniform: x follows the wavelength, not the pixel index
    x = legendre_x(wave)
    assert x[0] == -1.0 and x[-1] == 1.0
    assert np.allclose(x, 2 * (wave - 7000.0) / 2000.0 - 1)
    basis = legendre_basis(wave, 3)
    assert basis.shape == (501, 4)
    for k in range(4):
        np.testing.assert_allclose(basis[:, k], np.polynomial.legendre.Legendre.basis(k)(x), atol=1e-14)
    assert np.all(basis[:, 0] == 1.0)  # P_0: the flux scale
    with pytest.raises(ValueError, match="integer >= 0"):
        legendre_basis(wave, -1)


def test_apply_continuum_numpy_and_torch():
    wave = pfs_red_wave()
    basis = legendre_basis(wave, 2)
    coeffs = np.array([[0.0, 0.0, 0.0], [0.1, -0.05, 0.02]])
    flux = np.full((2, wave.size), 2.0)
    out = apply_continuum(flux, coeffs, basis)
    np.testing.assert_array_equal(out[0], flux[0])
    x = legendre_x(wave)
    np.testing.assert_allclose(out[1], 2.0 * (1 + 0.1 - 0.05 * x + 0.02 * 0.5 * (3 * x**2 - 1)), rtol=1e-13)
    factor_t = continuum_factor(torch.as_tensor(coeffs), torch.as_tensor(basis))
    np.testing.assert_allclose(factor_t.numpy(), out / flux, rtol=1e-14)


def test_nuisance_sets_name_their_dims_parameters_and_priors():
    s = NuisanceSet(continuum_degree=2, continuum_rms=0.02, rv=True, rv_rms_kms=5.0)
    assert s.dims() == "5d+cont2+rv" and s.dims("3d") == "3d+cont2+rv"
    assert s.names == ["cont_0", "cont_1", "cont_2", "rv"]
    np.testing.assert_array_equal(s.prior_sd(), [0.02, 0.02, 0.02, 5.0])
    assert NuisanceSet(continuum_degree=0).dims() == "5d+cont0" and NuisanceSet(rv=True).names == ["rv"]
    assert NuisanceSet.from_config({"continuum_degree": 1}) == NuisanceSet(continuum_degree=1)
    assert "flux scale" in NuisanceSet(continuum_degree=0).describe()
    assert describe_dims("5d+cont2+rv") == "5D (all labels unknown) + continuum deg 2 + RV"
    assert describe_dims("1d").startswith("log g alone")
    with pytest.raises(ValueError, match="needs a continuum"):
        NuisanceSet()
    with pytest.raises(ValueError, match="continuum_degree"):
        NuisanceSet(continuum_degree=1.5)
    with pytest.raises(ValueError, match="rv_rms_kms"):
        NuisanceSet(rv=True, rv_rms_kms=0.0)


def test_radial_velocity_shifts_the_spectrum(model64):
    labels = torch.as_tensor(STARS)
    rest = model64(labels)
    assert torch.allclose(model64(labels, 0.0), rest, rtol=0, atol=1e-11)
    v = 40.0
    moved = model64(labels, torch.full((3,), v, dtype=torch.float64)).numpy()
    # the same stars at rest, observed on the grid of the rest wavelengths lambda / D (the LSF, which
    # acts in the observed frame, then differs by a part in 1e4): the same spectrum
    doppler = np.sqrt((1 + v / C_KMS) / (1 - v / C_KMS))
    on_rest_grid = SpectrumModel(wave=model64.wave / doppler, dtype=torch.float64)(labels).numpy()
    assert np.abs(moved - on_rest_grid).max() < 1e-3 < 0.1 < np.abs(moved - rest.numpy()).max()
    # per star: a star at rest in the same batch is unchanged
    mixed = model64(labels, torch.tensor([0.0, v, 0.0], dtype=torch.float64))
    assert torch.allclose(mixed[0], rest[0], atol=1e-11) and torch.allclose(mixed[1], torch.as_tensor(moved[1]))
    # simulate() passes the velocities through (float32)
    np.testing.assert_allclose(simulate(STARS, SpectrumModel(), rv_kms=np.full(3, v)), moved, atol=2e-5)
    with pytest.raises(ValueError, match="within"):
        model64(labels, 250.0)


def test_radial_velocity_derivative_is_autodiff_and_matches_finite_differences(model64):
    labels = torch.as_tensor(STARS)
    v = torch.tensor([-60.0, 0.0, 25.0], dtype=torch.float64)
    _, dv = jvp(lambda r: model64(labels, r), (v,), (torch.ones_like(v),))
    for h in (0.1, 0.01):
        fd = (model64(labels, v + h) - model64(labels, v - h)) / (2 * h)
        rel = torch.linalg.vector_norm(dv - fd, dim=1) / torch.linalg.vector_norm(fd, dim=1)
        assert rel.max() < 1e-4, rel


def test_config_nuisance_sets_are_checked_before_any_job():
    from specvit.physics.nuisances import nuisance_sets
    from specvit.pipeline.config import load_config, prepare
    from specvit.pipeline.errors import ConfigError

    assert nuisance_sets([{"continuum_degree": 2, "rv": True}]) == (NuisanceSet(continuum_degree=2, rv=True),)
    with pytest.raises(ValueError, match=r"'ceiling.nuisances\[1\]' has the same dims '5d\+cont1'"):
        nuisance_sets([{"continuum_degree": 1}, {"continuum_degree": 1, "continuum_rms": 0.2}])
    with pytest.raises(ConfigError, match=r"config key 'ceiling.nuisances\[0\]': a nuisance set needs a continuum"):
        prepare(load_config(overrides={"ceiling": {"nuisances": [{"rv": False}]}}))
    with pytest.raises(ConfigError, match=r"ceiling.nuisances\[0\].continuum_rms"):
        prepare(load_config(overrides={"ceiling": {"nuisances": [{"continuum_degree": 0, "continuum_rms": -1}]}}))
