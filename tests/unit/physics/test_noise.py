"""Magnitude -> noise model and the paper's SNR definition."""
import numpy as np
import pytest
import torch

from specvit.physics.noise import BACKGROUND_COUNTS, PAPER_SNR, add_noise, pixel_sigma, snr


@pytest.mark.parametrize("mag,paper", sorted(PAPER_SNR.items()))
def test_flat_spectrum_reproduces_the_paper_snr_table(mag, paper):
    flux = np.ones((1, 4096))
    assert snr(flux, pixel_sigma(flux, mag))[0] == pytest.approx(paper, rel=0.015)


def test_pixel_sigma_closed_form_and_noise_level():
    flux = np.array([[0.2, 1.0, 1.3]])
    mag = 21.0
    counts = 1514.0 * 10 ** (-0.4 * (mag - 20.0))
    expected = np.sqrt(flux * counts + BACKGROUND_COUNTS) / counts
    assert np.allclose(pixel_sigma(flux, mag), expected)
    assert np.allclose(pixel_sigma(flux, mag, noise_level=2.0), 2 * expected)
    # line cores (low flux) have less photon noise than the continuum
    assert pixel_sigma(flux, 18.0)[0, 0] < pixel_sigma(flux, 18.0)[0, 1]


def test_per_star_magnitudes_broadcast_and_torch_matches_numpy():
    flux = np.random.default_rng(0).uniform(0.3, 1.2, size=(3, 50))
    mags = np.array([18.0, 20.0, 22.5])
    sig = pixel_sigma(flux, mags)
    for i, m in enumerate(mags):
        assert np.allclose(sig[i], pixel_sigma(flux[i], m))
    sig_t = pixel_sigma(torch.as_tensor(flux), torch.as_tensor(mags))
    assert np.allclose(sig_t.numpy(), sig)


def test_add_noise_has_the_right_scatter_and_is_reproducible():
    flux = np.ones((2000, 100), dtype=np.float32)
    error = np.full_like(flux, 0.1)
    a = add_noise(flux, error, 2.0, np.random.default_rng(3))
    b = add_noise(flux, error, 2.0, np.random.default_rng(3))
    assert np.array_equal(a, b) and a.dtype == np.float32
    assert (a - flux).std() == pytest.approx(0.2, rel=0.01)
    t = add_noise(torch.ones(500, 100), torch.full((500, 100), 0.1), 0.5, torch.Generator().manual_seed(1))
    assert float((t - 1).std()) == pytest.approx(0.05, rel=0.02)
