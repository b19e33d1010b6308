"""Starting a ViT from another run's weights: the copy is exact (same predictions before any
training), the head is matched by label and rescaled, and a wrong source is refused by name."""
import numpy as np
import pytest
import torch

from specvit.data.contract import read_arrays, read_labels
from specvit.data.loader import fixed_noisy
from specvit.data.simulate import generate_split
from specvit.physics.labels import LABEL_NAMES
from specvit.physics.spectrum import pfs_red_wave
from specvit.studies.pretrain_finetune import StudyData, fit_vit, run_transfer, transfer_weights
from specvit.training.factory import load_model
from specvit.training.scaling import LabelScaler
from specvit.training.trainer import TrainingData
from specvit.training.vit_regressor import VitRegressor

VIT = dict(patch=64, dim=16, depth=2, heads=2, mlp_dim=32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("transfer")
    for split, n, seed in (("train", 192, 0), ("val", 64, 1)):
        generate_split(d / f"{split}.h5", n=n, seed=seed, chunk_size=192, split_name=split, progress=False)
    flux, error = read_arrays(d / "train.h5")
    vflux, verror = read_arrays(d / "val.h5")
    return d, flux, error, read_labels(d / "train.h5"), fixed_noisy(vflux, verror, 1.0, 5), read_labels(d / "val.h5")


@pytest.fixture(scope="module")
def pretrained(data):
    d, flux, error, y, x_val, y_val = data
    model, info = fit_vit(TrainingData(LABEL_NAMES, flux, error, y, x_val, y_val), VIT,
                          dict(epochs=1, batch_size=64, lr=1e-3), pfs_red_wave(), d / "pre", log=lambda m: None)
    model.save(d / "pre" / "model")
    return model


def test_transferred_head_predicts_what_the_source_predicted(data, pretrained):
    d, flux, error, y, x_val, y_val = data
    # another normalisation than the source's (other stars), two labels in another order
    scaler = LabelScaler.fit(np.stack([y["logg"][:50] * 1.3 + 0.2, y["M_H"][:50]], axis=1).astype(np.float64),
                             "standard")
    target = VitRegressor(("logg", "M_H"), VIT)._build(flux.shape[1])
    copied = transfer_weights(pretrained, target, ("logg", "M_H"), scaler)
    assert copied == ["logg", "M_H"]
    with torch.no_grad():
        z = target.eval()(torch.from_numpy(x_val[:16])).numpy()
    src = pretrained.predict(x_val[:16])
    np.testing.assert_allclose(z[:, 0] * scaler.scale[0] + scaler.offset[0], src["logg"], atol=2e-4)
    np.testing.assert_allclose(z[:, 1] * scaler.scale[1] + scaler.offset[1], src["M_H"], atol=2e-4)
    # a label the source does not predict keeps its fresh row
    fresh = VitRegressor(("logg",), VIT)._build(flux.shape[1])
    logg_only = VitRegressor(("logg",), VIT)
    logg_only.model, logg_only.scaler = fresh, scaler
    tgt = VitRegressor(("logg", "Teff"), VIT)._build(flux.shape[1])
    before = tgt.head.weight[1].clone()
    other_scaler = LabelScaler.fit(np.ones((4, 2)) * [1, 2], "standard")
    assert transfer_weights(logg_only, tgt, ("logg", "Teff"), other_scaler) == ["logg"]
    torch.testing.assert_close(tgt.head.weight[1], before)


def test_fine_tune_starts_from_the_source(data, pretrained, tmp_path):
    """One epoch at a vanishing learning rate: the fine-tuned model still predicts what the
    pre-trained one did (the copy, not a fresh initialisation, is what is trained)."""
    d, flux, error, y, x_val, y_val = data
    rows = slice(0, 64)
    small = TrainingData(("logg",), flux[rows], error[rows], {"logg": y["logg"][rows]}, x_val, {"logg": y_val["logg"]})
    model, info = fit_vit(small, None, dict(epochs=1, batch_size=64, lr=1e-12, min_lr=0.0), pfs_red_wave(),
                          tmp_path / "ft", init_dir=d / "pre" / "model", log=lambda m: None)
    assert info["init_labels_copied"] == ["logg"]
    np.testing.assert_allclose(model.predict(x_val)["logg"], pretrained.predict(x_val)["logg"], atol=1e-3)
    scratch, _ = fit_vit(small, VIT, dict(epochs=1, batch_size=64, lr=1e-12, min_lr=0.0), pfs_red_wave(),
                         tmp_path / "scratch", log=lambda m: None)
    gap_ft = np.abs(model.predict(x_val)["logg"] - pretrained.predict(x_val)["logg"]).max()
    assert np.abs(scratch.predict(x_val)["logg"] - pretrained.predict(x_val)["logg"]).max() > 10 * gap_ft
    # saved as a plain ViT
    model.save(tmp_path / "ft" / "model")
    assert type(load_model(tmp_path / "ft" / "model")) is VitRegressor


def test_run_transfer_writes_metrics(data, tmp_path):
    d, flux, error, y, x_val, y_val = data
    training = TrainingData(("logg",), flux[:64], error[:64], {"logg": y["logg"][:64]}, x_val, {"logg": y_val["logg"]})
    study = StudyData(training, x_test=x_val, y_test=y_val["logg"], wave=pfs_red_wave())
    m = run_transfer(tmp_path / "run", study, VIT, dict(epochs=1, batch_size=64), init_dir=d / "pre" / "model",
                     log=lambda m: None)
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "model" / "model.json").is_file()
    assert np.isfinite(m["r2"]) and m["mae"] > 0 and m["n_train"] == 64


def test_refuses_another_architecture_or_model(data, pretrained, tmp_path):
    d, flux, *_ = data
    other = VitRegressor(("logg",), {**VIT, "dim": 32})._build(flux.shape[1])
    with pytest.raises(ValueError, match="cannot start from a ViT of another architecture"):
        transfer_weights(pretrained, other, ("logg",), LabelScaler.fit(np.ones((2, 1)), "standard"))
    from specvit.models.ridge import RidgeRegressor

    ridge = RidgeRegressor()
    ridge.fit(flux[:32], {"logg": read_labels(d / "train.h5")["logg"][:32]})
    ridge.save(tmp_path / "ridge")
    with pytest.raises(ValueError, match="a fine-tune starts from a ViT, got a 'ridge' model"):
        fit_vit(TrainingData(("logg",), flux[:8], flux[:8], {"logg": np.ones(8)}, flux[:8], {"logg": np.ones(8)}),
                None, {}, None, tmp_path / "x", init_dir=tmp_path / "ridge")
