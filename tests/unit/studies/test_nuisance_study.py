"""The nuisance study's table (specvit.studies.nuisance); its figure is drawn by the workflow tests."""
import numpy as np
import pandas as pd
import pytest

from specvit.studies.nuisance import COLUMNS, nuisance_table

MAGS = [20.0, 22.0]


def metrics(r2s):
    """A metrics_test.csv: the pooled row and the sweep's rows."""
    sweep = pd.DataFrame({"view": "sweep", "mag": MAGS, "snr_median": [24.0, 4.6], "r2": r2s,
                          "r2_lo": np.subtract(r2s, 0.05), "r2_hi": np.add(r2s, 0.04)})
    return pd.concat([pd.DataFrame({"view": ["pooled"], "mag": [np.nan], "snr_median": [8.0], "r2": [0.5],
                                    "r2_lo": [0.4], "r2_hi": [0.6]}), sweep], ignore_index=True)


def ceiling():
    rows = [(m, s, kind, dims, r2, r2 - 0.1, r2 + 0.05) for m, s in zip(MAGS, [24.0, 4.6])
            for kind, dims, r2 in (("median", "5d", 0.9), ("bayes", "5d", 0.8), ("mmse_sim", "5d", 0.85),
                                   ("median", "1d", 0.99), ("median", "5d+cont2+rv", 0.3),
                                   ("bayes", "5d+cont2+rv", 0.4))]
    return pd.DataFrame(rows, columns=["mag", "snr_median", "kind", "dims", "r2", "r2_q10", "r2_q90"])


def runs():
    return [{"case": "nuisance", "group": "vit", "run_id": "nuisance-vit-N100-s0", "n_train": 100,
             "metrics": metrics([0.6, 0.2])},
            {"case": "clean", "group": "vit", "run_id": "vit-N100-s0", "n_train": 100, "metrics": metrics([0.8, 0.5])}]


def test_the_table_holds_each_runs_sweep_and_the_ceilings_of_each_case():
    table = nuisance_table(runs(), ceiling(), nuisance_dims="5d+cont2+rv")
    assert list(table.columns) == COLUMNS and len(table) == 2 * 2 + 2 * 3 + 2 * 2
    model = table[(table["source"] == "model") & (table["case"] == "nuisance")]
    assert list(model["r2"]) == [0.6, 0.2] and list(model["r2_lo"]) == pytest.approx([0.55, 0.15])
    assert set(model["dims"]) == {"5d+cont2+rv"} and set(model["run_id"]) == {"nuisance-vit-N100-s0"}
    clean = table[(table["case"] == "clean") & (table["source"] == "ceiling")]
    assert sorted(set(clean["name"])) == ["bayes", "median", "mmse_sim"] and set(clean["dims"]) == {"5d"}
    bayes = table[(table["case"] == "nuisance") & (table["name"] == "bayes")]
    assert list(bayes["r2"]) == [0.4, 0.4] and list(bayes["r2_lo"]) == pytest.approx([0.3, 0.3])
    assert list(bayes["r2_hi"]) == pytest.approx([0.45, 0.45])
    assert not (table["dims"] == "1d").any()


def test_a_nuisance_set_without_ceiling_rows_keeps_the_models():
    table = nuisance_table(runs(), ceiling(), nuisance_dims="5d+cont0")
    nuisance = table[table["case"] == "nuisance"]
    assert set(nuisance["source"]) == {"model"} and len(nuisance) == 2


def test_an_unknown_case_is_refused():
    bad = [{**runs()[0], "case": "noisy"}]
    with pytest.raises(ValueError, match=r"run cases must be among \('clean', 'nuisance'\), got \['noisy'\]"):
        nuisance_table(bad, ceiling(), nuisance_dims="5d+cont2+rv")

