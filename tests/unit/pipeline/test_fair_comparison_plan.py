"""What a fair comparison adds to the plan: noisy copies (and their memory check), the seed runs of
Table 3 over seeds, and the augmentation study's arms."""
import copy

import pytest

from conftest import REPO
from specvit.pipeline.cluster import run_mem_mb
from specvit.pipeline.config import load_config, prepare
from specvit.pipeline.errors import ConfigError
from specvit.pipeline.runs import expand_runs
from specvit.training.spec import RunSpec

SMOKE = REPO / "config" / "smoke.yaml"


def plan_of(overrides=None):
    return prepare(load_config(SMOKE, overrides=copy.deepcopy(overrides or {})))


def problems(overrides):
    with pytest.raises(ConfigError) as err:
        plan_of(overrides)
    return err.value.messages


def test_noise_copies_reach_the_spec_and_only_a_set_key_is_written():
    runs = expand_runs([{"name": "lgb", "model": "lightgbm", "n_train": [100], "noise_copies": 4},
                        {"name": "ridge", "model": "ridge", "n_train": [100]}])
    assert runs["lgb-N100-s0"].noise_copies == 4 and runs["lgb-N100-s0"].to_dict()["noise_copies"] == 4
    # a run without copies keeps the spec it had before the key existed (its outputs stay up to date)
    assert "noise_copies" not in runs["ridge-N100-s0"].to_dict()
    again = runs["lgb-N100-s0"].to_dict()
    assert RunSpec(**{**again, "labels": tuple(again["labels"])}) == runs["lgb-N100-s0"]
    with pytest.raises(ValueError, match=r"'runs\[0\] \(v\).noise_copies' = 2: noisy copies are for "
                                         r"\['lightgbm', 'ridge'\].*fresh_noise: false"):
        expand_runs([{"name": "v", "model": "vit", "n_train": [100], "noise_copies": 2}])


def test_memory_of_the_copies_is_checked_when_the_config_loads():
    spec = expand_runs([{"name": "l", "model": "lightgbm", "n_train": [600], "noise_copies": 3}])["l-N600-s0"]
    one = expand_runs([{"name": "l", "model": "lightgbm", "n_train": [600]}])["l-N600-s0"]
    assert run_mem_mb(spec, 4096, 200) > run_mem_mb(one, 4096, 200)  # the copies are counted
    groups = copy.deepcopy(load_config(SMOKE)["runs"])
    groups[1]["noise_copies"] = 50
    msgs = problems({"runs": groups, "memory_mb": 2800, "augmentation": {"models": ["ridge"], "noise_copies": 40}})
    need = run_mem_mb(RunSpec("lightgbm-N600-s0", "lightgbm", "lightgbm", 600, 0, noise_copies=50), 4096, 200)
    assert msgs == [
        f"config key 'runs[1] (lightgbm).noise_copies' = 50: run lightgbm-N600-s0 would need about {need:,} MiB "
        f"(50 noisy copies of 600 x 4096 pixels), more than the 2,800 MiB of 'memory_mb'; lower the copies or N, "
        f"or raise 'memory_mb'",
        msgs[1]]
    assert msgs[1].startswith("config key 'augmentation.noise_copies' = 40: run aug-ridge-k40-N600-s0")
    assert plan_of({"runs": groups, "memory_mb": 10 ** 6}).runs["lightgbm-N600-s0"].noise_copies == 50


def test_seed_runs_add_seeds_at_the_largest_n_of_the_learning_models():
    plan = plan_of()
    assert plan.seed_runs == {"vit-tiny": ["vit-tiny-N600-s0", "vit-tiny-N600-s1"],
                              "lightgbm": ["lightgbm-N600-s0", "lightgbm-N600-s1"],
                              "ridge": ["ridge-N600-s0", "ridge-N600-s1"],
                              "template": ["template-N200-s0"]}  # the template fit keeps its own seed
    assert plan.runs["vit-tiny-N600-s1"].train["seed"] == 1
    assert plan.runs["vit-tiny-N600-s1"].vit == plan.runs["vit-tiny-N600-s0"].vit
    assert plan.table3_runs() == ["vit-tiny-N600-s0", "lightgbm-N600-s0", "ridge-N600-s0", "template-N200-s0"]
    # a group that declares several seeds shows them in Table 3 itself
    groups = copy.deepcopy(load_config(SMOKE)["runs"])
    groups[2]["seeds"] = [0, 3]
    assert [r for r in plan_of({"runs": groups}).table3_runs() if r.startswith("ridge")] == \
        ["ridge-N600-s0", "ridge-N600-s3"]


def test_augmentation_arms_reuse_the_groups_runs_and_switch_their_noise():
    plan = plan_of()
    arms = {a.name: a for a in plan.augmentation}
    assert list(arms) == ["vit-tiny", "aug-vit-tiny-fixed", "lightgbm", "aug-lightgbm-k2"]
    assert arms["vit-tiny"].runs == ("vit-tiny-N200-s0", "vit-tiny-N600-s0")  # the group's own runs
    assert arms["vit-tiny"].augmented and not arms["aug-vit-tiny-fixed"].augmented
    fixed = plan.runs["aug-vit-tiny-fixed-N600-s0"]
    assert fixed.train == {**plan.runs["vit-tiny-N600-s0"].train, "fresh_noise": False}
    k2 = plan.runs["aug-lightgbm-k2-N200-s0"]
    assert (k2.noise_copies, k2.params) == (2, plan.runs["lightgbm-N200-s0"].params)
    assert (arms["aug-lightgbm-k2"].noise_copies, arms["lightgbm"].noise_copies) == (2, 1)
    ridge = plan_of({"augmentation": {"models": ["ridge"], "noise_copies": 3}}).augmentation
    assert [(a.name, a.augmented) for a in ridge] == [("ridge", False), ("aug-ridge-k3", True)]
    assert plan_of({"augmentation": {"enabled": False}}).augmentation == []


def test_augmentation_problems_name_their_keys():
    assert problems({"augmentation": {"n_train": [200, 300]}}) == [
        "config key 'augmentation.n_train' has N=[300], which are not in 'data.subsets' [200, 400, 600]; add them "
        "there, or turn the study off ('augmentation: {enabled: false}')"]
    assert problems({"augmentation": {"models": ["xgb", "template"]}}) == [
        "config key 'augmentation.models': ['xgb'] are not run groups; groups: "
        "['lightgbm', 'ridge', 'template', 'vit-tiny']",
        "config key 'augmentation.models': ['template'] are not of a model the study compares "
        "['vit', 'lightgbm', 'ridge']"]


def test_targets_of_the_fair_comparison():
    targets = plan_of().all_targets()
    for t in ("results/tables/table3_seeds.csv", "results/figures/fig1_r2_vs_snr_seeds.pdf",
              "results/tables/model_differences.md", "results/tables/ceiling_scored_stars.csv",
              "results/tables/augmentation.csv", "results/tables/augmentation_slopes.md",
              "results/figures/fig_augmentation.png"):
        assert t in targets, t
    off = plan_of({"augmentation": {"enabled": False}}).all_targets()
    assert not [t for t in off if "augmentation" in t]
