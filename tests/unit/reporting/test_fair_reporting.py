"""Table 3's seed and training-range columns, the paired model differences, the augmentation tables,
and figures whose intervals do not contain their point (a model with R² ≈ 0)."""
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from specvit.evaluation.metrics import metrics_table, r2_of
from specvit.evaluation.paired import paired_difference
from specvit.reporting.differences import model_differences
from specvit.reporting.paper_tables import TABLE3_ALL_COLUMNS, scaling, table3
from specvit.studies.augmentation import augmentation_table, slopes
from specvit.training.spec import RunSpec

VAR = 16 / 12  # log g uniform on [1, 5]
MAGS = (18.0, 21.0, 23.0)


def predictions(truth, sigma, seed, mean_only=False):
    """A sweep of prediction rows (star, mag, snr, true_logg, pred_logg) with the stored R² denominator."""
    rng = np.random.default_rng(seed)
    parts = []
    for mag in MAGS:
        pred = np.full(truth.size, truth.mean()) + 1e-4 * rng.normal(size=truth.size) if mean_only else \
            truth + rng.normal(0, sigma * (mag - 17), truth.size)
        parts.append(pd.DataFrame({"star": np.arange(truth.size), "mag": mag, "snr": 100 / (mag - 17),
                                   "true_logg": truth, "pred_logg": pred}))
    df = pd.concat(parts, ignore_index=True)
    df.attrs["r2_variance_logg"] = VAR
    return df


def run_metrics(df, variance=VAR):
    """metrics_test.csv of a run, as rule evaluate_run writes it."""
    pooled = df[df["mag"] == 21.0]
    kw = {"n_boot": 50, "seed": 0, "variance": variance}
    return pd.concat([metrics_table(pooled, by=None, **kw).assign(view="pooled"),
                      metrics_table(df, by="mag", **kw).assign(view="sweep")], ignore_index=True)




@pytest.fixture(scope="module")
def truth():
    return np.random.default_rng(0).uniform(1, 5, 400)


def test_table3_has_the_seed_spread_and_flags_magnitudes_outside_training(truth):
    specs = {f"vit-N600-s{s}": RunSpec(f"vit-N600-s{s}", "vit", "vit", 600, s) for s in (0, 1, 2)}
    specs["ridge-N600-s0"] = RunSpec("ridge-N600-s0", "ridge", "ridge", 600, 0)
    metrics = {rid: run_metrics(predictions(truth, 0.1 * (1 + spec.seed), spec.seed)) for rid, spec in specs.items()}
    t = table3(metrics, specs, train_mags=[20.5, 22.5], test_mags=[20.5, 22.5])
    assert list(t.columns) == TABLE3_ALL_COLUMNS
    vit = t[(t["model"] == "vit") & (t["view"] == "sweep")].set_index("mag")
    seeds = [metrics[f"vit-N600-s{s}"] for s in (0, 1, 2)]
    r2 = [m[(m["view"] == "sweep") & (m["mag"] == 23.0)]["r2"].item() for m in seeds]
    assert vit.loc[23.0, "r2"] == r2[0] and (vit["run_id"] == "vit-N600-s0").all()  # the lowest seed's row
    assert vit.loc[23.0, "n_seeds"] == 3 and vit.loc[23.0, "r2_seed_mean"] == pytest.approx(np.mean(r2))
    assert vit.loc[23.0, "r2_seed_std"] == pytest.approx(np.std(r2, ddof=1))
    assert vit["in_train_mags"].tolist() == [False, True, False]
    ridge = t[t["model"] == "ridge"]
    assert ridge["n_seeds"].eq(1).all() and ridge["r2_seed_std"].isna().all()
    assert ridge[ridge["view"] == "pooled"]["in_train_mags"].item()  # the pooled view's test range is inside
    assert not table3(metrics, specs, train_mags=[20.5, 22.5], test_mags=[18.0, 22.5]).query(
        "view == 'pooled'")["in_train_mags"].any()


def test_model_differences_pair_the_stars_both_models_were_scored_on(truth):
    vit = [predictions(truth, 0.05, s) for s in (0, 1)]
    template = predictions(truth, 0.2, 9)
    template = template[template["star"] < 60]  # scored on its first stars only
    table = model_differences({"vit": {"sweep": vit}, "template": {"sweep": [template]}}, n_boot=100, seed=4)
    assert len(table) == len(MAGS) and (table["model_a"] == "vit").all() and (table["n"] == 60).all()
    row = table[table["mag"] == 21.0].iloc[0]
    first = [v[(v["mag"] == 21.0) & (v["star"] < 60)] for v in vit]
    sub = template[template["mag"] == 21.0]
    expect = paired_difference(first[0]["true_logg"], np.stack([f["pred_logg"] for f in first]), sub["pred_logg"],
                               variance=VAR, n_boot=100, seed=4)
    assert row[list(expect)].to_dict() == pytest.approx(expect)
    assert row["r2_a"] == pytest.approx(np.mean([r2_of(f["true_logg"], f["pred_logg"], VAR) for f in first]))
    assert row["r2_diff_lo"] > 0 and row["n_seeds_a"] == 2 and row["n_seeds_b"] == 1
    other = predictions(truth, 0.05, 0)
    other.attrs["r2_variance_logg"] = 2.0
    with pytest.raises(ValueError, match="one stored R² denominator"):
        model_differences({"a": {"pooled": [vit[0]]}, "b": {"pooled": [other]}})


def test_augmentation_table_and_slopes(truth):
    arms = [{"group": "lgb", "model": "lightgbm", "augmented": False, "noise_copies": 1, "runs": ["l-N200", "l-N800"]},
            {"group": "lgb", "model": "lightgbm", "augmented": True, "noise_copies": 4, "runs": ["k-N200", "k-N800"]},
            {"group": "vit", "model": "vit", "augmented": True, "noise_copies": 0, "runs": ["v-N200", "v-N800"]}]
    sigma = {"l-N200": 0.4, "l-N800": 0.2, "k-N200": 0.3, "k-N800": 0.15, "v-N200": 0.5, "v-N800": 0.1}
    metrics = {r: run_metrics(predictions(truth, s / 4, i)) for i, (r, s) in enumerate(sigma.items())}
    info = {r: {"fit": {"epochs": 40 if r.endswith("200") else 10}} for r in sigma}
    n = {r: int(r.split("N")[1]) for r in sigma}
    table = augmentation_table(arms, metrics, info, n)
    assert table["arm"].tolist() == ["1 noisy copy"] * 2 + ["4 noisy copies"] * 2 + ["fresh noise every epoch"] * 2
    assert table["noise_draws"].tolist() == [1, 1, 4, 4, 40, 10]
    pooled = {r: m[m["view"] == "pooled"].iloc[0] for r, m in metrics.items()}
    assert table["r2"].tolist() == [pooled[r]["r2"] for r in sigma]
    s = slopes(table).set_index("group")
    expect = (pooled["k-N800"]["r2"] - pooled["k-N200"]["r2"]) / math.log10(4)
    assert s.loc["lgb", "slope_augmented"] == pytest.approx(expect)
    assert s.loc["lgb", "slope_from_augmentation"] == pytest.approx(
        expect - (pooled["l-N800"]["r2"] - pooled["l-N200"]["r2"]) / math.log10(4))
    assert s.loc["lgb", "r2_gain_at_n_min"] == pytest.approx(pooled["k-N200"]["r2"] - pooled["l-N200"]["r2"])
    assert math.isnan(s.loc["vit", "slope_unaugmented"])  # no arm without augmentation


def test_figures_draw_intervals_that_exclude_their_point(truth, tmp_path):
    """A model that predicts about the mean has R² ≈ 0, and its percentile interval (sklearn's R², each
    resample about its own mean) lies below the point: matplotlib's yerr refuses such bars, Figures 1
    and 3 and the augmentation figure draw them."""
    from specvit.reporting.figure1 import plot_r2_vs_snr
    from specvit.reporting.figures import plot_scaling
    from specvit.reporting.study_figures import plot_augmentation

    mean_model = run_metrics(predictions(truth, 0, 3, mean_only=True), variance=None)
    assert (mean_model["r2"].abs() < 1e-3).all() and (mean_model["r2_hi"] < mean_model["r2"]).all()
    specs = {"vit-N600-s0": RunSpec("vit-N600-s0", "vit", "vit", 600, 0),
             "lgb-N600-s0": RunSpec("lgb-N600-s0", "lgb", "lightgbm", 600, 0)}
    metrics = {"vit-N600-s0": mean_model, "lgb-N600-s0": run_metrics(predictions(truth, 0.1, 1))}
    t3 = table3(metrics, specs, train_mags=[20.5, 22.5], test_mags=[20.5, 22.5])
    g = t3[(t3["model"] == "vit") & (t3["view"] == "sweep")]
    fig, ax = matplotlib.pyplot.subplots()
    with pytest.raises(ValueError, match="yerr"):  # what Figure 1 used to do
        ax.errorbar(g["snr_median"], g["r2"], yerr=np.vstack([g["r2"] - g["r2_lo"], g["r2_hi"] - g["r2"]]))
    matplotlib.pyplot.close(fig)
    plot_r2_vs_snr(t3, None, tmp_path / "f1.pdf", tmp_path / "f1.png", train_mags=[20.5, 22.5])
    table, summary = scaling(metrics, specs)
    plot_scaling(table, summary, tmp_path / "f3.pdf", tmp_path / "f3.png")
    aug = pd.DataFrame({"group": "vit", "model": "vit", "arm": ["a", "a", "b", "b"],
                        "augmented": [True, True, False, False], "n_train": [200, 600] * 2,
                        "r2": 0.0001, "r2_lo": -0.018, "r2_hi": 0.00008})  # the numbers
    plot_augmentation(aug, slopes(aug), tmp_path / "fa.pdf", tmp_path / "fa.png")
    for stem in ("f1", "f3", "fa"):
        assert (tmp_path / f"{stem}.pdf").read_bytes().startswith(b"%PDF") and (tmp_path / f"{stem}.png").stat().st_size
