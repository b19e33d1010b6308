"""Synthetic splits: contract, reproducibility, noise consistent with magnitudes."""
import hashlib

import numpy as np
import pytest

from specvit.data.contract import read_arrays, read_labels, read_wave, validate_file
from specvit.data.simulate import StarDistribution, generate_split
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.noise import pixel_sigma


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "train.h5"
    generate_split(path, n=70, seed=11, stars=StarDistribution(mag_range=(20.5, 22.5)), chunk_size=32, progress=False)
    return path


def test_generated_split_follows_the_contract(split):
    info = validate_file(split)
    assert info.n == 70 and info.n_pixels == 4096
    assert info.label_names == LABEL_NAMES + ("mag",)
    assert info.attrs["source"] == "synthetic" and info.attrs["seed"] == 11
    assert "forward_strength_offset" in info.attrs and "label_prior_logg" in info.attrs


def test_labels_in_range_and_error_matches_each_star_magnitude(split):
    labels = read_labels(split)
    space = LabelSpace()
    for i, name in enumerate(LABEL_NAMES):
        assert space.low[i] <= labels[name].min() and labels[name].max() <= space.high[i]
    assert 20.5 <= labels["mag"].min() and labels["mag"].max() <= 22.5
    flux, error = read_arrays(split)
    expected = pixel_sigma(flux.astype(np.float64), labels["mag"].astype(np.float64))
    assert np.allclose(error, expected, rtol=1e-5)


def test_same_seed_gives_byte_identical_files(split, tmp_path):
    again = tmp_path / "train.h5"
    generate_split(again, n=70, seed=11, stars=StarDistribution(mag_range=(20.5, 22.5)), chunk_size=32, progress=False)
    assert _sha(again) == _sha(split)
    other = tmp_path / "other.h5"
    generate_split(other, n=70, seed=12, stars=StarDistribution(mag_range=(20.5, 22.5)), chunk_size=32, progress=False)
    assert not np.array_equal(read_labels(other)["logg"], read_labels(split)["logg"])


def test_stars_do_not_depend_on_the_chunk_size(split, tmp_path):
    path = tmp_path / "train.h5"
    generate_split(path, n=70, seed=11, stars=StarDistribution(mag_range=(20.5, 22.5)), chunk_size=70, progress=False)
    a, b = read_labels(split), read_labels(path)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert np.allclose(read_arrays(path)[0], read_arrays(split)[0], atol=1e-5)


def test_progress_lines_in_logs(tmp_path, capsys):
    generate_split(tmp_path / "x.h5", n=10, seed=0, chunk_size=5, progress=True)
    assert "simulate train: 10/10 spectra" in capsys.readouterr().err


def test_nuisances_leave_the_stars_and_store_their_truth(split, tmp_path):
    """data.nuisances: the same labels and magnitudes as the clean split of the seed, plus a continuum
    error and a radial velocity whose true values are labels; the flux is the model's at that RV
    times 1 + sum c_k P_k, and the error the noise of that flux."""
    import torch

    from specvit.physics.nuisances import NuisanceSet
    from specvit.physics.spectrum import SpectrumModel

    nuisances = NuisanceSet(continuum_degree=2, continuum_rms=0.05, rv=True, rv_rms_kms=20.0)
    path = tmp_path / "nuisance.h5"
    generate_split(path, n=70, seed=11, stars=StarDistribution(mag_range=(20.5, 22.5)), chunk_size=32,
                   progress=False, nuisances=nuisances)
    info = validate_file(path)
    assert info.label_names == LABEL_NAMES + ("mag", "cont_0", "cont_1", "cont_2", "rv")
    assert info.attrs["nuisances"] == "cont2+rv" and info.attrs["nuisance_rv_rms_kms"] == 20.0
    labels, clean = read_labels(path), read_labels(split)
    assert all(np.array_equal(labels[k], clean[k]) for k in clean)
    for k, rms in (("cont_0", 0.05), ("cont_2", 0.05), ("rv", 20.0)):  # 70 draws: the sd within +-25 %
        assert 0.75 * rms < np.std(labels[k]) < 1.25 * rms and abs(np.mean(labels[k])) < 0.4 * rms
    assert not np.array_equal(labels["cont_0"], labels["cont_1"])
    flux, error = read_arrays(path)
    rows = [0, 33, 69]
    theta = np.stack([clean[k][rows] for k in LABEL_NAMES], axis=1)
    rest = SpectrumModel()(torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(labels["rv"][rows])).numpy()
    wave = read_wave(path)
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    for j, row in enumerate(rows):
        factor = 1 + np.polynomial.legendre.legval(x, [labels[f"cont_{k}"][row] for k in range(3)])
        assert flux[row] == pytest.approx(rest[j] * factor, rel=2e-5)
    assert not np.allclose(flux[rows], read_arrays(split)[0][rows], rtol=1e-3)
    assert np.allclose(error, pixel_sigma(flux.astype(np.float64), labels["mag"].astype(np.float64)), rtol=1e-5)
