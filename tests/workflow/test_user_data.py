"""The user's own spectra through real Snakemake runs (docs/reliability.md, "Bad input"): every job
that reads a split waits for the split's validation, so no target trains on a file that breaks
the contract; a failing job's reason reaches the terminal; the types real files come in build
Table 3 with the numbers of the float32 files. The messages themselves are tested without
Snakemake (tests/unit/pipeline/test_user_files.py, tests/unit/data/test_values.py)."""
import json
import re

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.workflow
SPLITS = ("train", "val", "test")
SIZES = {"train": 120, "val": 40, "test": 40}
P = 16
TABLE3 = "results/tables/table3_main.csv"
FIG1 = "results/figures/fig1_r2_vs_snr.pdf"


def write_user_split(path, n, seed, logg_range=(1.0, 5.0)):
    """A learnable split of ``n`` spectra: flux depends on log g; Teff (whole kelvins) and mag ride along."""
    from specvit.data.writer import write_split

    rng = np.random.default_rng(seed)
    logg = rng.uniform(*logg_range, n).astype(np.float32)
    flux = (1 - 0.05 * logg[:, None] * rng.uniform(0.5, 1.0, P)).astype(np.float32)
    write_split(path, np.linspace(4000.0, 5000.0, P), flux, np.full((n, P), 0.01, np.float32),
                {"logg": logg, "Teff": rng.integers(4000, 6000, n).astype(np.float32),
                 "mag": rng.uniform(20.5, 22.5, n).astype(np.float32)}, {"source": "hdf5"})
    return path


def user_config(root, files, **cfg):
    path = root / "user.yaml"
    path.write_text(yaml.safe_dump({
        "data": {"source": "hdf5", **{k: str(v) for k, v in files.items()}, "subsets": [60]}, "ablations": None,
        "pretrain": {"enabled": False}, "domain_shift": {"enabled": False},  # they need the forward model
        "runs": [{"name": "ridge", "model": "ridge", "labels": ["logg", "Teff"], "n_train": [60]}], **cfg}))
    return path


def build(root, files, *targets, extra=()):
    work = root / "work"
    work.mkdir()
    # targets first: --configfile takes several values
    return run_snakemake(work, *targets, "--cores", "2", *extra, "--configfile", user_config(root, files)), work


def files_under(work):
    return sorted(str(p.relative_to(work)) for p in (work / "results").rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Table 3 of float32 files; the training labels span log g 2-4, the test's 1-5."""
    root = tmp_path_factory.mktemp("clean")
    files = {"train": write_user_split(root / "my_train.h5", SIZES["train"], 0, (2.0, 4.0)),
             "val": write_user_split(root / "my_val.h5", SIZES["val"], 1, (2.0, 4.0)),
             "test": write_user_split(root / "my_test.h5", SIZES["test"], 2, (1.0, 5.0))}
    r, work = build(root, files, TABLE3)
    assert r.returncode == 0, r.stdout
    return files, work


def test_test_labels_outside_the_trained_range_warn_but_do_not_fail(clean):
    files, work = clean
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


# split -> {dataset: the type it is stored in}: what files from other tools hold
STORED_AS = {"train": {"flux": "<f8", "error": ">f4", "labels/logg": "<f8", "labels/Teff": "<i4", "wave": "<f4"},
             "val": {"flux": ">f8", "error": "<f8", "labels/logg": ">f4", "labels/Teff": ">i4", "labels/mag": "<f8"},
             "test": {"flux": ">f4", "error": ">f8", "labels/logg": "<f8", "labels/Teff": "<i8", "wave": ">f8"}}


def test_real_file_types_build_table3_with_the_clean_numbers(clean, tmp_path):
    """float64 and big-endian spectra, float64 and integer labels, a float32 grid: Table 3 and every
    stored prediction equal the float32 files' to the bit; a second run has nothing to do."""
    files, clean_work = clean
    other = {}
    for split, path in files.items():
        other[split] = tmp_path / path.name
        other[split].write_bytes(path.read_bytes())
        with h5py.File(other[split], "r+") as f:
            for name, dtype in STORED_AS[split].items():
                data = f[name][()]
                del f[name]
                f.create_dataset(name, data=data.astype(dtype))
    r, work = build(tmp_path, other, TABLE3)
    assert r.returncode == 0, r.stdout
    table = (work / TABLE3).read_text()
    assert table == (clean_work / TABLE3).read_text()
    assert len(table.splitlines()) == 1 + 1 + 9  # the pooled row and the nine magnitudes of the sweep
    for view in ("pooled", "sweep"):
        name = f"results/runs/ridge-N60-s0/predictions_{view}.h5"
        with h5py.File(work / name) as got, h5py.File(clean_work / name) as want:
            for key in ("true/logg", "pred/logg", "true/Teff", "pred/Teff", "mag", "snr"):
                assert np.array_equal(got[key][()], want[key][()]), key
    log = (work / "results/logs/data/validate_train.log").read_text()
    assert "stored as {'wave': '<f4', 'flux': '<f8', 'error': '>f4', 'labels/logg': '<f8', " \
           "'labels/Teff': '<i4'}; read as float64 wave and float32 for the rest" in log, log
    again = run_snakemake(work, TABLE3, "-n", "--configfile", tmp_path / "user.yaml")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout  # the validations are kept


def _negative_error_and_nan_labels(f):
    f["error"][7, 3] = -0.01
    f["labels/Teff"][[11, 90]] = np.nan


def _blank_rows(f):
    f["flux"][20:30] = 0.0


def _nan_test_logg(f):
    f["labels/logg"][[5, 17]] = np.nan


BAD_VALUES = {"train": (_negative_error_and_nan_labels, [
                  "2 problems:",
                  "  - dataset 'error' has 1 values <= 0 in row 7 (first at row 7, pixel 3); expected strictly "
                  "positive 1-sigma noise",
                  "  - dataset 'labels/Teff' has 2 non-finite values (2 NaN, 0 Inf) in rows 11, 90; expected "
                  "finite labels"]),
              "val": (_blank_rows, ["dataset 'flux' has 10 constant rows (every pixel the same value; row 20: all 0) "
                                    "in rows 20, 21, 22, 23, 24, 25, 26, 27, 28, 29; expected spectra that vary "
                                    "across pixels: remove these rows"]),
              "test": (_nan_test_logg, ["dataset 'labels/logg' has 2 non-finite values (2 NaN, 0 Inf) in rows 5, 17; "
                                        "expected finite labels"])}


def test_bad_values_stop_the_main_target_before_any_training(tmp_path):
    """NaN labels in train and test, a negative error, blank spectra: Figure 1 (the README's main
    target) fails in the three validations, each reason on the terminal, and nothing else runs."""
    files = {s: write_user_split(tmp_path / f"my_{s}.h5", SIZES[s], i) for i, s in enumerate(SPLITS)}
    for split, (change, _) in BAD_VALUES.items():
        with h5py.File(files[split], "r+") as f:
            change(f)
    r, work = build(tmp_path, files, FIG1, extra=["--keep-going"])
    assert r.returncode != 0
    assert r.stdout.count("Error in rule validate_split") == 3, r.stdout
    assert not re.search(r"^(local)?rule (?!validate_split)", r.stdout, re.M), r.stdout  # no other job started
    assert all(p.startswith(("results/logs/", "results/benchmarks/")) for p in files_under(work)), files_under(work)
    report = r.stdout.split("Why the jobs failed (the end of each failed job's log):\n", 1)[1]
    for split, (_, lines) in BAD_VALUES.items():
        exception = [f"specvit.data.contract.DataContractError: {files[split]}: {lines[0]}", *lines[1:]]
        block = "\n".join([f"  rule validate_split (results/logs/data/validate_{split}.log):",
                           *(f"    {line}" for line in exception)])
        assert block in report, report
    assert "Traceback" not in report


def test_every_job_that_reads_a_user_split_waits_for_the_validations(tmp_path):
    """The whole smoke DAG (every model, ablation and study) on the user's files, as a dry run:
    every job with a split among its inputs has the three validation summaries there too."""
    from specvit.data.writer import write_split
    from specvit.physics.labels import LABEL_NAMES
    from specvit.pipeline.userfiles import builtin_wave

    wave, files = builtin_wave(), {}
    for i, (split, n) in enumerate((("train", 600), ("val", 200), ("test", 200))):
        rng = np.random.default_rng(i)
        labels = {k: rng.uniform(1, 5, n).astype(np.float32) for k in (*LABEL_NAMES, "mag")}
        files[split] = str(tmp_path / f"my_{split}.h5")
        write_split(files[split], wave, rng.uniform(0.5, 1, (n, wave.size)).astype(np.float32),
                    np.full((n, wave.size), 0.05, np.float32), labels, {"source": "user"})
    cfg = tmp_path / "user.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "hdf5", **files}, "eval": {"external": [files["test"]]}}))
    r = run_snakemake(tmp_path, "-n", "--configfile", REPO / "config/smoke.yaml", cfg)
    assert r.returncode == 0, r.stdout
    summaries = {f"results/data/{s}.summary.json" for s in SPLITS}
    readers = set()
    for rule, inputs in re.findall(r"^(?:local)?rule (\w+):\n    input: (.*)$", r.stdout, re.M):
        inputs = set(inputs.split(", "))
        if inputs & set(files.values()) and rule != "validate_split":
            readers.add(rule)
            assert summaries <= inputs, (rule, inputs)
    assert readers == {"subsets", "train_run", "evaluate_run", "ceiling", "evaluate_noise", "ablation_init_gradients",
                       "attribution", "pretrain_run", "finetune_run", "shift_eval", "external_eval"}, readers
