"""Benchmark suite: throughput figures with this machine's own limits measured in the same run.

    python benchmarks/run.py [--quick] [--threads 2] --out results/benchmarks/suite.csv

Each row: name, value, unit, reference, reference_value, ratio. The reference of a compute
figure is the fp32 GEMM peak of this machine, measured first, so a figure can be read
against what the hardware can do even on a shared, noisy machine.
"""
from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

FIELDS = ["name", "value", "unit", "reference", "reference_value", "ratio"]


def best_time(fn, repeats: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_peak(dtype: torch.dtype, n: int, repeats: int) -> float:
    """GFLOP/s of an n x n @ n x n product (2 n^3 FLOPs)."""
    a = torch.randn(n, n, dtype=torch.float32).to(dtype)
    b = torch.randn(n, n, dtype=torch.float32).to(dtype)
    return 2 * n**3 / best_time(lambda: a @ b, repeats) / 1e9


def bench_simulate(n: int, repeats: int) -> float:
    """Spectra/s of the forward model at 4096 pixels (float32, batches of 1024)."""
    from specvit.forward import SpectrumModel, simulate
    from specvit.labels import LabelSpace

    model = SpectrumModel()
    labels = LabelSpace().sample(n, np.random.default_rng(0))
    return n / best_time(lambda: simulate(labels, model, batch_size=1024), repeats)


def bench_fisher(n: int, repeats: int) -> float:
    """Stars/s for the exact 5D Fisher matrix and CRLB of log g (float64, one magnitude)."""
    from specvit.fisher import ceiling_per_star
    from specvit.forward import SpectrumModel
    from specvit.labels import LabelSpace

    model = SpectrumModel()
    labels = LabelSpace().sample(n, np.random.default_rng(0))
    return n / best_time(lambda: ceiling_per_star(model, labels, [21.0]), repeats)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about a minute on 2 cores")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 3

    peak = matmul_peak(torch.float32, 2048, repeats + 2)
    rows = [dict(name="matmul_peak_fp32", value=peak, unit="GFLOP/s", reference="", reference_value="", ratio="")]
    sim = bench_simulate(2048 if args.quick else 8192, repeats)
    rows.append(dict(name="simulate", value=sim, unit="spectra/s", reference="1M spectra in 10 min",
                     reference_value=1e6 / 600, ratio=sim / (1e6 / 600)))
    fisher = bench_fisher(256 if args.quick else 1024, repeats)
    rows.append(dict(name="fisher", value=fisher, unit="stars/s", reference="10k stars x 9 mags in 60 s",
                     reference_value=1e4 / 60, ratio=fisher / (1e4 / 60)))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"# {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"python {platform.python_version()}")
    print(f"{'name':<18} {'value':>12} {'unit':<10} {'reference':<28} {'ratio':>7}")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] != "" else ""
        print(f"{r['name']:<18} {r['value']:>12.1f} {r['unit']:<10} {r['reference']:<28} {ratio:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
