"""The config schema: the one place where defaults live, and the shipped configs laid over it."""
import dataclasses

import pytest
import yaml

from conftest import REPO, SCHEMA
from specvit.physics.labels import LABEL_NAMES
from specvit.pipeline.config import load_config
from specvit.pipeline.schema import load_schema, merge, schema_defaults, schema_messages, with_defaults
from specvit.training import config as train_config
from specvit.training.config import TrainConfig


def load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_schema_fills_every_default():
    cfg = schema_defaults()
    assert cfg["seed"] == 42 and cfg["threads"] == 2
    d = cfg["data"]
    assert d["source"] == "synthetic"
    assert d["train"] is d["val"] is d["test"] is None
    assert (d["n_train_pool"], d["n_val"], d["n_test"], d["chunk_size"]) == (50000, 2000, 2000, 1024)
    assert d["train_mags"] == d["test_mags"] == [20.5, 22.5]
    assert d["labels"] is None
    assert d["subsets"] == [2000, 5000, 10000, 20000, 50000]
    assert cfg["calibration"] == {"n_stars": 2048, "mags": [18.0, 20.0, 21.5, 22.0, 22.5]}
    # defaults inside defaults: a run group's seeds, the tokenization ablation's gradient check
    assert all(g["seeds"] == [0] and g["labels"] == ["logg"] for g in cfg["runs"])
    assert cfg["ablations"]["tokenization"]["init_gradients"] == {"n_seeds": 8, "batch_size": 64}


def test_partial_config_keeps_other_defaults():
    cfg = with_defaults({"data": {"n_val": 10, "labels": {"logg": {"min": 2.0}}}})
    assert cfg["data"]["n_val"] == 10 and cfg["data"]["n_test"] == 2000
    assert cfg["data"]["labels"]["logg"] == {"min": 2.0, "distribution": "uniform"}
    assert cfg["calibration"]["n_stars"] == 2048


def test_nested_defaults_merge_key_by_key_and_lists_replace():
    cfg = with_defaults({"pretrain": {"pretrain_train": {"epochs": 2}}, "eval": {"mags": [20.0]},
                         "ablations": {"pe": None, "tokenization": {"n_train": 200}}})
    assert cfg["pretrain"]["pretrain_train"] == {"lr": 0.001, "epochs": 2}  # the default's lr kept
    assert cfg["eval"]["mags"] == [20.0]
    assert cfg["ablations"]["pe"] is None and cfg["ablations"]["tokenization"]["n_train"] == 200
    assert cfg["ablations"]["tokenization"]["variants"] == schema_defaults()["ablations"]["tokenization"]["variants"]
    assert merge({"a": {"b": 1}}, {"a": None}) == {"a": None} and merge({"a": None}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_default_config_restates_no_schema_default():
    """Defaults are stated once, in the schema: config.yaml holds nothing the schema already says."""
    assert load("config.yaml") == {}


def test_the_default_run_resolves_to_the_same_config():
    """`snakemake --cores 2` runs with exactly the config it ran with when config.yaml restated every
    default, apart from the keys added since (they hold the values that were hard-coded before, or
    that keep the old behaviour: a fresh noise draw every epoch, one noisy draw for the baselines), and
    the step budget of 2,000 that feeds small training sets, which the ablations and the pre-train /
    fine-tune study's small runs turn off to keep their fixed budgets, and the main ViT and LightGBM
    groups' smaller budgets that keep the main job within 20 minutes on 2 cores."""
    today = yaml.safe_load((REPO / "tests" / "unit" / "pipeline" / "resolved_default_config.yaml").read_text())
    resolved = load_config()
    assert resolved["ablations"]["tokenization"].pop("init_gradients") == {"n_seeds": 8, "batch_size": 64}
    assert (resolved["training"].pop("fresh_noise"), resolved["training"].pop("min_steps")) == (True, 2000)
    assert [g.pop("noise_copies") for g in resolved["runs"]] == [1, 1, 1, 1]
    assert [a["base"]["train"].pop("min_steps") for a in resolved["ablations"].values()] == [0] * 5
    assert resolved["pretrain"]["small_train"].pop("min_steps") == 0
    assert (resolved.pop("memory_mb"), resolved["eval"].pop("main_seeds")) == (None, [0, 1, 2])
    assert resolved.pop("augmentation") == {"enabled": True, "models": None, "n_train": None, "seeds": [0],
                                            "noise_copies": 4}
    ceiling = resolved.pop("ceiling")  # added outputs: the nuisance sets' and mmse_sim's rows of ceiling.csv
    assert ceiling["mmse_sim"]["enabled"] is True and len(ceiling["nuisances"]) == 1
    assert resolved["data"].pop("nuisances") is None  # clean spectra, as before
    assert resolved.pop("nuisance_study")["enabled"] is True  # an added study
    # the trainer's accelerator keys: on a CPU the host loader, eager, one process, as before
    assert [resolved["training"].pop(k) for k in ("device_data", "device_data_budget", "compile", "devices")] == [
        "auto", 0.5, False, 1]
    assert resolved["cluster"].pop("ddp_efficiency") == 0.9  # prices multi-GPU runs only
    # the main job's budget on a slow 2-core CPU: 25 ViT epochs at N = 50k (the smaller N are held at
    # min_steps); LightGBM's 700 trees at learning rate 0.07, its pixels in 63 bins
    groups = {g["name"]: g for g in resolved["runs"]}
    lgb = groups["lightgbm"]["params"]
    assert groups["vit-tiny"]["train"].pop("epochs") == 25
    assert [lgb.pop(k) for k in ("max_bin", "n_estimators", "learning_rate")] == [63, 700, 0.07]
    assert resolved == today


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(REPO / "config" / name)
    assert schema_messages(cfg) == []
    assert max(cfg["data"]["subsets"]) <= cfg["data"]["n_train_pool"]


def test_scales():
    paper, smoke = load_config(REPO / "config" / "paper.yaml"), load_config(REPO / "config" / "smoke.yaml")
    assert paper["data"]["subsets"] == [50000, 100000, 200000, 500000, 1000000]
    assert (paper["data"]["n_train_pool"], paper["data"]["n_val"], paper["data"]["n_test"]) == (1000000, 20000, 10000)
    assert smoke["data"]["subsets"] == [200, 400, 600]
    assert (smoke["data"]["n_train_pool"], smoke["data"]["n_val"], smoke["data"]["n_test"]) == (600, 200, 200)
    assert smoke["calibration"]["n_stars"] == 64
    # smoke.yaml's ablation bases merge into the defaults' (model and preset kept, epochs replaced)
    assert smoke["ablations"]["pe"]["base"] == {"model": "vit", "preset": "tiny",
                                                "train": {"lr": 0.001, "epochs": 2, "min_steps": 0}}


def test_train_config_and_the_schema_agree():
    """The trainer's defaults (TrainConfig) are the schema's `training` defaults; `noise_level` and
    `seed` are set per run (the run group's noise level and seed), so the schema has no such keys.
    One exception: `min_steps` is 2,000 in the workflow (every run spec carries the schema's value)
    and 0 in a TrainConfig built in code, which trains exactly its `epochs`."""
    training = load_schema()["properties"]["training"]["properties"]
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    per_run = {"noise_level", "seed"}
    assert set(fields) - per_run == set(training)
    assert per_run.isdisjoint(training)
    assert (TrainConfig().min_steps, training["min_steps"]["default"]) == (0, 2000)
    for name, prop in training.items():
        if name == "min_steps":
            continue
        f = fields[name]
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        assert default == prop["default"] and type(default) in (type(prop["default"]), float), name
    for name, allowed in (("loss", train_config.LOSSES), ("label_norm", train_config.LABEL_NORMS),
                          ("precision", train_config.PRECISIONS)):
        assert tuple(training[name]["enum"]) == allowed, name


def label_enums(node, path=""):
    """(path, enum) of every list of label names in the schema."""
    if isinstance(node, dict):
        if node.get("type") == "array" and "enum" in node.get("items", {}) and "logg" in node["items"]["enum"]:
            yield path, node["items"]["enum"]
        for key, value in node.items():
            yield from label_enums(value, f"{path}.{key}")


def test_the_schema_names_the_labels_of_the_package():
    schema = load_schema()
    enums = list(label_enums(schema))
    # the run groups' and the ablation variants' (YAML aliases repeat the latter inside each ablation)
    paths = {p for p, _ in enums}
    assert {".$defs.ablation_variant_fields.labels", ".properties.runs.items.properties.labels"} <= paths
    for path, enum in enums:
        assert tuple(enum) == LABEL_NAMES, path
    assert tuple(schema["properties"]["data"]["properties"]["labels"]["properties"]) == LABEL_NAMES


@pytest.mark.parametrize("bad", [
    {"data": {"n_tset": 5}},
    {"bogus": 1},
    {"data": {"n_val": "two"}},
    {"data": {"labels": {"logg": {"distribution": "normal"}}}},
    {"data": {"source": "hdf5"}},
    {"calibration": {"mags": []}},
    {"ablations": {"tokenization": {"init_gradients": {"n_seeds": 0}}}},
])
def test_schema_itself_rejects(bad):
    """The schema is the source of truth: it alone rejects these."""
    assert schema_messages(with_defaults(bad))


def test_the_schema_file_is_the_one_the_tests_read():
    assert load_schema() == yaml.safe_load(SCHEMA.read_text())
