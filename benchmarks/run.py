"""Benchmark suite: throughput figures with this machine's own limits measured in the same run.

    python benchmarks/run.py [--quick] [--threads 2] [--only NAME ...] --out results/benchmarks/suite.csv
    python benchmarks/run.py --device cuda [--compile] [--batch 256] --out results/benchmarks/gpu.csv

Each row: name, value, unit, reference, reference_value, ratio. The references of the compute
figures are GEMM peaks of this machine measured first in the same run (square 2048 x 2048, and
the ViT's own shapes), so a figure can be read against what the hardware does today even on a
shared, noisy machine. Every figure is the best of its repeats after a warm-up.

FLOPs of the ViT rows are analytic (``specvit.models.vit.flops_per_sample``): 2 x the
multiply-accumulates of every matrix product of the forward pass (tokenizer, q/k/v, scores,
weighted sum, projection, MLP, head), x 3 for a training step; LayerNorm, softmax, GELU and the
optimizer are not counted, so the ratio to the GEMM peak is the fraction of the machine's
matrix throughput that training achieves.

``--device cuda`` runs the GEMM peaks (8192 x 8192 there, large enough to fill a GPU) and the
ViT rows on the GPU, timed with a device synchronisation after each call; the other rows are CPU
work whatever the device (the loader then reads against the GPU's training rate).
"""
from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["name", "value", "unit", "reference", "reference_value", "ratio"]


def best_time(fn, repeats: int, warmup: int = 1, device: torch.device | None = None) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` untimed runs; on a
    CUDA ``device`` each run ends with a synchronisation, so the time covers its kernels."""
    def call():
        fn()
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times)


def row(name, value, unit, reference="", reference_value="", ratio=None) -> dict:
    if ratio is None and reference_value not in ("", None, 0):
        ratio = value / reference_value
    return dict(name=name, value=value, unit=unit, reference=reference,
                reference_value=reference_value, ratio="" if ratio is None else ratio)


# --- references: the machine's matrix throughput ---------------------------------------------------

def matmul_gflops(dtype: torch.dtype, m: int, k: int, n: int, repeats: int, device: torch.device) -> float:
    """GFLOP/s of an [m, k] @ [k, n] product (2 m k n FLOPs) on ``device``."""
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    return 2 * m * k * n / best_time(lambda: a @ b, repeats, device=device) / 1e9


# --- ViT training ----------------------------------------------------------------------------------

def vit_train_rate(preset: str, batch: int, steps: int, bf16: bool, device: torch.device,
                   compile_model: bool = False) -> float:
    """Training samples/s of a ViT preset at 4096 pixels on ``device``: forward, MSE loss, backward
    and the AdamW step of ``specvit.training.trainer`` (same optimizer and settings), on random spectra
    already on the device; best of ``steps`` steps."""
    from specvit.models.vit import ViTConfig, build_vit
    from specvit.training.optim import make_optimizer

    torch.manual_seed(0)
    model = build_vit(ViTConfig.from_preset(preset, 4096)).to(device)
    opt = make_optimizer(model, lr=1e-4, weight_decay=0.01)
    step_model = torch.compile(model) if compile_model else model
    x, y = torch.randn(batch, 4096, device=device), torch.randn(batch, 1, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.mse_loss(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return batch / best_time(step, steps, warmup=2 if compile_model else 1, device=device)


def vit_rows(name: str, preset: str, batch: int, steps: int, peaks: dict, device: torch.device,
             compile_model: bool) -> list[dict]:
    from specvit.models.vit import ViTConfig, flops_per_sample

    flops = flops_per_sample(ViTConfig.from_preset(preset, 4096), training=True)
    fp32 = vit_train_rate(preset, batch, steps, False, device, compile_model)
    bf16 = vit_train_rate(preset, batch, steps, True, device, compile_model)
    if compile_model:
        name += "_compiled"
    return [
        row(name, fp32, "samples/s", f"batch {batch}, fp32"),
        row(f"{name}_gflops", fp32 * flops / 1e9, "GFLOP/s", "matmul_peak_fp32", peaks["fp32"]),
        row(f"{name}_bf16", bf16, "samples/s", f"{name} (fp32 samples/s)", fp32),
        row(f"{name}_bf16_gflops", bf16 * flops / 1e9, "GFLOP/s", "matmul_peak_bf16", peaks["bf16"]),
    ]


def trainer_rate(preset: str, n: int, batch: int, device: torch.device) -> float:
    """Samples/s of ``specvit.training.trainer.train`` itself in its second epoch, as history.csv records it:
    the in-RAM loader drawing fresh noise, the schedule, loss, clipping, the AdamW step and the
    per-step bookkeeping on ``device`` at the trainer's default precision (bf16 autocast on a GPU,
    fp32 on a CPU); validation and checkpoints fall outside the timed loop. Random spectra."""
    from specvit.models.vit import ViTConfig, build_vit
    from specvit.training.trainer import TrainConfig, TrainingData, train

    rng = np.random.default_rng(0)
    flux = rng.uniform(0.5, 1.0, (n, 4096)).astype(np.float32)
    error = np.full_like(flux, 0.02)
    logg = rng.uniform(1.0, 5.0, n)
    torch.manual_seed(0)
    model = build_vit(ViTConfig.from_preset(preset, 4096))
    cfg = TrainConfig(epochs=2, batch_size=batch, device=device.type)
    with tempfile.TemporaryDirectory() as run_dir:
        data = TrainingData(("logg",), flux, error, {"logg": logg}, flux[:256], {"logg": logg[:256]})
        train(model, cfg, data, run_dir, log=lambda *a: None)
        with open(Path(run_dir) / "history.csv") as f:
            return float(list(csv.DictReader(f))[-1]["samples_per_s"])


# --- data: loader, simulation, Fisher ----------------------------------------------------------------

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


# --- baselines ---------------------------------------------------------------------------------------

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


# --- the workflow ------------------------------------------------------------------------------------

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


# --- the suite ---------------------------------------------------------------------------------------

def run_suite(quick: bool, threads: int, only: set[str] | None, device: torch.device | None = None,
              compile_model: bool = False, batch: int | None = None) -> list[dict]:
    want = (lambda name: only is None or name in only)
    reps = 2 if quick else 3
    device = device or torch.device("cpu")
    peak_n = 8192 if device.type == "cuda" else 2048
    peak_shape = f"{peak_n}^2 @ {peak_n}^2"
    rows: list[dict] = []

    def add(*new):
        for r in new:
            rows.append(r)
            print(f"  {r['name']:<28} {r['value']:>12.4g} {r['unit']}", flush=True)

    peaks = {"fp32": matmul_gflops(torch.float32, peak_n, peak_n, peak_n, reps + 2, device),
             "bf16": matmul_gflops(torch.bfloat16, peak_n, peak_n, peak_n, reps + 2, device)}
    add(row("matmul_peak_fp32", peaks["fp32"], "GFLOP/s", peak_shape),
        row("matmul_peak_bf16", peaks["bf16"], "GFLOP/s", peak_shape))
    if want("matmul_vit_shape"):
        shape = (16384 if quick else 65536, 256, 1024)
        add(row("matmul_vit_shape_fp32", matmul_gflops(torch.float32, *shape, reps, device), "GFLOP/s",
                "matmul_peak_fp32", peaks["fp32"]),
            row("matmul_vit_shape_bf16", matmul_gflops(torch.bfloat16, *shape, reps, device), "GFLOP/s",
                "matmul_peak_bf16", peaks["bf16"]))
    def at_trainer_precision(vit_rows_: list[dict]) -> dict:
        """The step-rate row at the trainer's own precision: bf16 autocast on a GPU, fp32 on a CPU."""
        name = vit_rows_[0]["name"] + ("_bf16" if device.type == "cuda" else "")
        return next(r for r in vit_rows_ if r["name"] == name)

    paper_batch = batch or (64 if quick else 256)
    if want("vit_train_paper") or (want("trainer") and device.type == "cuda"):
        paper_rows = vit_rows("vit_train_paper", "p16_h256_L6", paper_batch, reps, peaks, device, compile_model)
        add(*paper_rows)
    default_rate = None
    if want("vit_train_default") or want("loader") or want("trainer"):
        default_rows = vit_rows("vit_train_default", "tiny", 256, reps + 2, peaks, device, compile_model)
        default_step = at_trainer_precision(default_rows)
        default_rate = default_step["value"]
        add(*default_rows)
    if want("trainer"):
        add(row("trainer_default", trainer_rate("tiny", 8192 if quick else 32768, 256, device), "samples/s",
                f"{default_step['name']} (the step alone)", default_rate))
        if device.type == "cuda":  # hours on a CPU
            paper_step = at_trainer_precision(paper_rows)
            add(row("trainer_paper", trainer_rate("p16_h256_L6", 32768, paper_batch, device), "samples/s",
                    f"{paper_step['name']} (the step alone)", paper_step["value"]))
    if want("loader"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.h5"
            write_training_file(path, 4096 if quick else 20000)
            size_mb = path.stat().st_size / 2**20
            consumed = f"{default_step['name']} (samples/s consumed)"
            add(row("loader", loader_rate(path, 256, 2, cache_mb=1e6), "samples/s", consumed, default_rate),
                row("loader_streamed", loader_rate(path, 256, 2, cache_mb=size_mb / 8), "samples/s", consumed,
                    default_rate))
    if want("simulate"):
        add(row("simulate", bench_simulate(2048 if quick else 8192, reps), "spectra/s",
                "1M spectra in 10 min", 1e6 / 600))
    if want("fisher"):
        add(row("fisher", bench_fisher(256 if quick else 1024, 9, reps), "stars/s",
                "10k stars x 9 mags in 60 s", 1e4 / 60))
    if want("template_fit"):
        add(row("template_fit", bench_template(4 if quick else 32), "stars/s", "1,000 test stars in 10 min",
                1000 / 600))
    if want("lightgbm_fit") or want("ridge_fit"):
        n = 5000 if quick else 20000
        x, y = baseline_data(n)
        if want("lightgbm_fit"):
            add(row("lightgbm_fit", bench_lightgbm(x, y, 20 if quick else 100, threads), "s",
                    f"N={n}, {20 if quick else 100} rounds, feature_fraction 0.2"))
        if want("ridge_fit"):
            add(row("ridge_fit", bench_ridge(x, y), "s", f"N={n}, closed form, float64"))
    if want("dag_dry_run"):
        seconds, jobs = dag_dry_run()
        add(row("dag_dry_run", seconds, "s", f"snakemake -n, paper config ({jobs} jobs), goal 3 s", 3.0))
    return rows


def write_rows(rows: list[dict], out: Path) -> None:
    """The rows as CSV at ``out``, written only when the suite has finished (no partial file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        print(f"replacing the earlier figures in {out}")
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows: list[dict], threads: int, device: torch.device) -> None:
    where = torch.cuda.get_device_name(device) + ", " if device.type == "cuda" else ""
    print(f"# {where}{platform.processor() or platform.machine()}, {threads} threads, torch {torch.__version__}, "
          f"python {platform.python_version()}")
    print(f"{'name':<28} {'value':>12} {'unit':<10} {'reference':<44} {'ratio':>7}")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] != "" else ""
        print(f"{r['name']:<28} {r['value']:>12.4g} {r['unit']:<10} {str(r['reference'])[:44]:<44} {ratio:>7}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about two minutes on 2 cores")
    parser.add_argument("--threads", type=int, default=2, help="torch and LightGBM threads")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="only these rows (and the GEMM peaks): matmul_vit_shape vit_train_paper "
                             "vit_train_default trainer loader simulate fisher template_fit lightgbm_fit "
                             "ridge_fit dag_dry_run")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the GEMM peaks and the ViT rows run (default cpu)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the ViTs (rows named ..._compiled)")
    parser.add_argument("--batch", type=int, help="batch size of vit_train_paper (default 64 quick, 256 full)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device cuda: this torch ({torch.__version__}, CUDA build: {torch.version.cuda}) "
                     "sees no CUDA device; run on a GPU machine, or leave --device out for the CPU suite")
    if args.batch is not None and args.batch < 1:
        parser.error(f"--batch must be a positive integer, got {args.batch}")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rows = run_suite(args.quick, args.threads, set(args.only) if args.only else None, device, args.compile,
                     args.batch)
    write_rows(rows, args.out)
    print_table(rows, args.threads, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
