"""The studies of a config as the workflow runs them: which runs they use, their settings, run specs,
inputs and targets."""
import re

import pytest

from conftest import REPO
from specvit.physics.labels import LABEL_NAMES
from specvit.pipeline import targets
from specvit.pipeline.config import load_config, prepare
from specvit.pipeline.errors import ConfigError
from specvit.pipeline.studies import PRETRAIN_DIR, plan_studies, small_run_dir

SMOKE = REPO / "config" / "smoke.yaml"


def plan(**overrides):
    return prepare(load_config(SMOKE, overrides=overrides))


def test_the_runs_the_studies_use():
    s = plan().studies
    assert s.attribution_run == "vit-tiny-N600-s0"                         # the first ViT group's largest N
    assert s.shift_models == {"vit-tiny": "vit-tiny-N600-s0", "lightgbm": "lightgbm-N600-s0"}
    assert (s.shift_vit, s.shift_vit_run) == ("vit-tiny", "vit-tiny-N600-s0")
    assert s.pretrain_n == 600 and s.pretrain_seed == 0
    assert s.small_runs == [("finetune", 100, 0), ("finetune", 200, 0), ("scratch", 100, 0), ("scratch", 200, 0)]
    assert s.shifts == ("rv", "lsf", "continuum", "sky", "loggf")
    chosen = plan(attribution={"run": "vit-tiny-N200-s0"}, domain_shift={"models": ["ridge"]}).studies
    assert chosen.attribution_run == "vit-tiny-N200-s0"
    assert chosen.shift_models == {"ridge": "ridge-N600-s0"} and chosen.shift_vit_run is None


def test_trainer_settings_and_run_specs():
    p = plan()
    s, training = p.studies, p.config["training"]
    pre = s.pretrain_train("pretrained", 0)
    assert pre == {**training, "epochs": 2, "lr": 0.001, "seed": 0}          # pretrain_train over `training`
    assert s.pretrain_train("finetune", "1") == {**training, "epochs": 2, "lr": 0.0003, "seed": 1}
    assert s.pretrain_train("scratch", 0)["lr"] == 0.001
    spec = s.pretrain_spec("pretrained", 600, 0)
    assert spec.labels == LABEL_NAMES and spec.n_train == 600 and spec.run_id == "pretrain-pretrained-N600-s0"
    assert s.pretrain_spec("finetune", "100", "0").labels == ("logg",)
    shift = s.shift_finetune_spec("rv")
    assert shift.run_id == "shift-rv-finetune-N100-s0" and shift.vit == p.runs["vit-tiny-N600-s0"].vit
    assert shift.train == {**p.runs["vit-tiny-N600-s0"].train, "epochs": 1, "lr": 0.0003}


def test_inputs_of_the_study_jobs():
    s = plan().studies
    data = {split: targets.data_path(s.config, split) for split in targets.SPLITS}
    assert s.finetune_inputs("scratch", data) == data
    assert s.finetune_inputs("finetune", data) == {**data, "init": f"{PRETRAIN_DIR}/model/model.json"}
    assert small_run_dir("finetune", 100, 0) == "results/studies/pretrain/finetune-N100-s0"
    shift = s.shift_inputs(data)
    assert shift["vit"] == "results/runs/vit-tiny-N600-s0/model/model.json" and shift["train"] == data["train"]
    assert shift["models"] == [f"results/runs/{r}/model/model.json" for r in ("vit-tiny-N600-s0", "lightgbm-N600-s0")]


@pytest.mark.parametrize("off, tables, figures", [
    ("attribution", ["attribution_lines"], ["fig_attribution", "fig_attention_heads"]),
    ("pretrain", ["pretrain_finetune"], ["fig_pretrain_finetune"]),
    ("domain_shift", ["domain_shift"], ["fig_domain_shift"]),
    ("nuisance_study", ["nuisance_study"], ["fig_nuisance_study"]),
])
def test_a_disabled_study_leaves_the_targets(off, tables, figures):
    every = plan().all_targets()
    without = plan(**{off: {"enabled": False}}).all_targets()
    assert [t for t in every if t not in without] == targets.tables(*tables) + targets.figures(*figures)
    assert set(without) < set(every)


def test_all_targets_in_the_workflows_order():
    p = plan()
    every = p.all_targets()
    assert every[:9] == ([f"results/data/{s}.summary.json" for s in targets.SPLITS]
                         + [f"results/data/{s}.h5" for s in targets.SPLITS]
                         + [f"results/data/subsets/N{n}.npy" for n in (200, 400, 600)])
    assert every[-5:] == ["results/runs.csv", "results/tables/runs_compare.md", *targets.CHECKLIST_OUTPUTS]
    assert [f"results/runs/{r}/metrics.json" for r in p.runs] == [t for t in every if t.startswith("results/runs/")]
    results = p.result_targets()
    assert results[-1] == "results/runs.csv" and not set(targets.CHECKLIST_OUTPUTS) & set(results)
    assert "results/figures/learning_curves.png" in every
    assert "results/figures/learning_curves.png" not in plan(runs=[
        {"name": "r", "model": "ridge", "n_train": [600]}], domain_shift={"enabled": False}).all_targets()


def test_paths_of_the_users_files():
    cfg = {"data": {"source": "hdf5", "train": "a.h5", "val": "b.h5", "test": "c.h5", "subsets": [20]},
           "tracking": {"mlflow": True}}
    config = load_config(overrides=cfg)
    assert [targets.data_path(config, s) for s in targets.SPLITS] == ["a.h5", "b.h5", "c.h5"]
    assert targets.data_targets(config) == [f"results/data/{s}.summary.json" for s in targets.SPLITS] + [
        "results/data/subsets/N20.npy"]
    assert targets.tracking_targets(config)[-1] == "results/mlflow/logged.json"


def test_the_nuisance_studys_runs_and_their_clean_comparison():
    p = plan()
    s = p.studies
    assert s.nuisance_models == {"vit-tiny": "vit-tiny-N600-s0", "lightgbm": "lightgbm-N600-s0"}
    runs = s.nuisance_runs
    assert list(runs) == ["nuisance-vit-tiny-N200-s0", "nuisance-lightgbm-N200-s0"]  # smoke: n_train 200
    vit = runs["nuisance-vit-tiny-N200-s0"]
    main = p.runs["vit-tiny-N600-s0"]
    assert (vit.group, vit.n_train, vit.vit, vit.train) == ("nuisance-vit-tiny", 200, main.vit, main.train)
    assert runs["nuisance-lightgbm-N200-s0"].params == p.runs["lightgbm-N600-s0"].params
    # the clean comparison: the group's run at the study's N where it has one, else its main run
    assert s.nuisance_clean_runs == {"vit-tiny": "vit-tiny-N200-s0", "lightgbm": "lightgbm-N200-s0"}
    other_n = plan(nuisance_study={"n_train": 300, "models": ["lightgbm"]}).studies
    assert other_n.nuisance_clean_runs == {"lightgbm": "lightgbm-N600-s0"}
    assert list(other_n.nuisance_runs) == ["nuisance-lightgbm-N300-s0"]
    # the user's own data: the study needs the built-in model, so it is left out
    cfg = {"data": {"source": "hdf5", "train": "a.h5", "val": "b.h5", "test": "c.h5"}}
    assert plan_studies(load_config(SMOKE, overrides=cfg), p.runs, p.main_runs).nuisance_models == {}


@pytest.mark.parametrize("cfg, message", [
    ({"nuisance_study": {"models": ["ridge", "cnn"]}},
     "config key 'nuisance_study.models': ['cnn'] are not run groups"),
    ({"nuisance_study": {"models": ["ridge"]}},
     "config key 'nuisance_study.models': ['ridge'] are not ViT or LightGBM"),
    ({"nuisance_study": {"nuisances": {"continuum_degree": None, "rv": False}}},
     "config key 'nuisance_study.nuisances': a nuisance set needs a continuum"),
    ({"data": {"nuisances": {"continuum_degree": None}}}, "config key 'data.nuisances': a nuisance set needs"),
    ({"ceiling": {"nuisances": [{"continuum_degree": 2, "rv": True, "rv_rms_kms": 10.0}]}},
     "config key 'nuisance_study.nuisances' {'continuum_degree': 2, 'continuum_rms': 0.05, 'rv': True, "
     "'rv_rms_kms': 20.0} is not one of 'ceiling.nuisances'"),
])
def test_nuisance_study_problems_name_the_key(cfg, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        prepare(load_config(SMOKE, overrides=cfg))
