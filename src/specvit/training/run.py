"""Runs: the config's run groups expanded into one spec per training run, and running one.

A run group in the config names a model and the values to sweep::

    runs:
      - {name: vit-tiny, model: vit, preset: tiny, n_train: [2000, 50000], seeds: [0]}
      - {name: lightgbm, model: lightgbm, params: {num_leaves: 63}, n_train: [2000, 50000]}

Each (group, N, seed) is one run with the readable, stable id ``{group}-N{n}-s{seed}``, and one
folder ``results/runs/<run_id>/``: the resolved spec (``run.json``), the saved model
(``model/``), ``metrics.json``, and for the ViT ``history.csv`` and checkpoints.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specvit.data.contract import read_arrays, read_labels, read_wave
from specvit.data.subsets import load_subset
from specvit.evaluation.coverage import label_ranges
from specvit.runtime.gitinfo import git_state
from specvit.runtime.io import write_json
from specvit.training.factory import build_model
from specvit.training.spec import RunSpec


def train_seed(spec: RunSpec) -> int:
    """Seed of the one fixed noise draw of a baseline's training spectra (trees cannot re-noise per epoch)."""
    return int(np.random.SeedSequence([spec.seed, spec.n_train, 7]).generate_state(1)[0])


def noise_copy_seeds(spec: RunSpec) -> list[int]:
    """Seeds of the ``spec.noise_copies`` noisy draws of a baseline's training spectra: the first is
    ``train_seed`` (one copy is the run without copies), copy k > 0 is seeded from (seed, N, 7, k)."""
    extra = [int(np.random.SeedSequence([spec.seed, spec.n_train, 7, k]).generate_state(1)[0])
             for k in range(1, spec.noise_copies)]
    return [train_seed(spec), *extra]


def noisy_copies(flux: np.ndarray, error: np.ndarray, noise_level: float, seeds) -> np.ndarray:
    """[K N, P] float32: K seeded noisy draws of the N spectra, copy k in rows k N .. (k + 1) N - 1
    (written copy by copy into one array, so the peak is one copy's temporaries above the result)."""
    from specvit.data.loader import fixed_noisy

    n = flux.shape[0]
    out = np.empty((len(seeds) * n, flux.shape[1]), dtype=np.float32)
    for k, seed in enumerate(seeds):
        out[k * n:(k + 1) * n] = fixed_noisy(flux, error, noise_level, seed)
    return out


@dataclass(frozen=True)
class RunFiles:
    """The files one training run reads: the training pool and validation split (HDF5, data contract)
    and the run's training subset (row indices of the pool, ``specvit.data.subsets``)."""

    train: Path
    val: Path
    subset: Path

    def __post_init__(self):
        for name in ("train", "val", "subset"):
            object.__setattr__(self, name, Path(getattr(self, name)))


def execute_run(spec: RunSpec, files: RunFiles, out_dir, *, val_noise_seed: int, threads: int = 0, log=print,
                job: dict | None = None) -> dict:
    """Train one run and write its folder; returns the metrics written to ``metrics.json``
    (with ``job``, where the job ran (specvit.runtime.jobenv), under the key ``job``). The
    validation spectra get the fixed noise of ``val_noise_seed``."""
    import torch  # here, not at the top: the workflow imports this module to read the config

    from specvit.evaluation.metrics import point_metrics
    from specvit.training.device import peak_memory_mb
    from specvit.training.distributed import World
    from specvit.training.trainer import RunFolder

    out_dir = Path(out_dir)
    main_rank = World.current().main  # a data-parallel run's other ranks train and write nothing
    out_dir.mkdir(parents=True, exist_ok=True)
    if main_rank:
        write_json(spec.to_dict(), out_dir / "run.json")
    rows = load_subset(files.subset)
    if rows.size != spec.n_train:
        raise ValueError(f"{files.subset}: holds {rows.size} rows, run {spec.run_id} needs N={spec.n_train}")
    t0 = time.perf_counter()
    flux, error, y_train = _training_set(spec, files.train, rows, log)
    x_val, y_val = _validation_set(spec, files.val, val_noise_seed)
    log(f"{spec.run_id}: {spec.model}, N = {spec.n_train}, seed {spec.seed}, noise level {spec.noise_level}, "
        f"labels {list(spec.labels)}; data loaded in {time.perf_counter() - t0:.1f} s")

    model = build_model(spec, threads)
    if spec.model == "vit":
        identity = {"n_train": spec.n_train, "noise_level": spec.noise_level}
        info = model.fit(flux, y_train, x_val, y_val, log=log, wave=read_wave(files.train),
                         run=RunFolder(out_dir, identity, discard_stale=True))
        if not main_rank:
            return info
    else:  # trees and Ridge cannot re-noise per epoch: K fixed seeded draws of every spectrum instead
        x_train = noisy_copies(flux, error, spec.noise_level, noise_copy_seeds(spec))
        del flux, error
        if spec.noise_copies > 1:
            log(f"{spec.run_id}: {spec.noise_copies} noisy copies of every training spectrum, {x_train.shape[0]} rows")
        copies = {k: np.tile(v, spec.noise_copies) for k, v in y_train.items()}
        info = model.fit(x_train, copies, x_val, y_val, log=log)
    model.save(out_dir / "model")
    if spec.max_eval_stars:
        x_val, y_val = x_val[: spec.max_eval_stars], {k: v[: spec.max_eval_stars] for k, v in y_val.items()}
    pred = model.predict(x_val)
    val = {lab: {k: point_metrics(y_val[lab], pred[lab])[k] for k in ("r2", "mae")} for lab in spec.labels}
    device = info.get("device", "cpu")
    metrics = {"run_id": spec.run_id, "model": spec.model, "n_train": spec.n_train, "seed": spec.seed,
               "noise_level": spec.noise_level, "noise_copies": spec.noise_copies, "labels": list(spec.labels),
               "val": val,
               "train_label_range": label_ranges(y_train),
               "n_val": len(next(iter(y_val.values()))), "wall_seconds": time.perf_counter() - t0,
               "device": device, "peak_memory_mb": peak_memory_mb(torch.device(device)), "fit": info,
               "git": git_state()}  # the commit (and dirty flag) of the code that trained it
    if job is not None:
        metrics["job"] = job
    write_json(metrics, out_dir / "metrics.json")
    log(f"{spec.run_id}: validation " + ", ".join(f"{k} R2 {v['r2']:.4f} MAE {v['mae']:.4f}" for k, v in val.items()))
    return metrics


def _training_set(spec: RunSpec, train_path, rows: np.ndarray, log):
    """(flux, error, labels) of the training ``rows``: for the ViT the noise-free flux in RAM if it
    fits training.cache_mb, else a store that streams it from the file (error None)."""
    from specvit.data.loader import InMemorySpectra, open_training_spectra

    if spec.model == "vit":  # in RAM if it fits training.cache_mb, else streamed from the file
        from specvit.training.config import TrainConfig

        cache_mb = TrainConfig.from_dict(spec.train).cache_mb
        flux, error = open_training_spectra(train_path, rows, cache_mb), None
        if not isinstance(flux, InMemorySpectra):
            log(f"{spec.run_id}: the {flux.n} training spectra exceed training.cache_mb = {cache_mb:g} MiB; "
                f"streaming them from {train_path}, {flux.window_rows} rows at a time")
    else:
        flux, error = read_arrays(train_path, rows)
    labels_all = read_labels(train_path)
    return flux, error, {k: labels_all[k][rows] for k in spec.labels}


def _validation_set(spec: RunSpec, val_path, val_noise_seed: int):
    """(x_val, y_val): the validation spectra with their fixed noise, and their labels."""
    from specvit.data.loader import fixed_noisy

    val_flux, val_error = read_arrays(val_path)
    val_labels = read_labels(val_path)
    y_val = {k: val_labels[k] for k in spec.labels}
    return fixed_noisy(val_flux, val_error, spec.noise_level, val_noise_seed), y_val


def load_specs(paths) -> dict[str, RunSpec]:
    """{run_id: RunSpec} read back from the ``run.json`` beside each given file of a run folder."""
    specs = {}
    for path in paths:
        d = json.loads((Path(path).parent / "run.json").read_text())
        specs[d["run_id"]] = RunSpec(**{**d, "labels": tuple(d["labels"])})
    return specs
