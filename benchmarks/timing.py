"""Timing of the benchmark suite (``benchmarks/run.py``): best-of-repeats wall times, the rows of
its table, and the GEMM peaks every compute figure is read against."""
from __future__ import annotations

import time

import torch


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


def matmul_gflops(dtype: torch.dtype, m: int, k: int, n: int, repeats: int, device: torch.device) -> float:
    """GFLOP/s of an [m, k] @ [k, n] product (2 m k n FLOPs) on ``device``."""
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    return 2 * m * k * n / best_time(lambda: a @ b, repeats, device=device) / 1e9
