"""A ViT run that starts from another run's weights: pre-train -> fine-tune (P2.2), and the short
fine-tune on shifted data (P2.3).

``transfer_weights`` copies every tensor of a fitted ViT into a freshly built one of the same
architecture. The output head is matched by label: a row of a label both models predict is
copied and rescaled from the source's label normalisation to the target's, so before any
training the fine-tuned model predicts exactly what the source predicted; rows of labels the
source does not know keep their fresh initialisation. ``FineTunedVit`` is a ``VitRegressor``
whose fit starts from such a copy; it saves as a plain ``vit`` model.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from specvit.runtime.hashing import file_hash
from specvit.training.scaling import LabelScaler
from specvit.training.trainer import RunFolder, TrainingData
from specvit.training.vit_regressor import VitRegressor


@dataclass(frozen=True)
class SplitFiles:
    """The three split files a study reads (HDF5, data contract)."""

    train: Path
    val: Path
    test: Path


@dataclass(frozen=True, eq=False)
class StudyData:
    """Arrays of one run of a study: what the ViT trains on, the noisy test spectra it is scored on
    (log g ``y_test``), and the wavelength grid."""

    training: TrainingData
    x_test: np.ndarray
    y_test: np.ndarray
    wave: np.ndarray
    r2_variance: float | None = None   # the R² denominator: the log g prior's variance, as Table 3's


def _architecture(cfg) -> dict:
    d = cfg.to_dict()
    for key in ("labels", "predict_sigma", "dropout"):
        d.pop(key)
    return d


def transfer_weights(source: VitRegressor, target: torch.nn.Module, target_labels,
                     target_scaler: LabelScaler) -> list[str]:
    """Copy ``source``'s weights into ``target`` (a freshly built SpecViT); returns the labels whose
    head rows were copied. The head rows are rescaled so that target-normalised outputs equal the
    source's predictions: w' = w s / s', b' = (b s + m - m') / s'."""
    src_net = source.model
    if _architecture(src_net.cfg) != _architecture(target.cfg):
        raise ValueError(f"cannot start from a ViT of another architecture: source {_architecture(src_net.cfg)}, "
                         f"target {_architecture(target.cfg)}")
    src_state = src_net.state_dict()
    state = target.state_dict()
    for name, tensor in src_state.items():
        if not name.startswith("head."):
            state[name] = tensor.clone()
    k_src = len(source.labels)
    shared = [lab for lab in target_labels if lab in source.labels]
    for lab in shared:
        i, j = source.labels.index(lab), list(target_labels).index(lab)
        s, m = float(source.scaler.scale[i]), float(source.scaler.offset[i])
        s2, m2 = float(target_scaler.scale[j]), float(target_scaler.offset[j])
        state["head.weight"][j] = src_state["head.weight"][i] * (s / s2)
        state["head.bias"][j] = (src_state["head.bias"][i] * s + m - m2) / s2
        if target.cfg.predict_sigma and src_net.cfg.predict_sigma:  # log-variance rows: shift by the scale change
            k_dst = len(target_labels)
            state["head.weight"][k_dst + j] = src_state["head.weight"][k_src + i]
            state["head.bias"][k_dst + j] = src_state["head.bias"][k_src + i] + 2.0 * np.log(s / s2)
    target.load_state_dict(state)
    return shared


def weights_digest(model_dir) -> str:
    """Short hash of a saved ViT's weights: part of a fine-tune's identity, so a changed source restarts it."""
    return file_hash(Path(model_dir) / "weights.pt")["sha256"][:16]


class FineTunedVit(VitRegressor):
    """A VitRegressor whose ``fit`` starts from the weights of ``init`` (a fitted VitRegressor)."""

    def __init__(self, labels=("logg",), vit: dict | None = None, train: dict | None = None,
                 init: VitRegressor | None = None):
        super().__init__(labels, vit or (init.vit_cfg if init is not None else None), train)
        self._init = init
        self._target_scaler: LabelScaler | None = None
        self.copied_labels: list[str] = []

    def _build(self, n_pixels: int) -> torch.nn.Module:
        model = super()._build(n_pixels)
        if self._init is not None and self._target_scaler is not None:
            self.copied_labels = transfer_weights(self._init, model, self.labels, self._target_scaler)
        return model

    def fit(self, x_train, y_train, x_val=None, y_val=None, log=print, **kw) -> dict:
        # the trainer fits the label scaler on the training labels; the head transfer needs it first
        y = np.stack([np.asarray(y_train[lab], dtype=np.float64) for lab in self.labels], axis=1)
        self._target_scaler = LabelScaler.fit(y, self.train_cfg.label_norm)
        try:
            info = super().fit(x_train, y_train, x_val, y_val, log=log, **kw)
        finally:
            self._target_scaler = None
        return {**info, "init_labels_copied": self.copied_labels}


def fit_vit(data: TrainingData, vit: dict | None, train: dict, wave, run_dir, *, init_dir=None,
            identity: dict | None = None, log=print) -> tuple[VitRegressor, dict]:
    """Train a ViT from scratch, or from the saved ViT in ``init_dir``; checkpoints in ``run_dir``
    (a rerun resumes; ``identity`` joins the checkpoints' fingerprint). Returns (the fitted model,
    fit info with the wall time)."""
    from specvit.training.factory import load_model

    t0 = time.perf_counter()
    identity = dict(identity or {})
    labels = data.labels
    if init_dir is not None:
        init = load_model(init_dir)
        if not isinstance(init, VitRegressor):
            raise ValueError(f"{init_dir}: a fine-tune starts from a ViT, got a {init.name!r} model")
        model = FineTunedVit(labels, vit or init.vit_cfg, train, init=init)
        identity["init_from"] = weights_digest(init_dir)
    else:
        model = VitRegressor(labels, vit, train)
    info = model.fit(data.flux, data.y_train, data.x_val, data.y_val, log=log, error_train=data.error, wave=wave,
                     run=RunFolder(run_dir, identity, discard_stale=True))
    return model, {**info, "wall_seconds": time.perf_counter() - t0}


def score(model, x_test: np.ndarray, y_test: np.ndarray, label: str = "logg", *,
          variance: float | None = None) -> dict:
    """R^2 (1 - MSE / ``variance``; without it, against the test set's own variance) and MAE of
    ``label`` on noisy test spectra."""
    from specvit.evaluation.metrics import point_metrics

    m = point_metrics(y_test, model.predict(x_test)[label], variance=variance)
    return {"r2": float(m["r2"]), "mae": float(m["mae"]), "n_test": int(len(y_test))}


def run_transfer(out_dir, data: StudyData, vit: dict, train: dict, *, init_dir=None, identity: dict | None = None,
                 log=print) -> dict:
    """One run of the pre-train / fine-tune study: train (from scratch, or from ``init_dir``) on
    noise-free ``flux`` with fresh noise per epoch, save the model in ``out_dir/model``, score log g on
    the noisy test spectra; returns the metrics also written to ``out_dir/metrics.json``."""
    from specvit.runtime.io import write_json

    out_dir = Path(out_dir)
    model, info = fit_vit(data.training, vit, train, data.wave, out_dir, init_dir=init_dir, identity=identity,
                          log=log)
    model.save(out_dir / "model")
    n_train = data.training.flux.shape[0]
    metrics = {**score(model, data.x_test, data.y_test, variance=data.r2_variance), "n_train": int(n_train),
               "labels": list(data.training.labels), "init_from": None if init_dir is None else str(init_dir),
               "fit": info}
    write_json(metrics, out_dir / "metrics.json")
    log(f"{out_dir}: test log g R2 {metrics['r2']:.4f}, MAE {metrics['mae']:.4f} "
        f"({info['wall_seconds']:.1f} s, N = {n_train})")
    return metrics


PRETRAIN_COLUMNS = ["n_finetune", "setting", "seed", "r2", "mae", "n_pretrain"]


def load_study(files: SplitFiles, rows, labels, *, val_noise_seed: int, test_noise_seed: int,
               val_noise_level: float = 1.0, test_noise_level: float = 1.0,
               r2_variance: float | None = None) -> StudyData:
    """Arrays of one run: training rows (noise-free flux, error, labels), the fixed noisy validation
    set (the core runs' validation noise) and the pooled test view (Table 3's noisy spectra), scored
    with the R² denominator ``r2_variance``."""
    from specvit.data.contract import read_arrays, read_labels, read_wave
    from specvit.data.loader import fixed_noisy
    from specvit.evaluation.predictions import view_inputs

    flux, error = read_arrays(files.train, rows)
    y_all = read_labels(files.train, labels)
    vflux, verror = read_arrays(files.val)
    (_, x_test, _), = view_inputs(files.test, "pooled", noise_level=test_noise_level, seed=test_noise_seed)
    training = TrainingData(tuple(labels), flux, error, {k: v[rows] for k, v in y_all.items()},
                            fixed_noisy(vflux, verror, val_noise_level, val_noise_seed),
                            read_labels(files.val, labels))
    return StudyData(training, x_test, read_labels(files.test, ["logg"])["logg"], read_wave(files.train), r2_variance)


def pretrain_table(pretrained: dict, runs: dict[tuple[str, int, int], dict]) -> pd.DataFrame:
    """The study's table: the pre-trained model itself (setting ``pretrained``, n_finetune 0) and
    every fine-tune / scratch run keyed (setting, n, seed)."""
    rows = [{"n_finetune": 0, "setting": "pretrained", "seed": pretrained["seed"], "r2": pretrained["r2"],
             "mae": pretrained["mae"], "n_pretrain": pretrained["n_train"]}]
    for (setting, n, seed), m in sorted(runs.items()):
        rows.append({"n_finetune": n, "setting": setting, "seed": seed, "r2": m["r2"], "mae": m["mae"],
                     "n_pretrain": pretrained["n_train"]})
    return pd.DataFrame(rows, columns=PRETRAIN_COLUMNS)
