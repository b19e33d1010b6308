"""The bad-input matrix of the README ("Bad input"): one test per row. Each bad input gets one
clear message naming the file or config key, the problem and what was expected; the command
exits non-zero and leaves no partial output. Labels outside the trained range only warn."""
import json
import re

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, run_snakemake

SMOKE = REPO / "config" / "smoke.yaml"
SPLITS = ("train", "val", "test")
P = 16


def write_user_split(path, n, seed, logg_range=(1.0, 5.0)):
    from specvit.data.writer import write_split

    rng = np.random.default_rng(seed)
    logg = rng.uniform(*logg_range, n).astype(np.float32)
    flux = (1 - 0.05 * logg[:, None] * rng.uniform(0.5, 1.0, P)).astype(np.float32)
    write_split(path, np.linspace(4000.0, 5000.0, P), flux, np.full((n, P), 0.01, np.float32),
                {"logg": logg, "mag": rng.uniform(20.5, 22.5, n).astype(np.float32)}, {"source": "hdf5"})
    return path


def user_config(root, files, **data):
    cfg = root / "user.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "hdf5", **{k: str(v) for k, v in files.items()},
                                            "subsets": [60], **data}, "ablations": None,
                                   "pretrain": {"enabled": False},  # it needs the five labels
                                   "runs": [{"name": "ridge", "model": "ridge", "n_train": [60]}]}))
    return cfg


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


# ----------------------------------------------------------------------------- data files: rule validate_split


def not_hdf5(path):
    path.write_text("logg,flux\n1.0,0.5\n")


def empty(path):
    path.write_bytes(b"")


def truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit(change):
    def apply(path):
        with h5py.File(path, "r+") as f:
            change(f)
    return apply


def shorter_error(f):
    n = f["error"].shape[0]
    del f["error"]
    f.create_dataset("error", data=np.full((n - 1, P), 0.01, np.float32))


def set_value(name, row, col, value):
    def change(f):
        f[name][row, col] = value
    return change


def repeat_wave(f):
    f["wave"][5] = f["wave"][4]


# case -> (how to break a valid file, the message after '<file>: ')
FILE_CASES = {
    "not HDF5": (not_hdf5, r"not an HDF5 file \(no HDF5 signature\); expected an HDF5 split file"),
    "empty": (empty, r"file is empty \(0 bytes\); expected an HDF5 split file"),
    "truncated": (truncated, r"HDF5 file cannot be read \(.*\); expected a complete file \(it may be truncated"),
    "missing flux": (edit(lambda f: f.__delitem__("flux")),
                     r"dataset 'flux' is missing; expected float32 with 2 dimension\(s\)"),
    "missing error": (edit(lambda f: f.__delitem__("error")),
                      r"dataset 'error' is missing; expected float32 with 2 dimension\(s\)"),
    "missing wave": (edit(lambda f: f.__delitem__("wave")),
                     r"dataset 'wave' is missing; expected float64 with 1 dimension\(s\)"),
    "missing labels/logg": (edit(lambda f: (f["labels"].__delitem__("logg"), f.attrs.__delitem__("label_names"))),
                            r"dataset 'labels/logg' is missing; expected float32 \[N\] target labels"),
    "shapes disagree": (edit(shorter_error), r"dataset 'error' has shape \(\d+, 16\); expected \(\d+, 16\) = "
                                             r"\[N, P\] with P = 16, the length of dataset 'wave', N like flux"),
    "NaN in flux": (edit(set_value("flux", 3, 7, np.nan)),
                    r"dataset 'flux' has 1 non-finite values \(1 NaN, 0 Inf\) \(first at row 3, pixel 7\); "
                    r"expected finite values"),
    "Inf in flux": (edit(set_value("flux", 4, 2, np.inf)),
                    r"dataset 'flux' has 1 non-finite values \(0 NaN, 1 Inf\) \(first at row 4, pixel 2\); "
                    r"expected finite values"),
    "zero error": (edit(set_value("error", 2, 0, 0.0)),
                   r"dataset 'error' has 1 values <= 0 \(first at row 2, pixel 0\); "
                   r"expected strictly positive 1-sigma noise"),
    "negative error": (edit(set_value("error", 5, 1, -0.01)),
                       r"dataset 'error' has 1 values <= 0 \(first at row 5, pixel 1\); "
                       r"expected strictly positive 1-sigma noise"),
    "non-increasing wavelengths": (edit(repeat_wave),
                                   r"dataset 'wave' is not strictly increasing \(wave\[5\] = .* <= wave\[4\] = .*\); "
                                   r"expected strictly increasing wavelengths in Å"),
}


@pytest.fixture(scope="module")
def broken_file_runs(tmp_path_factory):
    """Every broken-file case, three per workflow run (as the train, val and test file), each
    run validating all three splits with --keep-going. {case: (split, run result, work folder)}."""
    cases, out = list(FILE_CASES), {}
    for i in range(0, len(cases), 3):
        root = tmp_path_factory.mktemp("files")
        files, batch = {}, dict(zip(SPLITS, cases[i:i + 3]))
        for j, split in enumerate(SPLITS):
            files[split] = write_user_split(root / f"my_{split}.h5", 120, seed=j)
            if split in batch:
                FILE_CASES[batch[split]][0](files[split])
        work = root / "work"
        work.mkdir()
        r = run_snakemake(work, *[f"results/data/{s}.summary.json" for s in SPLITS], "--cores", "2", "--keep-going",
                          "--configfile", user_config(root, files))  # targets first: --configfile takes several values
        for split, case in batch.items():
            out[case] = (split, files[split], r, work)
    return out


@pytest.mark.workflow
@pytest.mark.parametrize("case", FILE_CASES)
def test_broken_data_file_fails_its_rule_with_a_message_naming_the_file(broken_file_runs, case):
    split, path, r, work = broken_file_runs[case]
    assert r.returncode != 0
    log = f"results/logs/data/validate_{split}.log"
    assert "Error in rule validate_split" in r.stdout and log in r.stdout, r.stdout  # loud, with its log
    text = (work / log).read_text()
    assert re.search(f"DataContractError: {re.escape(str(path))}: {FILE_CASES[case][1]}", text), text
    assert not (work / f"results/data/{split}.summary.json").exists()
    assert not list((work / "results").rglob(".*.tmp-*"))


@pytest.mark.workflow
def test_n_larger_than_the_users_training_file(tmp_path):
    files = {s: write_user_split(tmp_path / f"my_{s}.h5", 50, seed=i) for i, s in enumerate(SPLITS)}
    work = tmp_path / "work"
    work.mkdir()
    r = run_snakemake(work, "results/data/subsets/N60.npy", "--cores", "1",
                      "--configfile", user_config(tmp_path, files))
    assert r.returncode != 0 and "results/logs/data/subsets.log" in r.stdout, r.stdout
    text = (work / "results/logs/data/subsets.log").read_text()
    assert f"subset N=60 is larger than the training pool of 50 spectra in {files['train']}" in text, text
    assert not list(work.glob("results/data/subsets/*"))


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


# ----------------------------------------------------------------------------- labels outside the trained range: warn


@pytest.mark.workflow
def test_test_labels_outside_the_trained_range_warn_but_do_not_fail(tmp_path):
    files = {"train": write_user_split(tmp_path / "my_train.h5", 120, 0, (2.0, 4.0)),
             "val": write_user_split(tmp_path / "my_val.h5", 40, 1, (2.0, 4.0)),
             "test": write_user_split(tmp_path / "my_test.h5", 40, 2, (1.0, 5.0))}
    work = tmp_path / "work"
    work.mkdir()
    target = "results/runs/ridge-N60-s0/metrics_test.csv"
    r = run_snakemake(work, target, "--cores", "2", "--configfile", user_config(tmp_path, files))
    assert r.returncode == 0, r.stdout
    assert (work / target).stat().st_size > 0
    trained = json.loads((work / "results/runs/ridge-N60-s0/metrics.json").read_text())["train_label_range"]["logg"]
    from specvit.data.contract import read_labels
    from specvit.data.subsets import load_subset

    rows = load_subset(work / "results/data/subsets/N60.npy")
    logg = read_labels(files["train"])["logg"][rows]
    assert trained == [float(logg.min()), float(logg.max())]
    test_logg = read_labels(files["test"])["logg"]
    outside = int(((test_logg < trained[0]) | (test_logg > trained[1])).sum())
    assert outside > 0
    log = (work / "results/logs/evaluate/ridge-N60-s0.log").read_text()
    assert (f"WARNING: {files['test']}: {outside} of 40 stars ({100 * outside / 40:.1f} %) have logg outside "
            f"[{trained[0]:.4g}, {trained[1]:.4g}], the range the model was trained on") in log, log


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
