"""LightGBM and Ridge baselines behind the Regressor interface: accuracy against sklearn, early
stopping, determinism, save/load round trips, corrupt-folder errors and input validation."""
import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from specvit.models.base import REGISTRY, Regressor, register
from specvit.models.lightgbm import LightGBMRegressor
from specvit.models.ridge import RidgeRegressor
from specvit.runtime.hashing import file_hash
from specvit.training.factory import load_model


def quiet(_msg):
    pass


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


@pytest.fixture(scope="module")
def linear():
    """Spectra-like float32 design (values ~1) with two linear labels of different noise."""
    rng = np.random.default_rng(0)
    n, p = 900, 64
    x = (1.0 + 0.1 * rng.normal(size=(n, p))).astype(np.float32)
    x64 = x.astype(np.float64)
    y = {"logg": x64 @ rng.normal(size=p) + 0.05 * rng.normal(size=n),
         "Teff": x64[:, :8] @ rng.normal(size=8) + 1.0 * rng.normal(size=n)}
    tr, va = slice(0, 300), slice(300, None)
    return (x[tr], {k: v[tr] for k, v in y.items()}, x[va], {k: v[va] for k, v in y.items()})


@pytest.fixture(scope="module")
def nonlinear():
    rng = np.random.default_rng(1)
    n, p = 2000, 64
    x = rng.uniform(-1, 1, size=(n, p)).astype(np.float32)
    f = np.sin(3 * x[:, 0]) + x[:, 1] * x[:, 2] + np.abs(x[:, 3]) + 0.5 * (x[:, 4] > 0)
    y = {"logg": f + 0.1 * rng.normal(size=n), "Teff": x[:, 5] ** 2 - x[:, 6] + 0.1 * rng.normal(size=n)}
    tr, va, te = slice(0, 1200), slice(1200, 1600), slice(1600, None)
    split = lambda s: (x[s], {k: v[s] for k, v in y.items()})  # noqa: E731
    return split(tr), split(va), split(te)


# One thread: with libgomp's default (active) wait policy, 2 threads on a 2-core machine that is also
# running something else are 10-100x slower on small data.
FAST_LGB = dict(n_estimators=300, learning_rate=0.1, num_leaves=15, num_threads=1, log_period=0)


@pytest.fixture(scope="module")
def lgb_two(nonlinear):
    (xt, yt), (xv, yv), _ = nonlinear
    m = LightGBMRegressor(labels=("logg", "Teff"), **FAST_LGB)
    info = m.fit(xt, yt, xv, yv, log=quiet)
    return m, info


# ----------------------------------------------------------------------------- Ridge


@pytest.mark.parametrize("standardize", [True, False])
def test_ridge_matches_sklearn(linear, standardize):
    xt, yt, xv, _ = linear
    m = RidgeRegressor(labels=("logg", "Teff"), alpha=2.5, standardize=standardize)
    info = m.fit(xt, yt, log=quiet)
    json.dumps(info)
    for k, lab in enumerate(m.labels):
        steps = [StandardScaler()] if standardize else []
        ref = make_pipeline(*steps, Ridge(alpha=2.5)).fit(xt.astype(np.float64), yt[lab])
        pred = m.predict(xv)[lab]
        assert pred.dtype == np.float64 and pred.shape == (xv.shape[0],)
        np.testing.assert_allclose(pred, ref.predict(xv.astype(np.float64)), rtol=1e-6, atol=1e-9)
        coef = m.coef_[:, k] * m.scale_ if standardize else m.coef_[:, k]
        assert rel(coef, ref[-1].coef_) < 1e-6
        raw_intercept = ref[-1].intercept_ - (ref[0].mean_ / ref[0].scale_) @ ref[-1].coef_ if standardize \
            else ref[-1].intercept_
        assert m.intercept_[k] == pytest.approx(raw_intercept, rel=1e-6)


@pytest.mark.parametrize("solver", ["auto", "cholesky", "eigh"])
def test_ridge_alpha_grid_picks_lowest_validation_mse(linear, solver):
    xt, yt, xv, yv = linear
    alphas = [1e-3, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4]
    m = RidgeRegressor(labels=("logg", "Teff"), alphas=alphas, grid_solver=solver)
    info = m.fit(xt, yt, xv, yv, log=quiet)
    json.dumps(info)
    assert info["grid_solver"] == ("cholesky" if solver == "auto" else solver)  # auto: eigh only for > 16
    for lab in m.labels:
        mse = []
        for a in alphas:
            ref = make_pipeline(StandardScaler(), Ridge(alpha=a)).fit(xt.astype(np.float64), yt[lab])
            mse.append(np.mean((ref.predict(xv.astype(np.float64)) - yv[lab]) ** 2))
        np.testing.assert_allclose(info["val_mse_grid"][lab], mse, rtol=1e-6)
        assert info["alpha"][lab] == alphas[int(np.argmin(mse))]
        best = make_pipeline(StandardScaler(), Ridge(alpha=info["alpha"][lab])).fit(xt.astype(np.float64), yt[lab])
        np.testing.assert_allclose(m.predict(xv)[lab], best.predict(xv.astype(np.float64)), rtol=1e-6, atol=1e-9)
    # the two labels differ in noise, so they choose different alphas
    assert info["alpha"]["logg"] < info["alpha"]["Teff"]


def test_ridge_alpha_grid_needs_validation(linear):
    xt, yt, _, _ = linear
    with pytest.raises(ValueError, match="x_val"):
        RidgeRegressor(alphas=[1.0, 10.0]).fit(xt, yt, log=quiet)


def test_ridge_float64_on_ill_conditioned_design():
    """Smooth, highly correlated columns (double cumulative sums): fp32 normal equations fail."""
    rng = np.random.default_rng(2)
    n, p, alpha = 500, 120, 1e-4
    x = np.cumsum(np.cumsum(rng.normal(size=(n, p)), axis=1), axis=1)
    x = (1 + 0.1 * x / np.abs(x).max()).astype(np.float32)
    y = x.astype(np.float64) @ rng.normal(size=p) + 0.01 * rng.normal(size=n)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x.astype(np.float64), y)

    m = RidgeRegressor(alpha=alpha)
    m.fit(x, {"logg": y}, log=quiet)
    assert rel(m.coef_[:, 0] * m.scale_, ref[-1].coef_) < 1e-6
    np.testing.assert_allclose(m.predict(x)["logg"], ref.predict(x.astype(np.float64)), rtol=1e-6, atol=1e-9)
    e = RidgeRegressor(alphas=[alpha, 1.0], grid_solver="eigh")
    e.fit(x, {"logg": y}, x, {"logg": y}, log=quiet)  # validating on train: picks the smaller alpha
    assert e.alpha_[0] == alpha and rel(e.coef_[:, 0] * e.scale_, ref[-1].coef_) < 1e-6

    z = ((x - x.mean(0)) / x.std(0)).astype(np.float32)  # naive: everything in float32
    g = z.T @ z
    g[np.diag_indices(p)] += np.float32(alpha)
    naive = np.linalg.solve(g, z.T @ (y - y.mean()).astype(np.float32))
    assert rel(naive, ref[-1].coef_) > 0.1


def test_ridge_rejects_bad_alpha():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            RidgeRegressor(alpha=bad)
    with pytest.raises(ValueError, match="alphas"):
        RidgeRegressor(alphas=[1.0, -2.0])
    with pytest.raises(ValueError, match="grid_solver"):
        RidgeRegressor(grid_solver="lstsq")


# ----------------------------------------------------------------------------- LightGBM


def test_lightgbm_fits_nonlinear_function_multilabel(nonlinear, lgb_two):
    _, _, (xe, ye) = nonlinear
    m, info = lgb_two
    json.dumps(info)
    pred = m.predict(xe)
    assert set(pred) == {"logg", "Teff"}
    for lab in ("logg", "Teff"):
        assert pred[lab].dtype == np.float64 and pred[lab].shape == (xe.shape[0],)
        assert r2_score(ye[lab], pred[lab]) > 0.8, lab
        li = info["labels"][lab]
        assert li["n_trees"] == li["best_iteration"] <= FAST_LGB["n_estimators"]
        assert li["fit_seconds"] >= 0
    assert info["dataset_seconds"] >= 0


def test_lightgbm_early_stopping():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    y = 0.3 * x[:, 0] + rng.normal(size=300)  # mostly noise: validation stops improving early
    m = LightGBMRegressor(n_estimators=500, learning_rate=0.1, num_leaves=15, early_stopping_rounds=10,
                          num_threads=1, log_period=5)
    lines = []
    info = m.fit(x[:200], {"logg": y[:200]}, x[200:], {"logg": y[200:]}, log=lines.append)
    li = info["labels"]["logg"]
    assert li["early_stopped"] and li["best_iteration"] < 500
    assert li["iterations_run"] == li["best_iteration"] + 10
    assert m.boosters["logg"].num_trees() == li["best_iteration"]
    assert any("iter 5:" in s and "val l2" in s for s in lines)  # evaluation log routed to `log`


def test_lightgbm_same_seed_identical_predictions(nonlinear):
    (xt, yt), (xv, yv), (xe, _) = nonlinear
    kw = dict(FAST_LGB, n_estimators=40, feature_fraction=0.5, bagging_fraction=0.7)
    params = LightGBMRegressor(**kw).params()
    assert params["deterministic"] and params["force_col_wise"] != params["force_row_wise"]
    preds = []
    for seed in (7, 7, 8):
        m = LightGBMRegressor(seed=seed, **kw)
        m.fit(xt, yt, xv, yv, log=quiet)
        preds.append(m.predict(xe)["logg"])
    assert preds[0].tobytes() == preds[1].tobytes()
    assert not np.array_equal(preds[0], preds[2])  # the seed does drive the sampling


def test_lightgbm_settings_are_checked_typed_and_named():
    """The keyword arguments are a run group's ``params`` and model.json's ``settings``: unknown ones
    are named, values are stored as their default's type (YAML may give 1e3), and settings() gives
    back exactly the keywords that rebuild the model."""
    m = LightGBMRegressor(labels=("logg",), n_estimators=1e3, num_leaves="15", early_stopping_rounds=0,
                          col_wise=0)
    assert m.settings()["n_estimators"] == 1000 and type(m.settings()["n_estimators"]) is int
    assert m.settings()["num_leaves"] == 15 and m.settings()["early_stopping_rounds"] is None
    assert m.settings()["col_wise"] is False and m.params()["force_row_wise"] is True
    assert LightGBMRegressor(labels=("logg",), **m.settings()).settings() == m.settings()
    assert list(LightGBMRegressor().settings()) == [
        "n_estimators", "learning_rate", "num_leaves", "feature_fraction", "bagging_fraction", "bagging_freq",
        "early_stopping_rounds", "max_bin", "min_data_in_leaf", "num_threads", "seed", "verbose", "log_period",
        "col_wise"]
    with pytest.raises(TypeError, match=r"unknown LightGBM setting\(s\) \['n_trees'\]; known: \['n_estimators'"):
        LightGBMRegressor(n_trees=5)
    with pytest.raises(ValueError, match=r"feature_fraction must be in \(0, 1\], got 1.5"):
        LightGBMRegressor(feature_fraction=1.5)


# ----------------------------------------------------------------------------- save / load


@pytest.fixture(scope="module")
def ridge_two(linear):
    xt, yt, xv, yv = linear
    m = RidgeRegressor(labels=("logg", "Teff"), alphas=[0.1, 1.0, 10.0])
    m.fit(xt, yt, xv, yv, log=quiet)
    return m


@pytest.mark.parametrize("which", ["lightgbm", "ridge"])
def test_save_load_round_trip(tmp_path, which, lgb_two, ridge_two, nonlinear, linear):
    m = lgb_two[0] if which == "lightgbm" else ridge_two
    x = nonlinear[2][0] if which == "lightgbm" else linear[2]
    out = m.save(tmp_path / "model")
    meta = json.loads((out / "model.json").read_text())
    assert meta["name"] == which and meta["labels"] == ["logg", "Teff"] and isinstance(meta["settings"], dict)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]

    for loaded in (type(m).load(out), load_model(out)):
        assert type(loaded) is type(m) and loaded.labels == m.labels
        assert loaded.settings() == m.settings()
        assert loaded.fit_info == json.loads(json.dumps(m.fit_info))
        a, b = m.predict(x), loaded.predict(x)
        for lab in m.labels:
            assert a[lab].tobytes() == b[lab].tobytes()


def test_registry_and_wrong_class(tmp_path, ridge_two):
    assert REGISTRY["lightgbm"] is LightGBMRegressor and REGISTRY["ridge"] is RidgeRegressor
    assert LightGBMRegressor.name == "lightgbm" and RidgeRegressor.name == "ridge"
    ridge_two.save(tmp_path)
    with pytest.raises(ValueError, match="'ridge' model"):
        LightGBMRegressor.load(tmp_path)
    with pytest.raises(ValueError, match="already registered"):
        @register("ridge")
        class Other(RidgeRegressor):
            pass
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["name"] = "no_such_model"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown model name 'no_such_model'"):
        load_model(tmp_path)


@pytest.mark.parametrize("which", ["lightgbm", "ridge"])
def test_load_missing_or_corrupt_files(tmp_path, which, lgb_two, ridge_two):
    m = lgb_two[0] if which == "lightgbm" else ridge_two
    payload = "booster_01.txt" if which == "lightgbm" else "ridge.npz"
    d = m.save(tmp_path / "m")
    f = d / payload
    good = f.read_bytes()

    f.unlink()
    with pytest.raises(ValueError, match=f"{payload}: missing"):
        load_model(d)

    f.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(ValueError, match=f"{payload}: corrupt or truncated"):
        load_model(d)

    f.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])  # same size, one byte flipped
    with pytest.raises(ValueError, match=f"{payload}: corrupt"):
        load_model(d)

    # even with checksums out of the way, a malformed payload is a clear ValueError naming it
    bad = b"not a model\n" * 50
    f.write_bytes(bad)
    meta = json.loads((d / "model.json").read_text())
    meta["files"][payload] = file_hash(f)
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"{payload}: not a readable"):
        load_model(d)

    (d / "model.json").write_text('{"name": "ridge", "lab')
    with pytest.raises(ValueError, match="model.json: unreadable or corrupt"):
        load_model(d)
    (d / "model.json").unlink()
    with pytest.raises(ValueError, match="model.json: missing"):
        load_model(d)


def test_interrupted_save_leaves_no_loadable_half_model(tmp_path, ridge_two, monkeypatch):
    d = ridge_two.save(tmp_path / "m")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        ridge_two.save(d)
    assert sorted(p.name for p in d.iterdir()) == ["ridge.npz"]  # no temp files, no model.json
    with pytest.raises(ValueError, match="model.json: missing"):
        load_model(d)
    monkeypatch.undo()
    ridge_two.save(d)
    assert isinstance(load_model(d), RidgeRegressor)


def test_unfitted_model_refuses_predict_and_save(tmp_path):
    for m in (RidgeRegressor(), LightGBMRegressor()):
        with pytest.raises(RuntimeError, match="not fitted"):
            m.predict(np.zeros((2, 3), np.float32))
        with pytest.raises(RuntimeError, match="not fitted"):
            m.save(tmp_path)


# ----------------------------------------------------------------------------- input validation


@pytest.mark.parametrize("cls", [RidgeRegressor, LightGBMRegressor])
def test_input_validation(cls, linear):
    xt, yt, xv, yv = linear
    m = cls(labels=("logg", "Teff"), **({"n_estimators": 5, "num_threads": 1} if cls is LightGBMRegressor else {}))

    x_nan = xt.copy()
    x_nan[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"x_train has 1 non-finite.*row 7, column 3"):
        m.fit(x_nan, yt, log=quiet)
    x_inf = xv.copy()
    x_inf[2, 5] = np.inf
    with pytest.raises(ValueError, match=r"x_val has 1 non-finite.*row 2, column 5"):
        m.fit(xt, yt, x_inf, yv, log=quiet)
    with pytest.raises(ValueError, match="x_train must be a 2-D array"):
        m.fit(xt[0], yt, log=quiet)
    with pytest.raises(ValueError, match="floating-point"):
        m.fit(xt.astype(np.int64), yt, log=quiet)
    with pytest.raises(ValueError, match=r"y_train\['Teff'\] has 299 values but x has 300 rows"):
        m.fit(xt, {"logg": yt["logg"], "Teff": yt["Teff"][:-1]}, log=quiet)
    with pytest.raises(ValueError, match=r"y_train\['logg'\] must be a 1-D array"):
        m.fit(xt, {"logg": yt["logg"][:, None], "Teff": yt["Teff"]}, log=quiet)
    with pytest.raises(ValueError, match=r"y_train is missing label\(s\) \['Teff'\]"):
        m.fit(xt, {"logg": yt["logg"]}, log=quiet)
    with pytest.raises(ValueError, match=r"y_val is missing label\(s\) \['Teff'\]"):
        m.fit(xt, yt, xv, {"logg": yv["logg"]}, log=quiet)
    y_nan = dict(yt, logg=yt["logg"].copy())
    y_nan["logg"][4] = np.nan
    with pytest.raises(ValueError, match=r"y_train\['logg'\] has 1 non-finite value\(s\), first at index 4"):
        m.fit(xt, y_nan, log=quiet)
    with pytest.raises(ValueError, match="x_val has 63 features"):
        m.fit(xt, yt, xv[:, :-1], yv, log=quiet)
    with pytest.raises(ValueError, match="both x_val and y_val"):
        m.fit(xt, yt, xv, None, log=quiet)

    m.fit(xt, yt, log=quiet)
    with pytest.raises(ValueError, match="x has 63 features"):
        m.predict(xv[:, :-1])
    with pytest.raises(ValueError, match="x has 1 non-finite"):
        m.predict(x_inf)


def test_labels_argument():
    assert RidgeRegressor(labels="logg").labels == ("logg",)
    with pytest.raises(ValueError, match="distinct"):
        LightGBMRegressor(labels=("logg", "logg"))
    with pytest.raises(ValueError, match="at least one"):
        RidgeRegressor(labels=())


def test_regressor_is_abstract():
    with pytest.raises(TypeError):
        Regressor()
