"""Trained models on shifted test sets (P2.3): evaluation at each severity, an external labelled
file, and how much a short fine-tune on a small labelled shifted set recovers.

Every shifted test set is written in the data contract and validated before it is used (in a
scratch folder beside the job's output, removed afterwards). The models see the pooled view of
the shifted file: each star at its own magnitude with the seeded noise of Table 3's pooled view,
so at severity 0 the numbers are those of Table 3.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from specvit.data.contract import read_labels, read_wave, validate_file
from specvit.evaluation.metrics import point_metrics
from specvit.evaluation.predictions import view_inputs
from specvit.studies.pretrain_finetune import SplitFiles
from specvit.studies.shifts import ShiftSettings, apply_shift, read_spectra, write_spectra
from specvit.training.trainer import TrainingData

COLUMNS = ["shift", "severity", "model", "r2", "mae"]
FINETUNE_SUFFIX = " + fine-tune"


def pooled_scores(models: dict, test_path, noise_level: float, seed: int, label: str = "logg", *,
                  variance: float | None = None) -> list[dict]:
    """[{model, r2, mae}] of each model on the pooled view of ``test_path``; R² = 1 - MSE / ``variance``
    (the label's prior variance, as Table 3's; without it, the test set's own)."""
    (_, x, _), = view_inputs(test_path, "pooled", noise_level=noise_level, seed=seed)
    truth = read_labels(test_path, [label])[label]
    out = []
    for name, model in models.items():
        m = point_metrics(truth, model.predict(x)[label], variance=variance)
        out.append({"model": name, "r2": float(m["r2"]), "mae": float(m["mae"])})
    return out


@dataclass(frozen=True)
class ShiftSpec:
    """One kind of shift (``specvit.studies.shifts.SHIFTS``), the seed of its shared systematics
    and its settings; the severity is given where it is applied."""

    kind: str
    seed: int
    settings: ShiftSettings = ShiftSettings()


@dataclass(frozen=True)
class FineTuneSetup:
    """The short fine-tune of the ViT on shifted data (config ``domain_shift.finetune``): ``n_train``
    training-pool stars and ``n_val`` validation stars with the shift at ``severity`` (stars picked and
    their own draws seeded from ``subset_seed``), trainer settings ``train``, and the fixed noise of
    its validation set and of the pooled test view."""

    severity: float
    n_train: int
    n_val: int
    train: dict
    subset_seed: int
    val_noise_seed: int
    test_noise_seed: int
    noise_level: float = 1.0
    r2_variance: float | None = None    # the R² denominator (the log g prior's variance)


def shifted_copy(test_path, folder, shift: ShiftSpec, severity: float) -> Path:
    """The test file with the shift applied, written and validated in ``folder``."""
    dst = Path(folder) / f"test_{shift.kind}_{severity:g}.h5"
    s = apply_shift(read_spectra(test_path), shift.kind, severity, shift.seed, shift.settings)
    write_spectra(s, dst, {"shift": shift.kind, "shift_severity": float(severity), "shift_seed": int(shift.seed),
                           "shifted_from": str(test_path)})
    return dst


def evaluate_shift(models: dict, test_path, shift: ShiftSpec, severities, *, noise_level: float, noise_seed: int,
                   scratch, log=print, variance: float | None = None) -> pd.DataFrame:
    """Rows (shift, severity, model, r2, mae) for severity 0 and each of ``severities``, on the pooled
    view with noise ``noise_level`` and seed ``noise_seed`` (R² against ``variance``, see ``pooled_scores``);
    shifted files live in ``scratch`` meanwhile."""
    rows = []
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        for severity in sorted({0.0, *map(float, severities)}):
            path = test_path if severity == 0 else shifted_copy(test_path, folder, shift, severity)
            for r in pooled_scores(models, path, noise_level, noise_seed, variance=variance):
                rows.append({"shift": shift.kind, "severity": severity, **r})
                log(f"{shift.kind} {severity:g}: {r['model']} R2 {r['r2']:.4f} MAE {r['mae']:.4f}")
            if path != test_path:
                Path(path).unlink()
    return pd.DataFrame(rows, columns=COLUMNS)


def finetune_on_shift(vit_name: str, vit_dir, files: SplitFiles, shift: ShiftSpec, setup: FineTuneSetup, out_dir, *,
                      log=print) -> pd.DataFrame:
    """Fine-tune the ViT in ``vit_dir`` on ``setup.n_train`` training-pool stars with the shift applied
    (the shift's shared systematics from ``shift.seed``, other per-star draws than the test set's),
    validated on ``setup.n_val`` shifted validation stars; one row: its R^2 and MAE on the shifted test set."""
    from specvit.data.loader import fixed_noisy
    from specvit.studies.pretrain_finetune import fit_vit

    n_train, severity, subset_seed = setup.n_train, setup.severity, setup.subset_seed
    n_pool = validate_file(files.train, check_values=False).n
    if n_train > n_pool:
        raise ValueError(f"config key 'domain_shift.finetune.n_train' = {n_train} exceeds the {n_pool} "
                         f"spectra of {files.train}")
    rows = np.sort(np.random.default_rng(subset_seed).permutation(n_pool)[:n_train])
    n_val = min(setup.n_val, validate_file(files.val, check_values=False).n)
    tr = apply_shift(read_spectra(files.train, rows), shift.kind, severity, shift.seed, shift.settings,
                     star_seed=subset_seed + 1)
    va = apply_shift(read_spectra(files.val, np.arange(n_val)), shift.kind, severity, shift.seed, shift.settings,
                     star_seed=subset_seed + 2)
    x_val = fixed_noisy(va.flux, va.error, setup.noise_level, setup.val_noise_seed)
    data = TrainingData(("logg",), tr.flux, tr.error, {"logg": tr.labels["logg"]}, x_val, {"logg": va.labels["logg"]})
    model, info = fit_vit(data, None, setup.train, read_wave(files.train), out_dir, init_dir=vit_dir,
                          identity={"shift": shift.kind, "severity": severity, "n_train": n_train}, log=log)
    model.save(Path(out_dir) / "model")
    with tempfile.TemporaryDirectory(dir=out_dir) as folder:
        path = shifted_copy(files.test, folder, shift, severity)
        r = pooled_scores({vit_name + FINETUNE_SUFFIX: model}, path, setup.noise_level, setup.test_noise_seed,
                          variance=setup.r2_variance)[0]
    log(f"{shift.kind} {severity:g}: {r['model']} on {n_train} shifted stars, R2 {r['r2']:.4f} MAE {r['mae']:.4f} "
        f"({info['wall_seconds']:.1f} s)")
    return pd.DataFrame([{"shift": shift.kind, "severity": float(severity), **r}], columns=COLUMNS)


def check_external(path, wave_ref: np.ndarray, labels=("logg",)) -> None:
    """An external test file must be in the contract, on the training wavelength grid, with the labels."""
    info = validate_file(path)
    wave = read_wave(path)
    if wave.shape != wave_ref.shape or not np.allclose(wave, wave_ref, rtol=0, atol=1e-6 * wave_ref.max()):
        raise ValueError(f"config key 'eval.external': {path} has a wavelength grid of {wave.size} pixels "
                         f"({wave[0]:.2f}-{wave[-1]:.2f} Å); expected the training grid of {wave_ref.size} pixels "
                         f"({wave_ref[0]:.2f}-{wave_ref[-1]:.2f} Å): resample it first")
    missing = [lab for lab in labels if lab not in info.label_names]
    if missing:
        raise ValueError(f"config key 'eval.external': {path} lacks the labels {missing}")


def evaluate_external(models: dict, paths, wave_ref: np.ndarray, noise_level: float, noise_seed: int,
                      log=print, variance: float | None = None) -> pd.DataFrame:
    """Rows (external:<file stem>, 0, model, r2, mae) of every external file (R² against ``variance``)."""
    for path in paths:
        check_external(path, wave_ref)
    rows = []
    for path in paths:
        for r in pooled_scores(models, path, noise_level, noise_seed, variance=variance):
            rows.append({"shift": f"external:{Path(path).stem}", "severity": 0.0, **r})
            log(f"external {path}: {r['model']} R2 {r['r2']:.4f} MAE {r['mae']:.4f}")
    return pd.DataFrame(rows, columns=COLUMNS)
