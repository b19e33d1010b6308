"""Fisher matrices and Cramer-Rao bounds against closed forms."""
import numpy as np
import pytest
import torch

from specvit.physics.fisher import ceiling_per_star, crlb, fisher_matrix, jacobian
from specvit.physics.labels import LOGG
from specvit.physics.noise import pixel_sigma
from specvit.physics.spectrum import SpectrumModel


class LinearModel(torch.nn.Module):
    """flux = 1 + labels @ A^T: its Jacobian is A for every star."""

    def __init__(self, a):
        super().__init__()
        self.a = torch.as_tensor(a)

    def forward(self, labels):
        return 1.0 + labels @ self.a.T


def test_jacobian_and_bounds_of_a_linear_gaussian_model():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 5))
    a[:, 2] = a[:, 1] + 0.1 * rng.normal(size=40)  # logg partly degenerate with M_H
    model = LinearModel(a)
    labels = torch.as_tensor(rng.normal(size=(3, 5)))
    flux, jac = jacobian(model, labels)
    assert torch.allclose(jac, torch.as_tensor(a).expand(3, -1, -1))
    sigma = torch.as_tensor(rng.uniform(0.5, 2.0, size=(3, 40)))
    fisher = fisher_matrix(jac, sigma)
    marginal, conditional = crlb(fisher)
    for i in range(3):
        f = a.T @ np.diag(sigma[i].numpy() ** -2) @ a
        assert fisher[i].numpy() == pytest.approx(f)
        assert marginal[i].item() == pytest.approx(np.linalg.inv(f)[LOGG, LOGG], rel=1e-9)
        assert conditional[i].item() == pytest.approx(1.0 / f[LOGG, LOGG], rel=1e-12)
    # not knowing the other labels can only hurt
    assert (marginal >= conditional).all()


def test_marginal_bound_does_not_depend_on_the_inversion_units():
    rng = np.random.default_rng(1)
    j = torch.as_tensor(rng.normal(size=(2, 30, 5)) * np.array([1e-4, 1, 1, 1, 1]))
    fisher = fisher_matrix(j, torch.ones(2, 30, dtype=torch.float64))
    a, _ = crlb(fisher)
    b, _ = crlb(fisher, scales=np.ones(5))
    assert torch.allclose(a, b, rtol=1e-8)


def test_ceiling_scales_with_noise_level_squared():
    labels = np.array([[4500.0, 2.0, -0.5, 0.1, 0.0], [5600.0, 4.2, 0.2, 0.0, 0.2]])
    one = ceiling_per_star(SpectrumModel(), labels, [20.0, 22.0])
    two = ceiling_per_star(SpectrumModel(), labels, [20.0, 22.0], noise_level=2.0)
    assert np.allclose(two["crlb_5d"], 4 * one["crlb_5d"])
    assert np.allclose(two["crlb_1d"], 4 * one["crlb_1d"])
    assert np.allclose(two["snr"], one["snr"] / 2)
    # fainter stars: larger bounds
    assert (one["crlb_5d"][1] > one["crlb_5d"][0]).all()


class LinearRVModel(torch.nn.Module):
    """flux = 1 + labels @ A^T + v b on a 40-pixel grid: its Jacobian is [A, b] for every star."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = torch.as_tensor(a), torch.as_tensor(b)
        self.wave = np.linspace(8000.0, 8100.0, a.shape[0])

    def forward(self, labels, rv_kms=None):
        flux = 1.0 + labels @ self.a.T
        return flux if rv_kms is None else flux + torch.as_tensor(rv_kms)[:, None] * self.b


def test_augmented_fisher_of_a_linear_model_is_the_closed_form():
    """Continuum and RV columns, the marginal CRLB with the nuisances unknown, and the labels' information
    with the nuisances integrated out under Gaussian priors, against dense closed forms: the
    marginal likelihood of y = A theta + B n + noise, n ~ N(0, D), is N(A theta, Sigma + B D B^T)."""
    from specvit.physics.fisher import BoundSpec, batch_bounds, nuisance_jacobian
    from specvit.physics.nuisances import NuisanceSet, legendre_basis

    rng = np.random.default_rng(2)
    a, b = 0.01 * rng.normal(size=(40, 5)), 0.02 * rng.normal(size=40)
    model = LinearRVModel(a, b)
    labels = torch.as_tensor(rng.normal(size=(3, 5)))
    flux, jac = nuisance_jacobian(model, labels, continuum_degree=1, rv=True)
    basis = legendre_basis(model.wave, 1)
    f = flux.numpy()
    for i in range(3):
        np.testing.assert_allclose(jac[i].numpy(), np.column_stack([a, f[i, :, None] * basis, b]), atol=1e-14)
    sets = (NuisanceSet(continuum_degree=1, rv=True, continuum_rms=0.03, rv_rms_kms=2.0),
            NuisanceSet(continuum_degree=0))
    spec = BoundSpec(nuisances=sets)
    out = batch_bounds(flux, jac, [21.0], spec, return_fisher=True)
    sigma = pixel_sigma(flux, 21.0).numpy()
    for i in range(3):
        w = np.diag(sigma[i] ** -2)
        for s in sets:
            j = jac[i].numpy()[:, spec.columns(s)]
            assert out[f"crlb_{s.dims()}"][0, i] == pytest.approx(np.linalg.inv(j.T @ w @ j)[LOGG, LOGG], rel=1e-8)
            nuis = j[:, 5:]
            cov = np.diag(sigma[i] ** 2) + nuis @ np.diag(s.prior_sd() ** 2) @ nuis.T
            expected = a.T @ np.linalg.inv(cov) @ a
            np.testing.assert_allclose(out[f"fisher_{s.dims()}"][0, i], expected, rtol=1e-7)
        j5 = jac[i].numpy()[:, :5]
        assert out["crlb_marginal"][0, i] == pytest.approx(np.linalg.inv(j5.T @ w @ j5)[LOGG, LOGG], rel=1e-8)
    # more unknowns, larger bounds; a prior gives back part of the information
    assert (out["crlb_5d+cont1+rv"] >= out["crlb_marginal"]).all()
    assert (np.linalg.inv(out["fisher_5d+cont1+rv"][0])[:, LOGG, LOGG] <= out["crlb_5d+cont1+rv"][0]).all()
