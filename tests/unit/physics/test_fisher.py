"""Fisher matrices and Cramer-Rao bounds against closed forms."""
import numpy as np
import pytest
import torch

from specvit.physics.fisher import ceiling_per_star, crlb, fisher_matrix, jacobian
from specvit.physics.labels import LOGG
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
