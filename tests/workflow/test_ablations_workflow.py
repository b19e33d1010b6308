"""Ablations: declaration -> runs (unit tests), and the five tables and figures built by Snakemake on
config/smoke.yaml, checked against numbers recomputed from the run folders."""
import copy
import json
import re

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_build, run_snakemake
from specvit.pipeline.ablations import expand_ablations
from specvit.pipeline.config import load_config
from specvit.studies.ablations import KINDS

SMOKE = REPO / "config" / "smoke.yaml"
DEFAULT = load_config()
TRAINING = DEFAULT["training"]


# ----------------------------------------------------------------------------- declaration -> runs


# ----------------------------------------------------------------------------- the workflow

TABLE_COLUMNS = {
    "tokenization": ["tokenizer", "patch", "stride", "n_seeds", "r2_mean", "r2_std", "mae_mean", "grad_norm_median",
                     "diverged"],
    "pe": ["pos_encoding", "n_seeds", "r2_mean", "r2_std", "mae_mean"],
    "loss_norm": ["loss", "label_norm", "n_seeds", "r2_mean", "r2_std", "mae_mean"],
    "multitask": ["label", "setting", "r2_mean", "r2_std", "mae_mean"],
    "robustness": ["train_noise", "test_noise", "model", "r2_mean", "r2_std"],
}


def smoke_ablations():
    """The ablations of the smoke config as Snakemake sees them (smoke merged over the default)."""
    from snakemake.utils import update_config

    cfg = copy.deepcopy(DEFAULT)
    update_config(cfg, yaml.safe_load(SMOKE.read_text()))
    return expand_ablations(cfg["ablations"], cfg["training"], cfg["data"]["subsets"])


def targets():
    return ([f"results/tables/{k.table}.{ext}" for k in KINDS.values() for ext in ("csv", "md", "tex")]
            + [f"results/figures/{k.figure}.{ext}" for k in KINDS.values() for ext in ("pdf", "png")])


@pytest.fixture(scope="module")
def built(tmp_path_factory, core_build):
    """The ablations' targets built on a copy of the shared core build (its data splits and subsets)."""
    work = copy_build(core_build, tmp_path_factory.mktemp("ablations") / "work")
    r = run_snakemake(work, *targets(), "--cores", "2", "--configfile", SMOKE, timeout=1800)
    assert r.returncode == 0, r.stdout[-5000:]
    return work


# The variance of each label's uniform prior (the paper's ranges): the denominator of the one R².
PRIOR_VARIANCE = {"logg": 4.0 ** 2 / 12, "Teff": 2250.0 ** 2 / 12, "M_H": 3.25 ** 2 / 12}


def r2(t, p, label):
    t, p = np.asarray(t, float), np.asarray(p, float)
    return 1 - np.mean((p - t) ** 2) / PRIOR_VARIANCE[label]


def recomputed(work, specs, label="logg"):
    """{group: [R² of each seed]} from the runs' pooled predictions, read with h5py."""
    out = {}
    for rid, spec in specs.items():
        with h5py.File(work / f"results/runs/{rid}/predictions_pooled.h5") as f:
            assert f.attrs[f"r2_variance_{label}"] == pytest.approx(PRIOR_VARIANCE[label], rel=1e-6)
            out.setdefault(spec.group, []).append((r2(f[f"true/{label}"][()], f[f"pred/{label}"][()], label),
                                                   np.mean(np.abs(f[f"pred/{label}"][()] - f[f"true/{label}"][()]))))
    return out


@pytest.mark.workflow
def test_all_five_targets_are_built_with_the_issue_columns(built):
    for t in targets():
        assert (built / t).stat().st_size > 0, t
    for name, cols in TABLE_COLUMNS.items():
        table = pd.read_csv(built / f"results/tables/{KINDS[name].table}.csv")
        assert set(cols) <= set(table.columns), (name, list(table.columns))
    again = run_snakemake(built, *targets(), "-n", "--configfile", SMOKE)
    assert "Nothing to be done" in again.stdout, again.stdout


@pytest.mark.workflow
@pytest.mark.parametrize("name,key", [("pe", "pos_encoding"), ("loss_norm", "variant"), ("tokenization", "variant")])
def test_table_equals_numbers_recomputed_from_the_run_folders(built, name, key):
    specs = smoke_ablations()[name]
    table = pd.read_csv(built / f"results/tables/{KINDS[name].table}.csv")
    per_group = recomputed(built, specs)
    variants = [v["name"] for v in yaml.safe_load(SMOKE.read_text())["ablations"][name].get("variants", [])] \
        or [v["name"] for v in DEFAULT["ablations"][name]["variants"]]
    assert list(table["variant"]) == variants  # declaration order
    for variant, row in zip(variants, table.itertuples()):
        values = np.array(per_group[f"abl-{name}-{variant}"])
        assert row.n_seeds == len(values) == len(yaml.safe_load(SMOKE.read_text())["ablations"][name]["seeds"])
        assert row.r2_mean == pytest.approx(values[:, 0].mean(), abs=1e-9)
        if len(values) > 1:  # tokenization: two seeds
            assert row.r2_std == pytest.approx(values[:, 0].std(ddof=1), abs=1e-9)
        else:
            assert np.isnan(row.r2_std)
        assert row.mae_mean == pytest.approx(values[:, 1].mean(), abs=1e-6)
    if name == "tokenization":
        for variant, row in zip(variants, table.itertuples()):
            runs = [rid for rid, s in specs.items() if s.group == f"abl-tokenization-{variant}"]
            norms = np.concatenate([pd.read_csv(built / f"results/runs/{rid}/history.csv")["grad_norm_median"]
                                    for rid in runs])
            assert row.grad_norm_median == pytest.approx(np.median([np.median(
                pd.read_csv(built / f"results/runs/{rid}/history.csv")["grad_norm_median"]) for rid in runs]))
            assert np.all(norms > 0)
            fits = [json.loads((built / f"results/runs/{rid}/metrics.json").read_text())["fit"] for rid in runs]
            assert row.diverged == sum(f["skipped_steps"] > 0 for f in fits)
            assert row.failed == sum(f["skipped_steps"] > 0 or f["best_val_r2"] <= 0 for f in fits)
        sw = table.set_index("variant").loc["sw-p64-s32"]
        assert (sw.tokenizer, sw.patch, sw.stride) == ("SW", 64, 32)


@pytest.mark.workflow
def test_multitask_table_has_every_label_of_every_setting(built):
    specs = smoke_ablations()["multitask"]
    table = pd.read_csv(built / "results/tables/multitask.csv")
    for (label, setting), row in table.set_index(["label", "setting"]).iterrows():
        runs = [rid for rid, s in specs.items() if s.group == f"abl-multitask-{setting}"]
        values = list(recomputed(built, {rid: specs[rid] for rid in runs}, label).values())[0]
        assert row.r2_mean == pytest.approx(np.mean([v[0] for v in values]), abs=1e-9)
    assert sorted(table[table["setting"] == "teff-logg-mh"]["label"]) == ["M_H", "Teff", "logg"]
    assert list(table[table["setting"] == "logg"]["label"]) == ["logg"]
    assert list(table[table["setting"] == "teff"]["label"]) == ["Teff"]
    # a run that does not predict log g is scored by its own label (metrics_test.csv, as runs.csv)
    rid = next(r for r, s in specs.items() if s.group == "abl-multitask-teff")
    pooled = pd.read_csv(built / f"results/runs/{rid}/metrics_test.csv").query("view == 'pooled'").iloc[0]
    (r2, mae), = list(recomputed(built, {rid: specs[rid]}, "Teff").values())[0]
    assert pooled["r2"] == pytest.approx(r2, abs=1e-9) and pooled["mae"] == pytest.approx(mae, abs=1e-6)


@pytest.mark.workflow
def test_robustness_matrix_agrees_with_the_standard_evaluation(built):
    """At test noise 1.0 the cross-noise evaluation sees exactly the pooled test spectra of
    evaluate_run, so the matrix's R² there equals the mean of the runs' metrics_test.csv."""
    specs = smoke_ablations()["robustness"]
    table = pd.read_csv(built / "results/tables/robustness_matrix.csv")
    assert sorted(table["test_noise"].unique()) == [0.5, 1.0, 2.0]
    for row in table[table["test_noise"] == 1.0].itertuples():
        runs = [rid for rid, s in specs.items() if s.model == row.model and s.noise_level == row.train_noise]
        pooled = [pd.read_csv(built / f"results/runs/{rid}/metrics_test.csv").query("view == 'pooled'")["r2"].iloc[0]
                  for rid in runs]
        assert len(runs) == row.n_seeds == 1  # the smoke config's one seed
        assert row.r2_mean == pytest.approx(np.mean(pooled), abs=1e-9)
    lgb = table[table["model"] == "lightgbm"].groupby("test_noise")["r2_mean"].mean()
    assert lgb[0.5] > lgb[2.0]  # more test noise, less R²


@pytest.mark.workflow
def test_dry_run_of_one_table_lists_only_that_ablations_runs(tmp_path):
    r = run_snakemake(tmp_path, "results/tables/ablation_pe.csv", "-n", "--configfile", SMOKE)
    assert r.returncode == 0, r.stdout
    runs = set(re.findall(r"results/runs/([\w.-]+?)/metrics\.json", r.stdout))
    assert runs == set(smoke_ablations()["pe"]) and len(runs) == 3  # 3 encodings x 1 seed


@pytest.mark.parametrize("ablations,message", [
    ({"pe": {"variants": [{"name": "x", "optimiser": "sgd"}]}},
     "config key 'ablations.pe.variants[0].optimiser' is not allowed"),
    ({"tokenisation": {"base": {"model": "vit"}, "n_train": 200, "variants": [{"name": "x"}]}},
     "config key 'ablations.tokenisation' is not allowed "
     "(allowed: loss_norm, multitask, pe, robustness, tokenization)"),
    ({"pe": {"n_train": 123}}, "config key 'ablations.pe.n_train' = 123 is not in 'data.subsets'"),
])
@pytest.mark.workflow
def test_workflow_refuses_bad_ablation_config(tmp_path, ablations, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"ablations": ablations}))
    r = run_snakemake(tmp_path, "-n", "--configfile", SMOKE, cfg)
    assert r.returncode != 0 and message in r.stdout, r.stdout


# ----------------------------------------------------------------------------- tokenizer inits


