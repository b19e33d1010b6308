"""The config schema: defaults, the shipped configs, and clear errors for wrong keys and types."""

import pytest
import yaml
from snakemake.utils import update_config

from conftest import REPO


def load(name):
    with open(REPO / "config" / name) as f:
        return yaml.safe_load(f)


def merged(name):
    """What the Snakefile sees for `--configfile config/<name>`: the file merged over config.yaml."""
    cfg = load("config.yaml")
    update_config(cfg, load(name))
    return cfg


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
