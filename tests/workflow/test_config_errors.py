"""The workflow checks the config through the one entry point (specvit.pipeline.config.prepare) and
stops before any job runs. The messages themselves are tested without Snakemake in
tests/unit/pipeline/test_config_checks.py and tests/unit/pipeline/test_user_files.py."""
import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.workflow


def write_cfg(tmp_path, cfg):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_every_problem_in_one_message_before_any_job(tmp_path, snakemake_in):
    r = snakemake_in("--cores", "1", "--configfile",
                     write_cfg(tmp_path, {"data": {"n_tset": 5, "n_val": "x"}, "foo": 1}))
    assert r.returncode != 0
    assert "invalid config (schema: config/schema/config.schema.yaml):" in r.stdout, r.stdout
    for key in ("data.n_tset", "data.n_val", "foo"):
        assert f"config key '{key}'" in r.stdout, r.stdout
    assert "Traceback" not in r.stdout
    assert not (tmp_path / "results").exists()


def test_bad_key_on_command_line(snakemake_in):
    r = snakemake_in("-n", "--config", "data={bogus: 1}")
    assert r.returncode != 0
    assert "config key 'data.bogus' is not allowed" in r.stdout, r.stdout


def test_what_cannot_apply_to_the_users_files_stops_the_workflow(tmp_path, snakemake_in):
    """The default config on the user's files of another grid with log g only: the template group and
    the studies that need the forward model are named at once, with the keys that turn them off."""
    from specvit.data.writer import write_split

    files = {}
    for split in ("train", "val", "test"):
        files[split] = str(tmp_path / f"my_{split}.h5")
        write_split(files[split], np.linspace(4000.0, 5000.0, 16), np.ones((30, 16), np.float32),
                    np.full((30, 16), 0.05, np.float32), {"logg": np.linspace(1, 5, 30, dtype=np.float32)},
                    {"source": "user"})
    cfg = write_cfg(tmp_path, {"data": {"source": "hdf5", **files, "subsets": [30]}, "ablations": None,
                               "runs": [{"name": "lightgbm", "model": "lightgbm", "n_train": [30]},
                                        {"name": "template", "model": "template", "n_train": [30]}]})
    r = snakemake_in("--cores", "1", "--configfile", cfg)
    assert r.returncode != 0
    assert "run group 'template' (runs[1]) predicts ['logg']: the template fit needs the forward model's grid" \
           in r.stdout, r.stdout
    assert "turn it off with 'pretrain.enabled: false'" in r.stdout
    assert "turn it off with 'domain_shift.enabled: false'" in r.stdout
    assert "Traceback" not in r.stdout
    assert not (tmp_path / "results").exists()
