"""The config schema: defaults, the shipped configs, and clear errors for wrong keys and types."""
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


def write_cfg(tmp_path, cfg):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("cfg, message", [
    ({"data": {"n_tset": 5}},
     "config key 'data.n_tset' is not allowed (allowed: chunk_size, labels, n_test, n_train_pool, n_val, "
     "source, subsets, test, test_mags, train, train_mags, val)"),
    ({"sed": 1}, "config key 'sed' is not allowed (allowed: ablations, attribution, calibration, cluster, data, "
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
    ({"data": {"subsets": [100, 60000]}},
     "config key 'data.subsets' has N=60000 larger than 'data.n_train_pool'=50000"),
    ({"data": {"test_mags": [22.0, 21.0]}}, "config key 'data.test_mags' must be [bright, faint]"),
    ({"data": {"labels": {"logg": {"min": 3.0, "max": 2.0}}}}, "config key 'data.labels.logg' needs min < max"),
])
def test_bad_config_names_the_key(tmp_path, snakemake_in, cfg, message):
    r = snakemake_in("-n", "--configfile", write_cfg(tmp_path, cfg))
    assert r.returncode != 0
    assert message in r.stdout, r.stdout


def test_all_errors_reported_at_once(tmp_path, snakemake_in):
    r = snakemake_in("-n", "--configfile", write_cfg(tmp_path, {"data": {"n_tset": 5, "n_val": "x"}, "foo": 1}))
    assert r.returncode != 0
    for key in ("data.n_tset", "data.n_val", "foo"):
        assert f"config key '{key}'" in r.stdout, r.stdout


def test_bad_key_on_command_line(snakemake_in):
    r = snakemake_in("-n", "--config", "data={bogus: 1}")
    assert r.returncode != 0
    assert "config key 'data.bogus' is not allowed" in r.stdout, r.stdout


def test_hdf5_without_paths(tmp_path, snakemake_in):
    r = snakemake_in("-n", "--configfile", write_cfg(tmp_path, {"data": {"source": "hdf5"}}))
    assert r.returncode != 0
    for split in ("train", "val", "test"):
        assert f"config key 'data.{split}' must be set (because data.source is 'hdf5')" in r.stdout, r.stdout


def test_hdf5_missing_file(tmp_path, snakemake_in):
    files = {s: str(tmp_path / f"{s}.h5") for s in ("train", "val", "test")}
    for s in ("train", "val"):
        open(files[s], "w").close()
    r = snakemake_in("-n", "--configfile", write_cfg(tmp_path, {"data": {"source": "hdf5", **files}}))
    assert r.returncode != 0
    assert f"config key 'data.test': file '{files['test']}' does not exist" in r.stdout, r.stdout
