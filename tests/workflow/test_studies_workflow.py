"""The studies (attribution, pre-train -> fine-tune, domain shift, nuisances) built by
Snakemake on config/smoke.yaml in a temporary directory, their tables checked against the saved
models and against independent recomputation."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_build, run_snakemake
from specvit.pipeline.config import load_config
from specvit.pipeline.seeds import SEED_OFFSETS

pytestmark = pytest.mark.workflow

SMOKE = REPO / "config" / "smoke.yaml"
TABLES = ["attribution_lines", "pretrain_finetune", "domain_shift", "nuisance_study"]
FIGURES = ["fig_attribution", "fig_attention_heads", "fig_pretrain_finetune", "fig_domain_shift", "fig_nuisance_study"]
# every table scores R² as 1 - MSE / Var(log g prior): uniform on [1, 5] in the smoke config
LOGG_PRIOR_VAR = 4.0**2 / 12

TARGETS = ([f"results/tables/{t}.{ext}" for t in TABLES for ext in ("csv", "md", "tex")]
           + [f"results/figures/{f}.{ext}" for f in FIGURES for ext in ("pdf", "png")])
SEED = 42
TEST_NOISE_SEED = SEED + SEED_OFFSETS["test_noise"]
SHIFT_SEED = SEED + SEED_OFFSETS["shift"]


def study_job_counts(cfg_path) -> dict:
    """Jobs of the studies' rules in a dry run of `all` with the config at ``cfg_path`` (laid over
    the defaults), for the dry-run test of tests/workflow/test_workflow.py."""
    cfg = load_config(cfg_path)
    pre, shifts = cfg["pretrain"], cfg["domain_shift"]["severities"]
    nuisance = {"nuisance_split": 3, "nuisance_subset": 1, "nuisance_train": 2, "nuisance_eval": 2,
                "nuisance_study": 1, "fig_nuisance_study": 1} if cfg["nuisance_study"]["enabled"] else {}
    return {"attribution": 1, "fig_attribution": 1, "pretrain_run": 1,
            "finetune_run": 2 * len(pre["n_finetune"]) * len(pre["seeds"]), "pretrain_finetune": 1,
            "fig_pretrain_finetune": 1, "shift_eval": len(shifts), "domain_shift": 1, "fig_domain_shift": 1,
            **nuisance}


@pytest.fixture(scope="module")
def built(tmp_path_factory, core_build):
    """The studies' targets built on a copy of the shared core build (its data and runs are theirs too)."""
    work = copy_build(core_build, tmp_path_factory.mktemp("studies") / "work")
    # --configfile takes several values: targets first
    r = run_snakemake(work, *TARGETS, "--cores", "2", "--configfile", SMOKE, timeout=900)
    assert r.returncode == 0, r.stdout[-5000:]
    return work


def test_targets_and_logs(built):
    for t in TARGETS:
        assert (built / t).stat().st_size > 0, t
    for log in ("studies/attribution.log", "studies/pretrain.log", "studies/shift_rv.log", "tables/domain_shift.log"):
        assert (built / "results" / "logs" / log).is_file()
    # the shifted test files are scratch: validated, used and removed
    assert not list((built / "results" / "studies" / "domain_shift").rglob("test_*.h5"))
    r = run_snakemake(built, *TARGETS, "-n", "--configfile", SMOKE)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout, r.stdout[-3000:]


def test_attribution_table_and_completeness(built):
    table = pd.read_csv(built / "results/tables/attribution_lines.csv")
    assert list(table.columns[:3]) == ["group", "method", "feature"]
    for col in ("window_A", "attribution_fraction", "pixel_fraction", "corr_with_dflux_dlogg"):
        assert col in table.columns
    assert table["group"].iloc[0] == "all" and set(table["method"]) == {"integrated_gradients", "attention_rollout"}
    lines = table[table["feature"] != "whole spectrum"]
    assert lines["attribution_fraction"].between(0, 1).all() and lines["pixel_fraction"].between(0, 1).all()
    with np.load(built / "results/studies/attribution/attribution.npz") as f:
        err, gap, n = f["completeness_error"], f["gap"], f["n_stars"]
        assert f["rollout"].shape == f["ig_abs"].shape
        # the table's fractions are those of the stored mean attributions
        ig_all, wave = f["ig_abs"][0], f["wave"]
    assert err.size == 40 and n[0] == 40
    assert np.abs(err).max() < 1e-2 * np.abs(gap).max()
    ca = table[(table["group"] == "all") & (table["method"] == "integrated_gradients") & (table["feature"] == "Ca II")]
    near = np.zeros(wave.size, bool)
    for c in (8498.02, 8542.09, 8662.14):
        near |= np.abs(wave - c) <= 10.0
    assert float(ca["attribution_fraction"].iloc[0]) == pytest.approx(ig_all[near].sum() / ig_all.sum(), rel=1e-6)
    assert float(ca["pixel_fraction"].iloc[0]) == pytest.approx(near.mean())


def test_pretrain_finetune_table_matches_the_saved_models(built):
    from specvit.evaluation.metrics import point_metrics
    from specvit.evaluation.predictions import view_inputs
    from specvit.training.factory import load_model

    table = pd.read_csv(built / "results/tables/pretrain_finetune.csv")
    assert list(table.columns[:5]) == ["n_finetune", "setting", "seed", "r2", "mae"]
    assert sorted(map(tuple, table[["setting", "n_finetune"]].to_numpy())) == [
        ("finetune", 100), ("finetune", 200), ("pretrained", 0), ("scratch", 100), ("scratch", 200)]
    pre = json.loads((built / "results/studies/pretrain/pretrained/metrics.json").read_text())
    assert pre["labels"] == ["Teff", "logg", "M_H", "a_M", "C_M"] and pre["n_train"] == 600
    test = built / "results/data/test.h5"
    (_, x, _), = view_inputs(test, "pooled", noise_level=1.0, seed=TEST_NOISE_SEED)
    from specvit.data.contract import read_labels

    truth = read_labels(test, ["logg"])["logg"]
    for setting, n in (("finetune", 100), ("scratch", 200)):
        model = load_model(built / f"results/studies/pretrain/{setting}-N{n}-s0/model")
        m = point_metrics(truth, model.predict(x)["logg"], variance=LOGG_PRIOR_VAR)
        row = table[(table["setting"] == setting) & (table["n_finetune"] == n)].iloc[0]
        assert row["r2"] == pytest.approx(m["r2"], abs=1e-9) and row["mae"] == pytest.approx(m["mae"], abs=1e-9)
    ft = json.loads((built / "results/studies/pretrain/finetune-N100-s0/metrics.json").read_text())
    assert ft["fit"]["init_labels_copied"] == ["logg"] and ft["init_from"].endswith("pretrained/model")


def test_domain_shift_table_against_independent_recomputation(built, tmp_path):
    from specvit.data.contract import read_labels
    from specvit.evaluation.metrics import point_metrics
    from specvit.evaluation.predictions import view_inputs
    from specvit.studies.shifts import shift_file
    from specvit.training.factory import load_model

    table = pd.read_csv(built / "results/tables/domain_shift.csv")
    assert list(table.columns) == ["shift", "severity", "model", "r2", "mae"]
    assert set(table["shift"]) == {"rv", "lsf", "continuum", "sky", "loggf"}
    assert set(table["model"]) == {"vit-tiny", "lightgbm", "vit-tiny + fine-tune"}
    base = table[table["severity"] == 0]
    assert base.groupby("model")["r2"].nunique().eq(1).all()          # severity 0: one test set for every shift
    tuned = table[table["model"] == "vit-tiny + fine-tune"]
    smoke = yaml.safe_load(SMOKE.read_text())["domain_shift"]["severities"]
    assert sorted(zip(tuned["shift"], tuned["severity"])) == sorted((s, v[0]) for s, v in smoke.items())
    # the RV row of LightGBM, recomputed from the test file, the saved model and the shift transform
    test = built / "results/data/test.h5"
    lgb = load_model(built / "results/runs/lightgbm-N600-s0/model")
    truth = read_labels(test, ["logg"])["logg"]
    shifted = shift_file(test, tmp_path / "rv.h5", "rv", 100.0, SHIFT_SEED)
    for path, severity in ((test, 0.0), (shifted, 100.0)):
        (_, x, _), = view_inputs(path, "pooled", noise_level=1.0, seed=TEST_NOISE_SEED)
        m = point_metrics(truth, lgb.predict(x)["logg"], variance=LOGG_PRIOR_VAR)
        row = table[(table["shift"] == "rv") & (table["severity"] == severity) & (table["model"] == "lightgbm")]
        assert float(row["r2"].iloc[0]) == pytest.approx(m["r2"], abs=1e-9)
    # ... and Table 3's pooled view: at severity 0 LightGBM's R2 is that of its pooled test metrics
    core = run_snakemake(built, "results/runs/lightgbm-N600-s0/metrics_test.csv", "--cores", "2", "--configfile", SMOKE)
    assert core.returncode == 0, core.stdout[-3000:]
    pooled = pd.read_csv(built / "results/runs/lightgbm-N600-s0/metrics_test.csv").query("view == 'pooled'")
    lgb0 = base[(base["model"] == "lightgbm")]["r2"].iloc[0]
    assert float(pooled["r2"].iloc[0]) == pytest.approx(lgb0, abs=1e-9)


def test_nuisance_study_data_runs_and_table(built):
    """The study's splits carry the nuisances (truth as labels), its runs train on them, and its table holds
    their sweep, the clean runs' sweep and the ceilings of ceiling.csv (smoke: N = 200, 100 test stars)."""
    from specvit.data.contract import read_labels, validate_file
    from specvit.evaluation.metrics import point_metrics
    from specvit.evaluation.predictions import read_predictions

    data = built / "results/studies/nuisance/data"
    for split, n in (("train", 200), ("val", 100), ("test", 100)):
        info = validate_file(data / f"{split}.h5")
        assert info.n == n and info.label_names[-4:] == ("cont_0", "cont_1", "cont_2", "rv"), split
        assert info.attrs["nuisances"] == "cont2+rv" and info.attrs["seed"] == SEED + SEED_OFFSETS[f"nuisance_{split}"]
    rv = read_labels(data / "test.h5", ["rv"])["rv"]
    assert 10.0 < np.std(rv) < 30.0  # the smoke config keeps the default spread, 20 km/s
    table = pd.read_csv(built / "results/tables/nuisance_study.csv")
    models = table[table["source"] == "model"]
    assert sorted(set(zip(models["case"], models["run_id"]))) == [
        ("clean", "lightgbm-N200-s0"), ("clean", "vit-tiny-N200-s0"),
        ("nuisance", "nuisance-lightgbm-N200-s0"), ("nuisance", "nuisance-vit-tiny-N200-s0")]
    assert set(models[models["case"] == "nuisance"]["dims"]) == {"5d+cont2+rv"}
    run = built / "results/studies/nuisance/runs/nuisance-lightgbm-N200-s0"
    assert json.loads((run / "metrics.json").read_text())["n_train"] == 200
    preds = read_predictions(run / "predictions_sweep.h5")
    at22 = preds[preds["mag"] == 22.0]
    assert len(at22) == 100
    row = models[(models["run_id"] == "nuisance-lightgbm-N200-s0") & (models["mag"] == 22.0)]
    expected = point_metrics(at22["true_logg"], at22["pred_logg"], variance=LOGG_PRIOR_VAR)["r2"]
    assert row["r2"].item() == pytest.approx(expected, abs=1e-9)
    ceiling = pd.read_csv(built / "results/tables/ceiling.csv")
    clean = table[(table["source"] == "ceiling") & (table["case"] == "clean")]
    expected = ceiling[ceiling["dims"] == "5d"]
    assert sorted(zip(clean["name"], clean["mag"], clean["r2"])) == sorted(
        zip(expected["kind"], expected["mag"], expected["r2"]))
    assert "mmse_sim" in set(clean["name"])


def test_external_test_file(built, tmp_path):
    """`eval.external`: a user's labelled file in the contract is tested like the test split."""
    from specvit.studies.shifts import shift_file

    work = tmp_path / "work"
    shutil.copytree(built / "results", work / "results", symlinks=True)
    shutil.copytree(built / ".snakemake", work / ".snakemake", symlinks=True)
    ext = shift_file(work / "results/data/test.h5", tmp_path / "survey_like.h5", "continuum", 0.05, 3)
    cfg = tmp_path / "ext.yaml"
    cfg.write_text(yaml.safe_dump({"eval": {"external": [str(ext)]}}))
    r = run_snakemake(work, "results/tables/domain_shift.csv", "--cores", "2", "--configfile", SMOKE, cfg)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "rule external_eval" in r.stdout and "rule shift_eval" not in r.stdout  # only the new part runs
    table = pd.read_csv(work / "results/tables/domain_shift.csv")
    ext_rows = table[table["shift"] == "external:survey_like"]
    assert sorted(ext_rows["model"]) == ["lightgbm", "vit-tiny"] and ext_rows["r2"].notna().all()
    # already-noisy (observed) flux is scored as it is: only the external part reruns
    cfg.write_text(yaml.safe_dump({"eval": {"external": [str(ext)], "external_add_noise": False}}))
    r = run_snakemake(work, "results/tables/domain_shift.csv", "--cores", "2", "--configfile", SMOKE, cfg)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "rule external_eval" in r.stdout and "rule shift_eval" not in r.stdout
    from specvit.data.contract import read_arrays, read_labels
    from specvit.evaluation.metrics import point_metrics
    from specvit.training.factory import load_model

    flux = read_arrays(ext)[0]
    lgb = load_model(work / "results/runs/lightgbm-N600-s0/model")
    expected = point_metrics(read_labels(ext, ["logg"])["logg"], lgb.predict(flux)["logg"],
                             variance=LOGG_PRIOR_VAR)["r2"]
    table = pd.read_csv(work / "results/tables/domain_shift.csv").set_index(["shift", "model"])
    assert table.loc[("external:survey_like", "lightgbm"), "r2"] == pytest.approx(expected, abs=1e-9)


def test_bad_config_is_named(tmp_path):
    for cfg, msgs in (({"eval": {"external": ["/nonexistent/ext.h5"]}, "pretrain": {"n_finetune": [100, 5000]}},
                       ["config key 'eval.external': file '/nonexistent/ext.h5' does not exist",
                        "config key 'pretrain.n_finetune' has N=5000, more than 'data.n_train_pool'=600"]),
                      ({"attribution": {"run": "lightgbm-N600-s0"}},
                       ["config key 'attribution.run': 'lightgbm-N600-s0' is not a ViT run"]),
                      ({"domain_shift": {"models": ["xgboost"]}},
                       ["config key 'domain_shift.models': ['xgboost'] are not run groups"])):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(cfg))
        r = run_snakemake(tmp_path, "-n", "--configfile", SMOKE, path)
        assert r.returncode != 0, r.stdout[-2000:]
        for msg in msgs:
            assert msg in r.stdout, r.stdout[-2000:]
    assert not (tmp_path / "results").exists()


def test_external_file_on_another_grid_is_refused(tmp_path):
    from specvit.data.writer import write_split
    from specvit.physics.spectrum import pfs_red_wave
    from specvit.studies.domain_shift import check_external

    wave = np.linspace(6000.0, 7000.0, 100)
    path = tmp_path / "other.h5"
    flux = 1 + 0.1 * np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)  # valid but for its grid
    write_split(path, wave, flux, np.ones((3, 100), np.float32), {"logg": np.ones(3, np.float32)}, {"source": "user"})
    with pytest.raises(ValueError, match=r"other.h5 has a wavelength grid of 100 pixels .* expected the training grid "
                                         r"of 4096 pixels .* resample it first"):
        check_external(path, pfs_red_wave())


def test_a_disabled_study_leaves_rule_all(tmp_path):
    """`enabled: false` takes a study's tables and figures (and its jobs) out of `rule all`."""
    cfg = tmp_path / "off.yaml"
    cfg.write_text(yaml.safe_dump({"ablations": None, "attribution": {"enabled": False},
                                   "pretrain": {"enabled": False}, "domain_shift": {"enabled": True}}))
    r = run_snakemake(tmp_path, "-n", "--configfile", SMOKE, cfg)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "fig_domain_shift" in r.stdout
    for rule in ("attribution", "pretrain_run", "finetune_run", "fig_pretrain_finetune", "ablation_table"):
        assert f"rule {rule}:" not in r.stdout, rule
