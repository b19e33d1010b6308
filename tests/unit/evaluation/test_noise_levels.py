"""Evaluation of one model at several test noise levels (one fixed draw, scaled)."""
import numpy as np
import pytest


def test_cross_noise_metrics_scale_one_fixed_draw(tmp_path):
    """metrics_at_noise_levels on a fitted Ridge: one row per level and label; at level 1 the numbers
    of evaluate.predict_views' pooled view; R² falls as the test noise grows."""
    from specvit.data.writer import write_split
    from specvit.evaluation.metrics import metrics_table
    from specvit.evaluation.noise_levels import metrics_at_noise_levels
    from specvit.evaluation.predictions import ViewSettings, predict_views, read_predictions
    from specvit.models.ridge import RidgeRegressor

    rng = np.random.default_rng(1)
    n, p = 300, 32
    logg = rng.uniform(1, 5, n).astype(np.float32)
    flux = (1 + 0.05 * np.outer(logg, np.linspace(-1, 1, p))).astype(np.float32)
    error = np.full((n, p), 0.05, np.float32)
    path = tmp_path / "test.h5"
    write_split(path, np.linspace(4000.0, 5000.0, p), flux, error, {"logg": logg}, {"source": "hdf5"})
    model = RidgeRegressor(labels=("logg",))
    model.fit((flux[:200] + error[:200] * rng.standard_normal((200, p))).astype(np.float32), {"logg": logg[:200]})
    table = metrics_at_noise_levels(model, path, [0.5, 1.0, 2.0], seed=3, n_boot=20)
    assert list(table["test_noise"]) == [0.5, 1.0, 2.0] and set(table["label"]) == {"logg"}
    assert table["r2"].is_monotonic_decreasing
    views = ViewSettings(noise_level=1.0, seed=3, views=("pooled",))
    pooled = read_predictions(predict_views(model, path, tmp_path, views=views)["pooled"])
    ref = metrics_table(pooled, by=None, n_boot=20, seed=3)
    assert table.loc[1, "r2"] == pytest.approx(ref["r2"].iloc[0], abs=1e-12)
    assert table.loc[1, "r2_lo"] == pytest.approx(ref["r2_lo"].iloc[0], abs=1e-12)
    with pytest.raises(ValueError, match="test noise levels .* repeat"):
        metrics_at_noise_levels(model, path, [1.0, 1.0], seed=3)
