"""The CPU rows of the benchmark suite (``benchmarks/run.py``): the training data pipeline, the forward
model, the Fisher ceilings, the template fit, the baselines and the workflow's dry run."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import best_time

REPO = Path(__file__).resolve().parents[1]


def write_training_file(path: Path, n: int) -> None:
    """A training split of ``n`` synthetic spectra in the data contract (noise-free flux, 1-sigma error)."""
    from specvit.data.writer import write_split
    from specvit.physics.labels import LABEL_NAMES, LabelSpace
    from specvit.physics.noise import pixel_sigma
    from specvit.physics.spectrum import SpectrumModel, simulate

    model = SpectrumModel()
    labels = LabelSpace().sample(n, np.random.default_rng(0))
    flux = simulate(labels, model, batch_size=1024)
    mags = np.full(n, 21.5)
    error = pixel_sigma(flux, mags).astype(np.float32)
    cols = {name: labels[:, i].astype(np.float32) for i, name in enumerate(LABEL_NAMES)}
    write_split(path, model.wave, flux, error, {**cols, "mag": mags.astype(np.float32)},
                {"source": "synthetic", "seed": 0})


def loader_rate(path: Path, batch: int, epochs: int, cache_mb: float) -> float:
    """Samples/s the training data pipeline delivers from the HDF5 file (``specvit.data.loader``, as the
    trainer opens it): shuffled batches with fresh noise; with a ``cache_mb`` smaller than the
    file, streamed in windows of contiguous blocks (the path of a 1M-spectrum training set)."""
    from specvit.data.loader import NoisyBatches, open_training_spectra

    def run():
        store = open_training_spectra(path, None, cache_mb)
        batches = NoisyBatches.from_store(store, np.zeros((store.n, 1), np.float32), batch, 1.0, seed=0)
        n = 0
        for epoch in range(epochs):
            for xb, _ in batches.epoch(epoch):
                n += len(xb)
        return n

    n = run()
    return n / best_time(run, 2, warmup=0)


def bench_simulate(n: int, repeats: int) -> float:
    """Spectra/s of the forward model at 4096 pixels (float32, batches of 1024)."""
    from specvit.physics.labels import LabelSpace
    from specvit.physics.spectrum import SpectrumModel, simulate

    model = SpectrumModel()
    labels = LabelSpace().sample(n, np.random.default_rng(0))
    return n / best_time(lambda: simulate(labels, model, batch_size=1024), repeats)


def bench_fisher(n: int, n_mags: int, repeats: int) -> float:
    """Stars/s for the exact 5D Fisher matrix and CRLB of log g at ``n_mags`` magnitudes (float64)."""
    from specvit.physics.fisher import ceiling_per_star
    from specvit.physics.labels import LabelSpace
    from specvit.physics.spectrum import SpectrumModel

    model = SpectrumModel()
    labels = LabelSpace().sample(n, np.random.default_rng(0))
    mags = list(np.linspace(18.0, 23.0, n_mags))
    return n / best_time(lambda: ceiling_per_star(model, labels, mags), repeats)


def bench_template(n: int) -> float:
    """Stars/s of the template fit (the default config's 2 starts) on noisy spectra at mag 21."""
    from specvit.data.loader import fixed_noisy
    from specvit.models.template import TemplateFitRegressor
    from specvit.physics.labels import LabelSpace
    from specvit.physics.noise import pixel_sigma
    from specvit.physics.spectrum import SpectrumModel, simulate

    model = SpectrumModel()
    labels = LabelSpace().sample(n, np.random.default_rng(1))
    flux = simulate(labels, model)
    error = pixel_sigma(flux, 21.0).astype(np.float32)
    x = fixed_noisy(flux, error, 1.0, seed=0)
    fit = TemplateFitRegressor(n_starts=2)
    fit.fit(x, {"logg": labels[:, 1]}, log=lambda s: None)  # nothing to learn: checks the grid
    return n / best_time(lambda: fit.predict(x, log=None), 1, warmup=0)


def baseline_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy spectra [n, 4096] and log g of ``n`` synthetic stars at mag 21 (seeded)."""
    from specvit.data.loader import fixed_noisy
    from specvit.physics.labels import LABEL_NAMES, LabelSpace
    from specvit.physics.noise import pixel_sigma
    from specvit.physics.spectrum import SpectrumModel, simulate

    labels = LabelSpace().sample(n, np.random.default_rng(2))
    flux = simulate(labels, SpectrumModel(), batch_size=1024)
    x = fixed_noisy(flux, pixel_sigma(flux, 21.0).astype(np.float32), 1.0, seed=3)
    return x, labels[:, LABEL_NAMES.index("logg")]


def bench_lightgbm(x: np.ndarray, y: np.ndarray, rounds: int, threads: int) -> float:
    """Seconds to bin and fit ``rounds`` boosting rounds (the default config's feature_fraction 0.2)."""
    from specvit.models.lightgbm import LightGBMRegressor

    model = LightGBMRegressor(n_estimators=rounds, feature_fraction=0.2, early_stopping_rounds=None,
                              num_threads=threads, log_period=0)
    return best_time(lambda: model.fit(x, {"logg": y}, log=lambda s: None), 1, warmup=0)


def bench_ridge(x: np.ndarray, y: np.ndarray) -> float:
    """Seconds for the closed-form Ridge fit in float64 (one alpha)."""
    from specvit.models.ridge import RidgeRegressor

    return best_time(lambda: RidgeRegressor(alpha=10.0).fit(x, {"logg": y}, log=lambda s: None), 1, warmup=0)


def dag_dry_run() -> tuple[float, int]:
    """Seconds for ``snakemake -n`` of the full paper config from an empty working directory, and
    the number of jobs it plans (the whole process, as a user waits for it)."""
    exe = Path(sys.executable).with_name("snakemake")
    with tempfile.TemporaryDirectory() as work:
        cmd = [str(exe), "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", work,
               "--configfile", str(REPO / "config" / "paper.yaml")]
        subprocess.run(cmd, capture_output=True, check=True)  # warm-up: file-system caches, .pyc
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - t
    jobs = next((int(line.split()[1]) for line in out.splitlines() if line.startswith("total ")), -1)
    return seconds, jobs


def smoke_main_job_seconds(cores_list, target: str = "results/figures/fig1_r2_vs_snr.pdf",
                           configfile: Path = REPO / "config" / "smoke.yaml") -> tuple[dict[int, float], float]:
    """Wall seconds of ``snakemake <target> --cores c`` on the smoke config from an empty working
    directory, for each c of ``cores_list`` (in that order, after an untimed dry run that warms the
    file-system caches), and the 1-minute load average seen at the end. On a machine with fewer
    CPUs than c, ``--cores c`` is capped to the CPUs (``specvit.pipeline.job_resources.cap_local_cores``)."""
    import os

    exe = Path(sys.executable).with_name("snakemake")
    seconds = {}
    for cores in cores_list:
        with tempfile.TemporaryDirectory() as work:
            cmd = [str(exe), target, "--snakefile", str(REPO / "Snakefile"), "--directory", work,
                   "--configfile", str(configfile), "--cores", str(cores)]
            subprocess.run([*cmd, "-n"], capture_output=True, check=True)
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            seconds[cores] = time.perf_counter() - t
    return seconds, os.getloadavg()[0]
