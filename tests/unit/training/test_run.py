"""Run groups -> run specs, and one run end to end for each model through the common interface."""
import json

import numpy as np
import pytest

from specvit.data.simulate import generate_split
from specvit.pipeline.runs import expand_runs
from specvit.training.factory import load_model
from specvit.training.run import RunFiles, execute_run
from specvit.training.spec import RunSpec


def test_groups_expand_to_readable_stable_ids():
    runs = expand_runs([
        {"name": "vit-p16_h256_L6", "model": "vit", "preset": "p16_h256_L6", "n_train": [50000, 100000],
         "seeds": [0, 1], "train": {"epochs": 3}},
        {"name": "lightgbm", "model": "lightgbm", "n_train": [50000], "params": {"num_leaves": 15}},
    ], training_defaults={"epochs": 200, "lr": 3e-4})
    assert sorted(runs) == ["lightgbm-N50000-s0", "vit-p16_h256_L6-N100000-s0", "vit-p16_h256_L6-N100000-s1",
                            "vit-p16_h256_L6-N50000-s0", "vit-p16_h256_L6-N50000-s1"]
    vit = runs["vit-p16_h256_L6-N50000-s1"]
    assert vit.vit["dim"] == 256 and vit.vit["depth"] == 6 and vit.vit["patch"] == 16
    assert vit.train == {"epochs": 3, "lr": 3e-4, "seed": 1}
    assert runs["lightgbm-N50000-s0"].params == {"num_leaves": 15} and runs["lightgbm-N50000-s0"].train == {}
    again = RunSpec(**{**vit.to_dict(), "labels": tuple(vit.to_dict()["labels"])})
    assert again == vit


@pytest.mark.parametrize("group,message", [
    ({"name": "a", "model": "cnn", "n_train": [1]}, r"'runs\[0\] \(a\).model': unknown model 'cnn'"),
    ({"name": "a", "model": "vit", "preset": "huge", "n_train": [1]}, r"unknown preset 'huge'; known presets"),
    ({"name": "a", "model": "vit", "vit": {"tokenizer": "FFT"}, "n_train": [1]}, r"runs\[0\] \(a\).*tokenizer.*FFT"),
    ({"name": "a", "model": "vit", "vit": {"pos_encoding": "alibi"}, "n_train": [1]}, r"pos_encoding.*alibi"),
    ({"name": "a", "model": "vit", "train": {"lr_max": 1.0}, "n_train": [1]}, r"unknown training setting.*lr_max"),
    ({"name": "a", "model": "lightgbm", "params": {"n_trees": 5}, "n_train": [1]}, r"runs\[0\] \(a\).*n_trees"),
])
def test_bad_groups_fail_early_naming_the_key(group, message):
    with pytest.raises(ValueError, match=message):
        expand_runs([group])


def test_duplicate_run_ids_are_refused():
    with pytest.raises(ValueError, match="declared twice"):
        expand_runs([{"name": "r", "model": "ridge", "n_train": [10, 10]}])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from specvit.data.subsets import save_subset

    root = tmp_path_factory.mktemp("data")
    generate_split(root / "train.h5", 160, seed=1, progress=False)
    generate_split(root / "val.h5", 60, seed=2, split_name="val", progress=False)
    save_subset(root / "N120.npy", np.arange(120))
    return root


def files(root) -> RunFiles:
    return RunFiles(train=root / "train.h5", val=root / "val.h5", subset=root / "N120.npy")


@pytest.mark.parametrize("group", [
    {"name": "vit", "model": "vit", "preset": "tiny", "train": {"epochs": 2, "batch_size": 32}},
    {"name": "lgb", "model": "lightgbm", "params": {"n_estimators": 20, "num_leaves": 7, "min_data_in_leaf": 5}},
    {"name": "ridge", "model": "ridge", "params": {"alpha": 10.0}},
])
def test_one_run_of_each_model_writes_its_folder(data, tmp_path, group):
    from sklearn.metrics import r2_score

    from specvit.data.contract import read_arrays, read_labels
    from specvit.data.loader import fixed_noisy

    (spec,) = expand_runs([{**group, "n_train": [120]}]).values()
    out = tmp_path / spec.run_id
    metrics = execute_run(spec, files(data), out, val_noise_seed=9, threads=1, log=lambda *a: None)
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert json.loads((out / "run.json").read_text())["run_id"] == spec.run_id
    model = load_model(out / "model")
    flux, error = read_arrays(data / "val.h5")
    pred = model.predict(fixed_noisy(flux, error, 1.0, 9))["logg"]
    truth = read_labels(data / "val.h5")["logg"].astype(float)
    assert r2_score(truth, pred) == pytest.approx(metrics["val"]["logg"]["r2"], abs=1e-6)
    if spec.model == "vit":
        assert (out / "history.csv").exists() and (out / "best.pt").exists()


def test_subset_of_the_wrong_size_is_refused(data, tmp_path):
    (spec,) = expand_runs([{"name": "r", "model": "ridge", "n_train": [50]}]).values()
    with pytest.raises(ValueError, match="holds 120 rows, run r-N50-s0 needs N=50"):
        execute_run(spec, files(data), tmp_path, val_noise_seed=1, log=lambda *a: None)


def test_same_vit_run_twice_gives_identical_results(data, tmp_path):
    """Initial weights, batch order and noise all come from the run's seed: two runs of the same
    spec (even after other random draws in the process) end with the same weights and metrics."""
    import torch

    (spec,) = expand_runs([{"name": "vit", "model": "vit", "preset": "tiny", "n_train": [120],
                            "train": {"epochs": 2, "batch_size": 32}}]).values()
    first = execute_run(spec, files(data), tmp_path / "a", val_noise_seed=9, threads=1, log=lambda *a: None)
    torch.rand(1000)  # move the global generator on
    second = execute_run(spec, files(data), tmp_path / "b", val_noise_seed=9, threads=1, log=lambda *a: None)
    assert first["val"] == second["val"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_noise_copies_are_distinct_seeded_draws_and_reproducible(data, tmp_path):
    """K copies: copy 0 is the single draw a run without copies trains on; the K draws differ from
    each other, each is the same in a second run, and the model trains on K N rows."""
    from specvit.data.contract import read_arrays
    from specvit.data.loader import fixed_noisy
    from specvit.training.run import noise_copy_seeds, noisy_copies, train_seed

    (spec,) = expand_runs([{"name": "r", "model": "ridge", "n_train": [120], "noise_copies": 3,
                            "params": {"alpha": 10.0}}]).values()
    seeds = noise_copy_seeds(spec)
    assert len(set(seeds)) == 3 and seeds[0] == train_seed(spec) and seeds == noise_copy_seeds(spec)
    flux, error = read_arrays(data / "train.h5", np.arange(120))
    x = noisy_copies(flux, error, 1.0, seeds)
    assert x.shape == (360, flux.shape[1]) and x.dtype == np.float32
    assert np.array_equal(x[:120], fixed_noisy(flux, error, 1.0, train_seed(spec)))
    noise = (x.reshape(3, 120, -1) - flux) / error
    assert not np.allclose(noise[0], noise[1]) and not np.allclose(noise[1], noise[2])
    assert abs(np.corrcoef(noise[0].ravel(), noise[1].ravel())[0, 1]) < 0.01  # independent draws
    assert np.array_equal(x, noisy_copies(flux, error, 1.0, noise_copy_seeds(spec)))
    a = execute_run(spec, files(data), tmp_path / "a", val_noise_seed=9, log=lambda *a: None)
    b = execute_run(spec, files(data), tmp_path / "b", val_noise_seed=9, log=lambda *a: None)
    assert a["noise_copies"] == 3 and a["val"] == b["val"]
    (one,) = expand_runs([{"name": "r", "model": "ridge", "n_train": [120], "params": {"alpha": 10.0}}]).values()
    c = execute_run(one, files(data), tmp_path / "c", val_noise_seed=9, log=lambda *a: None)
    assert c["noise_copies"] == 1 and c["val"] != a["val"]  # three draws train another model than one
