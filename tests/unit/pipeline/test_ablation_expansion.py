"""Ablations declared in the config expand into ordinary runs; bad declarations name their key."""
import pytest

from specvit.pipeline.ablations import ablation_of, expand_ablations, noise_levels_by_run
from specvit.pipeline.config import load_config
from specvit.pipeline.errors import ConfigError
from specvit.studies.ablations import KINDS

DEFAULT = load_config()
TRAINING = DEFAULT["training"]


def declared(**changes):
    pe = {"base": {"model": "vit", "preset": "tiny", "train": {"lr": 0.001, "epochs": 3}},
          "n_train": 200, "seeds": [0, 1],
          "variants": [{"name": "none", "vit": {"pos_encoding": "none"}},
                       {"name": "rope", "vit": {"pos_encoding": "rope"}, "train": {"epochs": 5}}]}
    pe.update(changes)
    return {"pe": pe}


def test_variants_expand_into_readable_runs_with_merged_overrides():
    specs = expand_ablations(declared(), TRAINING, subsets=[200, 400])["pe"]
    assert list(specs) == ["abl-pe-none-N200-s0", "abl-pe-none-N200-s1", "abl-pe-rope-N200-s0", "abl-pe-rope-N200-s1"]
    rope = specs["abl-pe-rope-N200-s1"]
    assert rope.group == "abl-pe-rope" and rope.seed == 1 and rope.n_train == 200
    assert rope.vit["pos_encoding"] == "rope" and rope.vit["patch"] == 64       # preset kept, field overridden
    assert rope.train["epochs"] == 5 and rope.train["lr"] == 0.001              # train merged key by key
    assert rope.train["batch_size"] == TRAINING["batch_size"] and rope.train["seed"] == 1
    assert specs["abl-pe-none-N200-s0"].train["epochs"] == 3
    # same declaration -> same runs (ids and specs are stable)
    assert expand_ablations(declared(), TRAINING, subsets=[200]) == {"pe": specs}


def test_training_noise_level_of_a_vit_variant_reaches_the_trainer():
    decl = {"robustness": {"base": {"model": "vit", "preset": "tiny"}, "n_train": 200, "seeds": [0],
                           "test_noise": [1.0, 2.0],
                           "variants": [{"name": "n2", "noise_level": 2.0}, {"name": "n1"},
                                        {"name": "lgb", "model": "lightgbm", "noise_level": 0.5}]}}
    specs = expand_ablations(decl, TRAINING)["robustness"]
    assert specs["abl-robustness-n2-N200-s0"].noise_level == 2.0
    assert specs["abl-robustness-n2-N200-s0"].train["noise_level"] == 2.0
    assert "noise_level" not in specs["abl-robustness-n1-N200-s0"].train  # default: spec unchanged
    assert specs["abl-robustness-lgb-N200-s0"].model == "lightgbm" and specs["abl-robustness-lgb-N200-s0"].train == {}


@pytest.mark.parametrize("decl,message", [
    ({"pos": declared()["pe"]}, "config key 'ablations.pos': unknown ablation 'pos'"),
    (declared(variants=[{"name": "x", "vit": {"pos_encoding": "none"}, "optimizer": "sgd"}]),
     "config key 'ablations.pe.variants[0]' (x): unknown variant field(s) ['optimizer']"),
    (declared(variants=[{"name": "x", "vit": {"pos_encodings": "none"}}]),
     "unknown ViTConfig field(s) ['pos_encodings']"),
    (declared(variants=[{"name": "x"}, {"name": "x"}]), "variant name 'x' is declared twice"),
    (declared(variants=[]), "config key 'ablations.pe.variants' is empty"),
    (declared(n_train=300), "config key 'ablations.pe.n_train' = 300 is not in 'data.subsets' [200, 400]"),
])
def test_bad_declarations_fail_with_the_config_key(decl, message):
    with pytest.raises(ValueError) as err:
        expand_ablations(decl, TRAINING, subsets=[200, 400])
    assert message in str(err.value)


def test_a_disabled_ablation_has_no_runs():
    assert expand_ablations({"pe": None, **declared()}, TRAINING) .keys() == {"pe"}
    assert expand_ablations({"pe": None}, TRAINING) == {}
    assert expand_ablations(None, TRAINING) == {}


def test_the_problems_of_every_ablation_are_listed_together():
    bad_variant = {**declared()["pe"], "variants": [{"name": "x", "vit": {"depth": 0}}]}
    decl = {**declared(n_train=300), "multitask": bad_variant}
    with pytest.raises(ConfigError) as err:
        expand_ablations(decl, TRAINING, subsets=[200, 400])
    assert len(err.value.messages) == 2
    assert err.value.messages[0].startswith("config key 'ablations.pe.n_train' = 300 is not in 'data.subsets'")
    assert err.value.messages[1].startswith(
        "config key 'ablations.multitask: variants[0] (abl-multitask-x)': ViTConfig.depth=0")


def test_noise_levels_by_run_and_table_names_of_the_default_ablations():
    ablations = expand_ablations(DEFAULT["ablations"], TRAINING, DEFAULT["data"]["subsets"])
    noise = noise_levels_by_run(DEFAULT["ablations"], ablations)
    assert set(noise) == set(ablations["robustness"]) and set(map(tuple, noise.values())) == {(0.5, 1.0, 2.0)}
    assert ablation_of(ablations, "table")["ablation_pe"] == "pe"
    assert ablation_of(ablations, "figure") == {k.figure: a for a, k in KINDS.items()}
