"""The bad-input matrix (docs/reliability.md, "Bad input"): one test per row, the user's data files
in tests/workflow/test_user_data.py. Each bad input gets one clear message naming the file or
config key, the problem and what was expected; the command exits non-zero and leaves no partial
output."""
import re

import numpy as np
import pytest
import yaml

from conftest import REPO, run_snakemake

SMOKE = REPO / "config" / "smoke.yaml"


# ----------------------------------------------------------------------------- config: caught before any job
# (an unknown key, a wrong type and N larger than the synthetic pool are rows of
# tests/workflow/test_config_errors.py::test_bad_config_names_the_key, which runs Snakemake the same way)

CONFIG_CASES = {
    "unknown model": ({"runs": [{"name": "cnn", "model": "cnn", "n_train": [200]}]},
                      r"config key 'runs\[0\]\.model' must be one of \['vit', 'lightgbm', 'ridge', 'template'\], "
                      r"got 'cnn'"),
    "unknown tokenizer": ({"runs": [{"name": "v", "model": "vit", "vit": {"tokenizer": "FFT"}, "n_train": [200]}]},
                          r"config key 'runs\[0\] \(v\)': ViTConfig\.tokenizer='FFT' is not one of 'C1D', 'SW'"),
    "unknown positional encoding": ({"runs": [{"name": "v", "model": "vit", "vit": {"pos_encoding": "fourier"},
                                               "n_train": [200]}]},
                                    r"config key 'runs\[0\] \(v\)': ViTConfig\.pos_encoding='fourier' is not one "
                                    r"of 'none', 'learned', 'sinusoidal', 'pipe', 'rope'"),
}


@pytest.mark.workflow
@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_stops_before_anything_runs(tmp_path, case):
    override, message = CONFIG_CASES[case]
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(override))
    r = run_snakemake(tmp_path, "--cores", "1", "--configfile", SMOKE, cfg)
    assert r.returncode != 0
    assert len(re.findall(message, r.stdout)) == 1, r.stdout
    assert "Traceback" not in r.stdout
    assert not (tmp_path / "results").exists()


# ----------------------------------------------------------------------------- the user's data files
# tests/workflow/test_user_data.py (through Snakemake), tests/unit/pipeline/test_user_files.py (checked when the
# config loads) and tests/unit/data/test_values.py (types and the value scan of rule validate_split)


# ----------------------------------------------------------------------------- output folder


@pytest.mark.workflow
@pytest.mark.parametrize("case", ["results is a file", "results links to a folder that cannot be written"])
def test_unwritable_output_folder(tmp_path, case):
    if case == "results is a file":
        (tmp_path / "results").write_text("not a folder")
        reason = "results is a file, not a folder"
    else:
        (tmp_path / "results").symlink_to("/proc/self")  # no one, not even root, creates files there
        reason = r"creating a file in results failed \(.*\)"
    r = run_snakemake(tmp_path, "--cores", "1", "--configfile", SMOKE)
    assert r.returncode != 0
    assert re.search(rf"output folder 'results' \({re.escape(str(tmp_path))}/results\) cannot be written: {reason}; "
                     r"expected a writable folder \(or run with --directory DIR to write elsewhere\)",
                     r.stdout), r.stdout
    assert "Traceback" not in r.stdout
    assert {p.name for p in tmp_path.iterdir()} <= {"results", ".snakemake"}  # no job ran


# ----------------------------------------------------------------------------- checkpoints given to resume


def vit_fit(run_dir, lr, discard_stale=False):
    from specvit.training.trainer import RunFolder
    from specvit.training.vit_regressor import VitRegressor

    rng = np.random.default_rng(0)
    logg = rng.uniform(1, 5, 80)
    flux = (1 - 0.1 * logg[:, None] * np.exp(-0.5 * ((np.arange(64) - 32) / 4.0) ** 2)).astype(np.float32)
    model = VitRegressor(vit={"tokenizer": "C1D", "patch": 16, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32},
                         train={"epochs": 1, "batch_size": 16, "lr": lr})
    return model.fit(flux[:60], {"logg": logg[:60]}, flux[60:], {"logg": logg[60:]},
                     error_train=np.full((60, 64), 0.01, np.float32),
                     run=RunFolder(run_dir, discard_stale=discard_stale), log=lambda *a: None)


def test_checkpoint_of_an_incompatible_config_is_refused(tmp_path):
    vit_fit(tmp_path, lr=1e-3)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ValueError) as err:
        vit_fit(tmp_path, lr=5e-3)
    assert str(err.value) == (f"cannot resume from {tmp_path / 'last.pt'}: it was written by a different configuration "
                              "(model, training settings, labels or data size changed); delete the run folder or "
                              "restore the configuration it was trained with")
    assert (tmp_path / "last.pt").read_bytes() == before  # untouched
    # the workflow's choice instead (discard_stale): a changed config is a new run
    vit_fit(tmp_path, lr=5e-3, discard_stale=True)
    assert (tmp_path / "last.pt").read_bytes() != before


def test_unreadable_checkpoint_is_refused(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(ValueError, match=rf"^cannot resume from {re.escape(str(tmp_path / 'last.pt'))}: not a "
                                         r"readable checkpoint \(.*\); delete it to start the run afresh$"):
        vit_fit(tmp_path, lr=1e-3)
    assert not (tmp_path / "best.pt").exists()
