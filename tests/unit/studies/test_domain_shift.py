"""Trained models on shifted test sets: severity 0 gives the pooled-view numbers, a shifted file
scores what the model scores on the same shift applied by hand, and the short fine-tune on shifted
stars writes its model and one row (or refuses more stars than the pool holds, naming the key)."""
from dataclasses import replace

import numpy as np
import pytest

from specvit.data.contract import read_labels
from specvit.data.simulate import generate_split
from specvit.evaluation.metrics import point_metrics
from specvit.evaluation.predictions import view_inputs
from specvit.studies.domain_shift import (
    COLUMNS,
    FINETUNE_SUFFIX,
    FineTuneSetup,
    ShiftSpec,
    evaluate_shift,
    finetune_on_shift,
)
from specvit.studies.pretrain_finetune import SplitFiles
from specvit.studies.shifts import shift_file
from specvit.training.factory import load_model
from specvit.training.vit_regressor import VitRegressor

TRAIN = dict(epochs=1, batch_size=64, lr=1e-3)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three small splits and a ViT trained for one epoch on them, saved like a run's model."""
    from specvit.data.contract import read_arrays, read_wave

    d = tmp_path_factory.mktemp("shift")
    for split, n, seed in (("train", 128, 0), ("val", 48, 1), ("test", 32, 2)):
        generate_split(d / f"{split}.h5", n=n, seed=seed, chunk_size=128, split_name=split, progress=False)
    flux, error = read_arrays(d / "train.h5")
    vflux, verror = read_arrays(d / "val.h5")
    vit = VitRegressor(vit=dict(patch=64, dim=16, depth=1, heads=2, mlp_dim=32), train=TRAIN)
    vit.fit(flux, {"logg": read_labels(d / "train.h5")["logg"]}, vflux, {"logg": read_labels(d / "val.h5")["logg"]},
            error_train=error, wave=read_wave(d / "train.h5"), log=lambda m: None)
    vit.save(d / "vit")
    return d, SplitFiles(train=d / "train.h5", val=d / "val.h5", test=d / "test.h5")


def pooled_r2(model, path, noise_level, seed):
    (_, x, _), = view_inputs(path, "pooled", noise_level=noise_level, seed=seed)
    return point_metrics(read_labels(path, ["logg"])["logg"], model.predict(x)["logg"])["r2"]


def test_evaluate_shift_scores_every_severity_on_the_pooled_view(study, tmp_path):
    d, files = study
    model = load_model(d / "vit")
    shift = ShiftSpec("continuum", seed=4)
    table = evaluate_shift({"vit": model}, files.test, shift, [0.1], noise_level=1.0, noise_seed=6, scratch=tmp_path)
    assert list(table.columns) == COLUMNS and table["severity"].tolist() == [0.0, 0.1]
    assert table["r2"].iloc[0] == pytest.approx(pooled_r2(model, files.test, 1.0, 6), abs=1e-12)
    by_hand = shift_file(files.test, tmp_path / "by_hand.h5", "continuum", 0.1, seed=4)
    assert table["r2"].iloc[1] == pytest.approx(pooled_r2(model, by_hand, 1.0, 6), abs=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by_hand.h5"]  # the shifted copy is gone


def test_finetune_on_shift_writes_its_model_and_one_row(study, tmp_path):
    d, files = study
    shift = ShiftSpec("continuum", seed=4)
    setup = FineTuneSetup(severity=0.1, n_train=64, n_val=32, train=TRAIN, subset_seed=3, val_noise_seed=5,
                          test_noise_seed=6)
    row = finetune_on_shift("vit", d / "vit", files, shift, setup, tmp_path / "ft", log=lambda m: None)
    assert row.to_dict("records") == [{"shift": "continuum", "severity": 0.1, "model": "vit" + FINETUNE_SUFFIX,
                                       "r2": row["r2"].iloc[0], "mae": row["mae"].iloc[0]}]
    tuned = load_model(tmp_path / "ft" / "model")
    by_hand = shift_file(files.test, tmp_path / "by_hand.h5", "continuum", 0.1, seed=4)
    assert row["r2"].iloc[0] == pytest.approx(pooled_r2(tuned, by_hand, 1.0, 6), abs=1e-12)
    assert np.isfinite(row["mae"].iloc[0])
    with pytest.raises(ValueError, match=r"'domain_shift.finetune.n_train' = 500 exceeds the 128 spectra"):
        finetune_on_shift("vit", d / "vit", files, shift, replace(setup, n_train=500), tmp_path / "too_many")
