"""The config schema: defaults and the shipped configs."""
import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

from conftest import REPO, SCHEMA


def load(name):
    with open(REPO / "config" / name) as f:
        return yaml.safe_load(f)


def merged(name):
    """What the Snakefile sees for `--configfile config/<name>`: the file merged over config.yaml."""
    cfg = load("config.yaml")
    update_config(cfg, load(name))
    return cfg


def test_schema_fills_every_default():
    cfg = {}
    validate(cfg, str(SCHEMA))
    assert cfg["seed"] == 42 and cfg["threads"] == 2
    d = cfg["data"]
    assert d["source"] == "synthetic"
    assert d["train"] is d["val"] is d["test"] is None
    assert (d["n_train_pool"], d["n_val"], d["n_test"], d["chunk_size"]) == (50000, 2000, 2000, 1024)
    assert d["train_mags"] == d["test_mags"] == [20.5, 22.5]
    assert d["labels"] is None
    assert d["subsets"] == [2000, 5000, 10000, 20000, 50000]
    assert cfg["calibration"] == {"n_stars": 2048, "mags": [18.0, 20.0, 21.5, 22.0, 22.5]}


def test_partial_config_keeps_other_defaults():
    cfg = {"data": {"n_val": 10, "labels": {"logg": {"min": 2.0}}}}
    validate(cfg, str(SCHEMA))
    assert cfg["data"]["n_val"] == 10 and cfg["data"]["n_test"] == 2000
    assert cfg["data"]["labels"]["logg"] == {"min": 2.0, "distribution": "uniform"}
    assert cfg["calibration"]["n_stars"] == 2048


def test_default_config_restates_the_schema_defaults():
    """config.yaml is the laptop scale, which is exactly what the schema defaults describe."""
    defaults = {}
    validate(defaults, str(SCHEMA))
    default_config = load("config.yaml")
    validate(default_config, str(SCHEMA))  # fills the per-run-group defaults (seeds, labels, ...)
    assert default_config == defaults


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = merged(name)
    validate(cfg, str(SCHEMA))
    assert max(cfg["data"]["subsets"]) <= cfg["data"]["n_train_pool"]


def test_scales():
    paper, smoke = merged("paper.yaml"), merged("smoke.yaml")
    assert paper["data"]["subsets"] == [50000, 100000, 200000, 500000, 1000000]
    assert (paper["data"]["n_train_pool"], paper["data"]["n_val"], paper["data"]["n_test"]) == (1000000, 20000, 10000)
    assert smoke["data"]["subsets"] == [200, 400, 600]
    assert (smoke["data"]["n_train_pool"], smoke["data"]["n_val"], smoke["data"]["n_test"]) == (600, 200, 200)
    assert smoke["calibration"]["n_stars"] == 64


@pytest.mark.parametrize("bad", [
    {"data": {"n_tset": 5}},
    {"bogus": 1},
    {"data": {"n_val": "two"}},
    {"data": {"labels": {"logg": {"distribution": "normal"}}}},
    {"data": {"source": "hdf5"}},
    {"calibration": {"mags": []}},
])
def test_schema_itself_rejects(bad):
    """The schema is the source of truth: snakemake.utils.validate alone rejects these."""
    with pytest.raises(WorkflowError):
        validate(copy.deepcopy(bad), str(SCHEMA))
