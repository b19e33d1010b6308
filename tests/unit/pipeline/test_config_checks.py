"""The one entry point (specvit.pipeline.config.prepare): every problem of a config in one message,
each line naming its config key, with no Snakemake in between."""
import copy

import pytest
import yaml

from conftest import REPO
from specvit.pipeline.config import load_config, prepare
from specvit.pipeline.errors import ConfigError

SMOKE = REPO / "config" / "smoke.yaml"


def problems(cfg, *files):
    """The ConfigError of ``cfg`` laid over the default config (and ``files``), as the Snakefile checks it."""
    config = load_config(*files, overrides=copy.deepcopy(cfg))
    with pytest.raises(ConfigError) as err:
        prepare(config)
    return err.value


@pytest.mark.parametrize("cfg, message", [
    ({"data": {"n_tset": 5}},
     "config key 'data.n_tset' is not allowed (allowed: chunk_size, labels, n_test, n_train_pool, n_val, "
     "source, subsets, test, test_mags, train, train_mags, val)"),
    ({"sed": 1}, "config key 'sed' is not allowed (allowed: ablations, attribution, calibration, ceiling, cluster, data, "
                 "domain_shift, eval, pretrain, runs, seed, threads, tracking, training)"),
    ({"data": {"labels": {"Tef": {"min": 4000}}}}, "config key 'data.labels.Tef' is not allowed"),
    ({"data": {"n_val": "two"}}, "config key 'data.n_val' must be an integer, got 'two' (str)"),
    ({"seed": 1.5}, "config key 'seed' must be an integer, got 1.5 (float)"),
    ({"calibration": {"mags": 20}}, "config key 'calibration.mags' must be a list, got 20 (int)"),
    ({"data": {"subsets": [100, 0]}}, "config key 'data.subsets[1]' is invalid"),
    ({"data": {"source": "csv"}}, "config key 'data.source' must be one of ['synthetic', 'hdf5'], got 'csv'"),
    ({"data": {"labels": {"logg": {"distribution": "normal", "std": 0.5}}}},
     "config key 'data.labels.logg.mean' is required (because data.labels.logg.distribution is 'normal')"),
    ({"data": {"source": "hdf5", "train": "a.h5"}},
     "config key 'data.val' must be set (because data.source is 'hdf5')"),
    ({"runs": [{"name": "cnn", "model": "cnn", "n_train": [2000]}]},
     "config key 'runs[0].model' must be one of ['vit', 'lightgbm', 'ridge', 'template'], got 'cnn'"),
    ({"ablations": {"tokenization": {"init_gradients": {"batch_size": 0}}}},
     "config key 'ablations.tokenization.init_gradients.batch_size' is invalid: 0 is less than the minimum of 1"),
])
def test_schema_problems_name_the_key(cfg, message):
    err = problems(cfg)
    assert message in str(err), str(err)
    assert str(err).startswith("invalid config (schema: config/schema/config.schema.yaml):\n  - ")


def test_a_nested_string_from_the_command_line_gets_a_hint():
    """`--config data={n_val: 5}` reaches the config as a string inside a mapping."""
    assert ("config key 'data.n_val' must be an integer, got '5' (str) [snakemake passes values nested in "
            "--config as strings; use --configfile]") in str(problems({"data": {"n_val": "5"}}))


def test_all_schema_problems_at_once_sorted_by_key():
    err = problems({"data": {"n_tset": 5, "n_val": "x"}, "foo": 1})
    assert [m.split("'")[1] for m in err.messages] == ["data.n_tset", "data.n_val", "foo"]


@pytest.mark.parametrize("cfg, message", [
    ({"data": {"subsets": [100, 60000]}},
     "config key 'data.subsets' has N=60000 larger than 'data.n_train_pool'=50000"),
    ({"data": {"test_mags": [22.0, 21.0]}}, "config key 'data.test_mags' must be [bright, faint] with bright <= faint"),
    ({"data": {"labels": {"logg": {"min": 3.0, "max": 2.0}}}},
     "config key 'data.labels.logg' needs min < max, got min=3.0, max=2.0"),
    ({"eval": {"pred_vs_true_mags": [20.0, 24.0]}},
     "config key 'eval.pred_vs_true_mags' has [24.0], which are not in 'eval.mags'"),
    ({"runs": [{"name": "r", "model": "ridge", "n_train": [3000]}]},
     "config key 'runs[0].n_train' (r) has N=[3000], which are not in 'data.subsets'"),
    ({"runs": [{"name": "v", "model": "vit", "vit": {"tokenizer": "FFT"}, "n_train": [2000]}]},
     "config key 'runs[0] (v)': ViTConfig.tokenizer='FFT' is not one of 'C1D', 'SW'"),
    ({"runs": [{"name": "v", "model": "vit", "vit": {"pos_encoding": "fourier"}, "n_train": [2000]}]},
     "config key 'runs[0] (v)': ViTConfig.pos_encoding='fourier' is not one of 'none', 'learned', 'sinusoidal', "
     "'pipe', 'rope'"),
    ({"tracking": {"check_paper": {"tolerances": {"vit.pooled.r3": 0.1}}}},
     "config key 'tracking.check_paper.tolerances' has unknown number keys ['vit.pooled.r3']"),
    ({"ablations": {"pe": {"n_train": 3000}}},
     "config key 'ablations.pe.n_train' = 3000 is not in 'data.subsets' [2000, 5000, 10000, 20000, 50000]"),
    ({"attribution": {"run": "lightgbm-N50000-s0"}},
     "config key 'attribution.run': 'lightgbm-N50000-s0' is not a ViT run of this config; ViT runs: ["),
    ({"domain_shift": {"models": ["xgboost"]}}, "config key 'domain_shift.models': ['xgboost'] are not run groups"),
    ({"pretrain": {"n_pretrain": 3000}}, "config key 'pretrain.n_pretrain' = 3000 is not in 'data.subsets'"),
    ({"pretrain": {"preset": "huge"}}, "config key 'pretrain.preset': unknown preset 'huge'"),
    ({"pretrain": {"n_finetune": [100, 60000]}},
     "config key 'pretrain.n_finetune' has N=60000, more than 'data.n_train_pool'=50000"),
    ({"eval": {"external": ["/nonexistent/ext.h5"]}},
     "config key 'eval.external': file '/nonexistent/ext.h5' does not exist"),
])
def test_cross_key_run_and_study_problems_name_the_key(cfg, message):
    err = problems(cfg)
    assert message in str(err), str(err)
    assert str(err).startswith("invalid config:\n  - ")


def test_every_problem_of_every_part_in_one_message():
    """Consistency, run groups, ablations and tolerances: found together, not one per attempt."""
    err = problems({"data": {"test_mags": [22.0, 21.0]},
                    "runs": [{"name": "a", "model": "vit", "preset": "huge", "n_train": [2000]},
                             {"name": "b", "model": "lightgbm", "params": {"n_trees": 5}, "n_train": [2000]}],
                    "ablations": {"pe": {"n_train": 3000}},
                    "tracking": {"check_paper": {"tolerances": {"nope": 0.1}}}})
    keys = [m.split("'")[1] for m in err.messages]
    assert keys == ["data.test_mags", "tracking.check_paper.tolerances", "runs[0] (a)", "runs[1] (b)",
                    "ablations.pe.n_train"], err.messages


def test_cross_key_and_study_problems_together():
    err = problems({"data": {"test_mags": [22.0, 21.0]}, "domain_shift": {"models": ["xgboost"]}})
    assert [m.split("'")[1] for m in err.messages] == ["data.test_mags", "domain_shift.models"], err.messages


def test_studies_problems_together():
    err = problems({"eval": {"external": ["/nonexistent/ext.h5"]}, "pretrain": {"n_finetune": [100, 5000]},
                    "attribution": {"run": "lightgbm-N600-s0"}, "domain_shift": {"models": ["xgboost"]}}, SMOKE)
    assert [m.split("'")[1] for m in err.messages] == [
        "pretrain.n_finetune", "eval.external", "attribution.run", "domain_shift.models"], err.messages


def test_missing_user_files_are_named(tmp_path):
    files = {s: str(tmp_path / f"{s}.h5") for s in ("train", "val", "test")}
    err = problems({"data": {"source": "hdf5", **files}})
    for split in ("train", "val", "test"):
        assert f"config key 'data.{split}': file '{files[split]}' does not exist" in err.messages


def test_a_valid_config_gives_its_plan_and_fills_the_defaults_in_place():
    config = yaml.safe_load(SMOKE.read_text())
    plan = prepare(config)
    assert config["eval"]["n_boot"] == 200 and config["pretrain"]["finetune_lr"] == 0.0003  # filled in place
    assert plan.group_runs[:2] == ["vit-tiny-N200-s0", "vit-tiny-N600-s0"]
    assert plan.main_runs == {"vit-tiny": "vit-tiny-N600-s0", "lightgbm": "lightgbm-N600-s0",
                              "ridge": "ridge-N600-s0", "template": "template-N200-s0"}
    assert set(plan.ablations) == {"tokenization", "pe", "loss_norm", "multitask", "robustness"}
    assert set(plan.runs) == set(plan.group_runs) | {r for specs in plan.ablations.values() for r in specs}
    assert plan.vit_runs() == ["vit-tiny-N200-s0", "vit-tiny-N600-s0"]
