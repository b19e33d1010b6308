"""Evaluation: the two seeded test views, prediction files, and the metrics of the paper's tables
checked against sklearn, closed forms and bootstrap coverage on a known model."""
import math

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from specvit.data.contract import read_arrays, read_labels
from specvit.data.simulate import generate_split
from specvit.data.writer import write_split
from specvit.evaluation import metrics as em
from specvit.evaluation import predictions as ev
from specvit.models.base import Regressor
from specvit.physics.noise import pixel_sigma, snr

torch.set_num_threads(1)
N = 40


class Recorder(Regressor):
    """Stub model: predicts mean flux * scale + offset per label and records every input it sees."""

    name = "recorder"

    def __init__(self, labels=("logg",), offset=0.0, fail_on_call=None):
        self.labels, self.offset, self.fail_on_call = tuple(labels), offset, fail_on_call
        self.seen = []

    def predict(self, x):
        self.seen.append(x.copy())
        if self.fail_on_call == len(self.seen):
            raise RuntimeError("model failed")
        return {lab: x.mean(axis=1).astype(np.float64) + self.offset + i for i, lab in enumerate(self.labels)}

    def fit(self, *a, **k):
        return {}

    def settings(self):
        return {}

    def _write_payload(self, directory):
        return {}

    def _read_payload(self, directory, meta):
        pass


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    return generate_split(tmp_path_factory.mktemp("data") / "test.h5", N, seed=3, split_name="test", progress=False)


@pytest.fixture(scope="module")
def no_mag_file(test_file, tmp_path_factory):
    """The same stars without labels/mag: a user file that knows only logg and Teff."""
    flux, error = read_arrays(test_file)
    labels = read_labels(test_file, ["logg", "Teff"])
    path = tmp_path_factory.mktemp("data") / "nomag.h5"
    with h5py.File(test_file, "r") as f:
        wave = f["wave"][()]
    write_split(path, wave, flux, error, labels, {"source": "hdf5"})
    return path


# ----------------------------------------------------------------------------- metrics


def test_point_metrics_match_sklearn_and_closed_forms():
    rng = np.random.default_rng(0)
    t = rng.uniform(1, 5, 500)
    p = t + rng.normal(0.1, 0.4, 500)
    p[:7] += 3.0  # outliers
    m = em.point_metrics(t, p)
    assert m["r2"] == pytest.approx(r2_score(t, p), rel=1e-12)
    assert m["mae"] == pytest.approx(mean_absolute_error(t, p), rel=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt(mean_squared_error(t, p)), rel=1e-12)
    assert m["bias"] == pytest.approx(np.mean(p - t), rel=1e-12)
    assert m["outlier_frac"] == pytest.approx(np.mean(np.abs(p - t) > 1.0))
    assert m["n"] == 500
    # NMAD of a known sample: d = [-2, -1, 0, 1, 2] + 5 -> |d - 5| median 1.
    d = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) + 5
    assert em.point_metrics(np.zeros(5), d)["sigma_nmad"] == pytest.approx(1.4826)
    assert em.point_metrics(np.zeros(5), d)["bias"] == pytest.approx(5.0)
    assert em.point_metrics(np.zeros(5), d)["outlier_frac"] == 1.0
    # NMAD is robust: ~sigma of the core despite the outliers.
    assert m["sigma_nmad"] == pytest.approx(0.4, rel=0.1)


def test_point_metrics_edge_cases():
    assert math.isnan(em.point_metrics([2.0, 2.0], [1.0, 3.0])["r2"])  # constant truth: R² undefined
    empty = em.point_metrics([], [])
    assert empty["n"] == 0 and math.isnan(empty["mae"])
    with pytest.raises(ValueError, match="values"):
        em.point_metrics([1.0, 2.0], [1.0])


def _bivariate(rng, n, s=1.0, b=0.8, sigma=0.4):
    """y_pred = b y_true + e. Population: R² = 1 - E[d²]/s², MAE = sqrt(2/pi) sd(d), d ~ N(0, (1-b)²s² + sigma²)."""
    t = rng.normal(3.0, s, n)
    p = 3.0 + b * (t - 3.0) + rng.normal(0, sigma, n)
    var_d = (1 - b) ** 2 * s ** 2 + sigma ** 2
    return t, p, 1 - var_d / s ** 2, math.sqrt(2 / math.pi * var_d)


def test_bootstrap_coverage_near_nominal():
    rng = np.random.default_rng(1)
    hits = np.zeros(2)
    reps = 200
    for i in range(reps):
        t, p, r2, mae = _bivariate(rng, 300)
        ci = em.bootstrap_intervals(t, p, n_boot=200, seed=i)
        hits += [ci["r2_lo"] <= r2 <= ci["r2_hi"], ci["mae_lo"] <= mae <= ci["mae_hi"]]
    coverage = hits / reps
    assert np.all((coverage >= 0.88) & (coverage <= 0.99)), coverage


def test_bootstrap_reproducible_and_chunk_independent(monkeypatch):
    t, p, _, _ = _bivariate(np.random.default_rng(2), 300)
    a = em.bootstrap_intervals(t, p, seed=5)
    assert a == em.bootstrap_intervals(t, p, seed=5)
    assert a != em.bootstrap_intervals(t, p, seed=6)
    assert a["r2_lo"] < em.point_metrics(t, p)["r2"] < a["r2_hi"]
    monkeypatch.setattr(em, "_BOOT_CHUNK_VALUES", 300 * 7)  # memory chunks must not change the draws
    assert em.bootstrap_intervals(t, p, seed=5) == pytest.approx(a, rel=1e-12)
    assert all(math.isnan(v) for v in em.bootstrap_intervals([1.0], [1.0]).values())


def test_metrics_table_bins_and_overall():
    rng = np.random.default_rng(3)
    rows = []
    for mag, sigma in ((21.0, 0.2), (18.0, 0.1), (22.0, 0.5)):
        t = rng.uniform(1, 5, 200)
        rows.append(pd.DataFrame({"star": np.arange(200), "mag": mag, "snr": 100 / sigma + rng.normal(0, 1, 200),
                                  "true_logg": t, "pred_logg": t + rng.normal(0, sigma, 200)}))
    df = pd.concat(rows, ignore_index=True)
    table = em.metrics_table(df, n_boot=50)
    assert list(table.columns) == ["mag", "snr_median", "n", "r2", "r2_lo", "r2_hi", "mae", "mae_lo", "mae_hi",
                                   "rmse", "bias", "sigma_nmad", "outlier_frac"]
    assert table["mag"].tolist() == [18.0, 21.0, 22.0] and table["n"].tolist() == [200] * 3
    sub = df[df.mag == 22.0]
    assert table["r2"].iloc[2] == pytest.approx(r2_score(sub.true_logg, sub.pred_logg))
    assert table["snr_median"].iloc[2] == pytest.approx(np.median(sub.snr))
    assert np.all(np.diff(table["r2"]) < 0) and np.all((table.r2_lo < table.r2) & (table.r2 < table.r2_hi))
    overall = em.metrics_table(df, by=None, n_boot=50)
    assert len(overall) == 1 and math.isnan(overall["mag"].iloc[0]) and overall["n"].iloc[0] == 600
    assert overall["mae"].iloc[0] == pytest.approx(mean_absolute_error(df.true_logg, df.pred_logg))
    binned = em.metrics_table(df, bins=[17.5, 21.5, 22.5], n_boot=10)
    assert binned["mag"].tolist() == [19.5, 22.0] and binned["n"].tolist() == [400, 200]
    with pytest.raises(ValueError, match="true_Teff"):
        em.metrics_table(df, label="Teff")


# ----------------------------------------------------------------------------- views


def test_sweep_snr_and_noise_per_mag(test_file):
    flux, _ = read_arrays(test_file)
    blocks = list(ev.view_inputs(test_file, "sweep", mags=[18, 20, 22.5], seed=1))
    assert [b[0] for b in blocks] == [18.0, 20.0, 22.5]
    medians = [np.median(s) for _, _, s in blocks]
    assert medians[0] > medians[1] > medians[2]
    for mag, x, s in blocks:
        assert x.dtype == np.float32 and x.shape == flux.shape
        np.testing.assert_allclose(s, snr(flux, pixel_sigma(flux, mag)), rtol=1e-5)
        z = (x - flux) / pixel_sigma(flux, mag)  # standardised noise ~ N(0, 1)
        assert abs(z.std() - 1) < 0.02 and abs(z.mean()) < 0.02
    # Half the noise level: twice the SNR and half the noise.
    (_, x2, s2), = ev.view_inputs(test_file, "sweep", mags=[20], noise_level=0.5, seed=1)
    np.testing.assert_allclose(s2, 2 * blocks[1][2], rtol=1e-5)
    np.testing.assert_allclose(x2 - flux, 0.5 * (blocks[1][1] - flux), atol=1e-5)


def test_sweep_noise_depends_on_mag_value_not_list(test_file):
    a = dict((m, x) for m, x, _ in ev.view_inputs(test_file, "sweep", mags=[20, 21], seed=4))
    b = dict((m, x) for m, x, _ in ev.view_inputs(test_file, "sweep", mags=[19, 21, 22], seed=4))
    np.testing.assert_array_equal(a[21.0], b[21.0])
    flux, _ = read_arrays(test_file)
    z20 = (a[20.0] - flux) / pixel_sigma(flux, 20.0)
    z21 = (a[21.0] - flux) / pixel_sigma(flux, 21.0)
    assert abs(np.corrcoef(z20.ravel(), z21.ravel())[0, 1]) < 0.01  # fresh noise at each mag
    c = dict((m, x) for m, x, _ in ev.view_inputs(test_file, "sweep", mags=[21], seed=5))
    assert not np.array_equal(a[21.0], c[21.0])
    with pytest.raises(ValueError, match="repeat"):
        list(ev.view_inputs(test_file, "sweep", mags=[21, 21.0]))
    with pytest.raises(ValueError, match="view"):
        list(ev.view_inputs(test_file, "bogus"))


def test_pooled_view_uses_each_stars_own_noise(test_file):
    flux, error = read_arrays(test_file)
    (mag, x, s), = ev.view_inputs(test_file, "pooled", seed=2)
    assert mag is None
    np.testing.assert_allclose(s, snr(flux, error), rtol=1e-6)
    np.testing.assert_allclose(error, pixel_sigma(flux, read_labels(test_file, ["mag"])["mag"]), rtol=1e-4)
    assert abs(((x - flux) / error).std() - 1) < 0.02
    (_, x_rows, _), = ev.view_inputs(test_file, "pooled", seed=2, rows=np.arange(0, N, 2))
    assert x_rows.shape == (N // 2, flux.shape[1])
    # a model evaluated on some rows sees exactly the spectra the others see for those stars
    np.testing.assert_array_equal(x_rows, x[::2])


# ----------------------------------------------------------------------------- prediction files


def test_models_see_identical_inputs(test_file, tmp_path):
    a, b = Recorder(offset=0.0), Recorder(offset=1.0)
    ev.predict_views(a, test_file, tmp_path / "a", views=ev.ViewSettings(mags=[19, 22], seed=7))
    ev.predict_views(b, test_file, tmp_path / "b", views=ev.ViewSettings(mags=[19, 22], seed=7))
    assert len(a.seen) == len(b.seen) == 3  # pooled + 2 mags
    for xa, xb in zip(a.seen, b.seen):
        np.testing.assert_array_equal(xa, xb)
    pa = ev.read_predictions(tmp_path / "a" / "predictions_sweep.h5")
    pb = ev.read_predictions(tmp_path / "b" / "predictions_sweep.h5")
    np.testing.assert_allclose(pb.pred_logg - pa.pred_logg, 1.0)


def test_prediction_files_round_trip(test_file, tmp_path):
    model = Recorder(labels=("logg", "Teff"))
    views = ev.ViewSettings(mags=[20, 21.5], noise_level=1.0, seed=3)
    paths = ev.predict_views(model, test_file, tmp_path, views=views)
    assert set(paths) == {"pooled", "sweep"} and all(p.is_file() for p in paths.values())
    truth = read_labels(test_file)
    pooled, sweep = ev.read_predictions(paths["pooled"]), ev.read_predictions(paths["sweep"])
    assert list(sweep.columns) == ["star", "mag", "snr", "true_logg", "true_Teff", "pred_logg", "pred_Teff"]
    assert len(pooled) == N and len(sweep) == 2 * N
    np.testing.assert_array_equal(sweep.star, np.tile(np.arange(N), 2))
    np.testing.assert_array_equal(sweep.mag, np.repeat(np.float32([20, 21.5]), N))
    np.testing.assert_array_equal(sweep.true_Teff, np.tile(truth["Teff"], 2))
    np.testing.assert_array_equal(pooled.mag, truth["mag"])
    np.testing.assert_array_equal(pooled.pred_logg, model.seen[0].mean(axis=1).astype(np.float64))
    np.testing.assert_array_equal(sweep.pred_Teff[N:], model.seen[2].mean(axis=1).astype(np.float64) + 1.0)
    assert sweep.attrs["view"] == "sweep" and sweep.attrs["model_name"] == "recorder"
    assert sweep.attrs["seed"] == 3 and sweep.attrs["test_file"] == str(test_file)
    with h5py.File(paths["sweep"]) as f:
        assert f["pred/logg"].dtype == np.float64 and f["true/logg"].dtype == np.float32
        assert f["star"].dtype == np.int64 and f["mag"].dtype == np.float32 and f["snr"].dtype == np.float32
    table = em.metrics_table(sweep, n_boot=20)
    assert table["mag"].tolist() == [20.0, 21.5] and table["n"].tolist() == [N, N]
    assert table["snr_median"].iloc[0] > table["snr_median"].iloc[1]


def test_failing_model_leaves_no_file(test_file, tmp_path):
    with pytest.raises(RuntimeError, match="model failed"):
        ev.predict_views(Recorder(fail_on_call=2), test_file, tmp_path, views=ev.ViewSettings(mags=[20, 21]))
    assert list(tmp_path.iterdir()) == []


def test_label_missing_from_test_file(no_mag_file, tmp_path):
    with pytest.raises(ValueError, match=r"'M_H'.*nomag\.h5"):
        ev.predict_views(Recorder(labels=("logg", "M_H")), no_mag_file, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_file_without_mag(no_mag_file, test_file, tmp_path):
    paths = ev.predict_views(Recorder(), no_mag_file, tmp_path, views=ev.ViewSettings(mags=[21], seed=1))
    pooled, sweep = ev.read_predictions(paths["pooled"]), ev.read_predictions(paths["sweep"])
    assert pooled.mag.isna().all() and (sweep.mag == 21).all()
    (_, x_ref, _), = ev.view_inputs(test_file, "pooled", seed=1)  # same stars, stored error
    (_, x, _), = ev.view_inputs(no_mag_file, "pooled", seed=1)
    np.testing.assert_array_equal(x, x_ref)
    overall = em.metrics_table(pooled, n_boot=10)
    assert len(overall) == 1 and overall["n"].iloc[0] == N
