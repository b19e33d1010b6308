"""The ViT behind the common fit / predict / save / load interface (registered as ``vit``).

``fit`` runs the trainer (``specvit.training.trainer``): unlike the tabular baselines it takes the
noise-free spectra and their 1-sigma errors, and draws fresh noise every epoch. The saved
model is the best-validation checkpoint plus its label scaler and wavelength grid.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from specvit.data.loader import HDF5Spectra, InMemorySpectra
from specvit.models.base import Regressor, register, write_model_file
from specvit.models.checks import check_fit_inputs, check_labels, check_x, check_y
from specvit.models.vit import ViTConfig, build_vit
from specvit.training.config import TrainConfig
from specvit.training.device import autocast_dtype, predict_normalised, resolve_device
from specvit.training.scaling import LabelScaler
from specvit.training.trainer import RunFolder, TrainingData, train


@register("vit")
class VitRegressor(Regressor):
    def __init__(self, labels=("logg",), vit: dict | None = None, train: dict | None = None):
        self.labels = check_labels(labels)
        self.vit_cfg = dict(vit or {})
        self.train_cfg = TrainConfig.from_dict(train)
        self.model: torch.nn.Module | None = None
        self.scaler: LabelScaler | None = None
        self.wave: np.ndarray | None = None

    def settings(self) -> dict:
        return {"vit": self.vit_cfg, "train": asdict(self.train_cfg)}

    def _build(self, n_pixels: int) -> torch.nn.Module:
        cfg = ViTConfig.from_dict({**self.vit_cfg, "n_pixels": n_pixels, "labels": tuple(self.labels),
                                   "predict_sigma": self.train_cfg.loss == "gaussian_nll"})
        return build_vit(cfg, self.wave)

    def fit(self, x_train, y_train, x_val=None, y_val=None, log=print, *, error_train=None, wave=None,
            run: RunFolder | None = None) -> dict:
        """Train with per-epoch noise ``noise_level * error_train * eps`` on the noise-free ``x_train``
        (no noise when ``error_train`` is None). ``x_train`` may also be a store of
        ``specvit.data.loader`` holding flux and error (e.g. ``HDF5Spectra``, streamed from a validated
        file; ``error_train`` None). ``wave``: the wavelength grid (needed by the ``pipe`` encoding).
        Checkpoints go to ``run`` (a temporary folder if None), so a rerun on the same folder
        resumes; the ViT config joins the folder's identity."""
        if isinstance(x_train, (InMemorySpectra, HDF5Spectra)):
            store = x_train
            y_train = check_y(y_train, self.labels, store.n, "y_train")
            if x_val is None or y_val is None:
                raise ValueError("the ViT needs a validation set (x_val, y_val) to choose its best epoch")
            x_val = check_x(x_val, "x_val", n_features=store.n_pixels)
            y_val = check_y(y_val, self.labels, x_val.shape[0], "y_val")
            x_train, error = store, None
            n_features = store.n_pixels
        else:
            x_train, y_train, x_val, y_val = check_fit_inputs(self.labels, x_train, y_train, x_val, y_val)
            if x_val is None:
                raise ValueError("the ViT needs a validation set (x_val, y_val) to choose its best epoch")
            n_features = x_train.shape[1]
            error = np.zeros_like(x_train) if error_train is None else check_x(error_train, "error_train",
                                                                             n_features=n_features)
        self.wave = None if wave is None else np.asarray(wave, dtype=np.float64)
        torch.manual_seed(self.train_cfg.seed)  # the initial weights are part of the run's result
        model = self._build(n_features)
        data = TrainingData(self.labels, x_train, error, y_train, x_val, y_val)
        with tempfile.TemporaryDirectory() as scratch:
            run = run if run is not None else RunFolder(Path(scratch))
            run = replace(run, identity={"vit": self.vit_cfg, **run.identity})
            info = train(model, self.train_cfg, data, run, log=log)
            best = torch.load(run.path / "best.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(best["model"])
        self.model = model.eval()
        self.scaler = LabelScaler.from_dict(info["scaler"])
        self.n_features = n_features
        self.fit_info = {k: v for k, v in info.items() if k != "scaler"}
        return self.fit_info

    def predict(self, x, batch_size: int = 1024) -> dict[str, np.ndarray]:
        self._require_fitted()
        x = check_x(x, n_features=self.n_features)
        device = resolve_device(self.train_cfg.device)
        self.model.to(device)
        z = predict_normalised(self.model, np.asarray(x, dtype=np.float32), len(self.labels), device,
                               autocast_dtype(self.train_cfg.precision, device), batch_size)
        y = self.scaler.inverse(z)
        return {lab: y[:, i] for i, lab in enumerate(self.labels)}

    def _write_payload(self, directory: Path) -> dict[str, dict]:
        state = {k: v.cpu() for k, v in self.model.state_dict().items()}
        extra = {"scaler": self.scaler.to_dict(), "has_wave": self.wave is not None}
        files = {"weights.pt": write_model_file(directory / "weights.pt", lambda p: torch.save(state, p)),
                 "vit_state.json": write_model_file(directory / "vit_state.json",
                                                    lambda p: p.write_text(json.dumps(extra, indent=2)))}
        if self.wave is not None:
            files["wave.npy"] = write_model_file(directory / "wave.npy", lambda p: _save_npy(p, self.wave))
        return files

    def _read_payload(self, directory: Path, meta: dict) -> None:
        try:
            extra = json.loads((directory / "vit_state.json").read_text())
            self.scaler = LabelScaler.from_dict(extra["scaler"])
            self.wave = np.load(directory / "wave.npy", allow_pickle=False) if extra["has_wave"] else None
            state = torch.load(directory / "weights.pt", map_location="cpu", weights_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise ValueError(f"{directory}: unreadable ViT model files ({e})") from e
        model = self._build(self.n_features)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{directory / 'weights.pt'}: weights do not fit the saved ViT config ({e})") from e
        self.model = model.eval()


def _save_npy(path: Path, array: np.ndarray) -> None:
    """np.save appends '.npy' to other names; write through a file object to keep the exact name."""
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
