"""Domain-shift transforms: identity at severity 0, valid files in the data contract, and each
shift doing what it claims, checked against independent computations."""
import numpy as np
import pytest
import torch

from specvit.data.contract import DataContractError, read_arrays, read_labels, validate_file
from specvit.data.simulate import generate_split
from specvit.data.writer import write_split
from specvit.physics.spectrum import SpectrumModel
from specvit.studies.shifts import (
    C_KMS,
    SHIFTS,
    ShiftSettings,
    apply_shift,
    lsf_kernel,
    read_spectra,
    regenerate,
    shift_file,
)

SEVERITY = {"rv": 100.0, "lsf": -1000.0, "continuum": 0.05, "sky": 5.0, "loggf": 0.2}


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("shifts") / "test.h5"
    generate_split(path, n=6, seed=3, chunk_size=6, split_name="test", progress=False)
    return path


@pytest.mark.parametrize("shift", SHIFTS)
def test_identity_at_severity_zero(test_file, shift):
    s = read_spectra(test_file)
    out = apply_shift(s, shift, 0.0, seed=1)
    np.testing.assert_array_equal(out.flux, s.flux)
    np.testing.assert_array_equal(out.error, s.error)


@pytest.mark.parametrize("shift", SHIFTS)
def test_shifted_file_is_valid_and_changed(test_file, tmp_path, shift):
    dst = shift_file(test_file, tmp_path / f"{shift}.h5", shift, SEVERITY[shift], seed=5)
    info = validate_file(dst)
    flux0, _ = read_arrays(test_file)
    flux, error = read_arrays(dst)
    assert info.n == flux0.shape[0] and info.n_pixels == flux0.shape[1]
    assert np.abs(flux - flux0).max() > 1e-3
    assert np.all(error > 0)
    for k, v in read_labels(test_file).items():
        np.testing.assert_array_equal(read_labels(dst)[k], v)
    assert info.attrs["shift"] == shift and info.attrs["shift_severity"] == SEVERITY[shift]
    # the same seed gives the same file
    again = shift_file(test_file, tmp_path / f"{shift}_again.h5", shift, SEVERITY[shift], seed=5)
    np.testing.assert_array_equal(read_arrays(again)[0], flux)


def test_lsf_kernel_matches_the_forward_model_at_its_resolution():
    model = SpectrumModel()
    ours = lsf_kernel(model.wave, model.params.pre_broadening_fwhm, 5000.0)
    np.testing.assert_allclose(ours, model.lsf_kernel.numpy(), rtol=1e-5, atol=1e-7)


def test_regeneration_without_perturbation_reproduces_the_file(test_file):
    s = read_spectra(test_file)
    out = regenerate(s)
    np.testing.assert_allclose(out.flux, s.flux, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(out.error, s.error, rtol=2e-5)


def test_lower_resolution_makes_lines_shallower(test_file):
    s = read_spectra(test_file)
    ca = np.abs(s.wave - 8542.09).argmin()
    low = apply_shift(s, "lsf", -1000.0, seed=0)
    high = apply_shift(s, "lsf", 1500.0, seed=0)
    assert np.all(low.flux[:, ca] > s.flux[:, ca]) and np.all(high.flux[:, ca] < s.flux[:, ca])


def test_rv_shift_matches_the_model_evaluated_at_rest_wavelengths(test_file):
    """Observed flux at lambda = rest-frame flux at lambda / (1 + z): evaluate the forward model
    directly on the blue-shifted grid (its median normalisation over that grid differs a little)."""
    s = read_spectra(test_file)
    v = 80.0
    out = apply_shift(s, "rv", v, seed=0)
    doppler = np.sqrt((1 + v / C_KMS) / (1 - v / C_KMS))
    labels = np.stack([read_labels(test_file)[k] for k in ("Teff", "logg", "M_H", "a_M", "C_M")], axis=1)
    model = SpectrumModel(wave=s.wave / doppler)
    with torch.no_grad():
        direct = model(torch.as_tensor(labels, dtype=torch.float32)).numpy()
    inner = slice(20, -20)  # the interpolation holds the edge value beyond the grid
    ratio = np.median(out.flux[:, inner] / direct[:, inner], axis=1, keepdims=True)
    resid = out.flux[:, inner] / ratio - direct[:, inner]
    unshifted = s.flux[:, inner] / ratio - direct[:, inner]
    assert np.abs(resid).max() < 0.01            # cubic interpolation of lines ~3.5 px wide
    assert np.abs(resid).mean() < 0.1 * np.abs(unshifted).mean()


def test_continuum_error_is_a_smooth_factor_of_the_given_rms(test_file):
    s = read_spectra(test_file)
    out = apply_shift(s, "continuum", 0.04, seed=2, settings=ShiftSettings(continuum_degree=2))
    factor = out.flux / s.flux
    np.testing.assert_allclose(out.error / s.error, factor, rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(np.mean((factor - 1) ** 2, axis=1)), 0.04, rtol=1e-3)
    x = np.linspace(-1, 1, s.wave.size)
    for row in factor:  # a degree-2 polynomial in x, exactly
        fit = np.polynomial.legendre.Legendre.fit(x, row, 2)
        assert np.abs(fit(x) - row).max() < 1e-5


def test_sky_spikes_sit_at_the_same_wavelengths_with_sigma_scaled_amplitudes(test_file):
    s = read_spectra(test_file)
    out = apply_shift(s, "sky", 4.0, seed=9, settings=ShiftSettings(sky_lines=30))
    diff = out.flux - s.flux
    np.testing.assert_array_equal(out.error, s.error)
    touched = np.abs(diff) > 1e-3 * s.error
    assert (touched.mean(axis=0) > 0).mean() < 0.5          # spikes, not a broad change
    peaks = np.flatnonzero(np.abs(diff).max(axis=0) > 0.5 * np.abs(diff).max())
    assert peaks.size > 0
    ratio = diff / s.error                                  # amplitude x N(0, 1) at the spike centres
    centres = [i for i in range(1, s.wave.size - 1)
               if np.all(np.abs(ratio[:, i]) >= np.abs(ratio[:, i - 1])) and
               np.all(np.abs(ratio[:, i]) >= np.abs(ratio[:, i + 1])) and np.abs(ratio[:, i]).max() > 0.3]
    assert 5 <= len(centres) <= 30
    assert 2.0 < ratio[:, centres].std() < 6.0


def test_loggf_perturbation_is_reproducible_and_seeded(test_file):
    s = read_spectra(test_file)
    a = apply_shift(s, "loggf", 0.15, seed=1)
    b = apply_shift(s, "loggf", 0.15, seed=1)
    c = apply_shift(s, "loggf", 0.15, seed=2)
    np.testing.assert_array_equal(a.flux, b.flux)
    assert np.abs(a.flux - c.flux).max() > 1e-3
    # a 0.15 dex strength change moves line depths by a few per cent, not the continuum level
    assert 0.005 < np.abs(a.flux - s.flux).max() < 0.5
    np.testing.assert_allclose(np.mean(a.flux, axis=1), 1.0, atol=1e-4)  # still normalised to mean 1


def test_bad_input(test_file, tmp_path):
    s = read_spectra(test_file)
    with pytest.raises(ValueError, match="unknown shift 'doppler'"):
        apply_shift(s, "doppler", 1.0, seed=0)
    with pytest.raises(ValueError, match="shift 'continuum': severity must be >= 0"):
        apply_shift(s, "continuum", -0.1, seed=0)
    with pytest.raises(ValueError, match="R = 400"):
        apply_shift(s, "lsf", -4600.0, seed=0)
    # a user file with log g only cannot be regenerated by the forward model
    user = tmp_path / "user.h5"
    write_split(user, s.wave, s.flux, s.error, {"logg": s.labels["logg"]}, {"source": "user"})
    with pytest.raises(DataContractError, match=r"needs the labels .* lacks \['Teff', 'M_H', 'a_M', 'C_M', 'mag'\]"):
        shift_file(user, tmp_path / "out.h5", "loggf", 0.1, seed=0)
    assert not (tmp_path / "out.h5").exists()
    # but the other shifts apply to any file in the contract
    validate_file(shift_file(user, tmp_path / "rv.h5", "rv", 30.0, seed=0))


def test_star_seed_changes_per_star_draws_but_not_shared_systematics(test_file):
    s = read_spectra(test_file)
    a = apply_shift(s, "sky", 5.0, seed=4, star_seed=1)
    b = apply_shift(s, "sky", 5.0, seed=4, star_seed=2)
    peak_a, peak_b = np.abs(a.flux - s.flux).max(axis=0), np.abs(b.flux - s.flux).max(axis=0)
    assert np.all(peak_b[peak_a > 0.05 * peak_a.max()] > 1e-4 * peak_b.max())   # the same sky lines
    assert np.all(peak_a[peak_b > 0.05 * peak_b.max()] > 1e-4 * peak_a.max())
    assert np.abs(a.flux - b.flux).max() > 1e-3               # other amplitudes
    c = apply_shift(s, "continuum", 0.05, seed=4, star_seed=1)
    d = apply_shift(s, "continuum", 0.05, seed=9, star_seed=1)
    np.testing.assert_array_equal(c.flux, d.flux)


def test_the_config_schema_knows_exactly_the_shifts():
    """The workflow takes the shift names from the config (the schema rejects others)."""
    import yaml

    from conftest import REPO

    schema = yaml.safe_load((REPO / "config" / "schema" / "config.schema.yaml").read_text())
    severities = schema["properties"]["domain_shift"]["properties"]["severities"]
    assert tuple(severities["properties"]) == SHIFTS and severities["additionalProperties"] is False
