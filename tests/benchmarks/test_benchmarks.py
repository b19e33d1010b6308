"""The benchmark suite's entry point: its rows and ratios, and its refusal of a device it lacks."""
import csv
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO

SUITE = REPO / "benchmarks" / "run.py"


def run_suite(*args):
    return subprocess.run([sys.executable, str(SUITE), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_rows_are_written_with_their_reference_and_ratio(tmp_path):
    out = tmp_path / "suite.csv"
    r = run_suite("--quick", "--only", "simulate", "trainer", "--out", out)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in csv.DictReader(out.open())}
    assert list(rows) == ["matmul_peak_fp32", "matmul_peak_bf16", "vit_train_default", "vit_train_default_gflops",
                          "vit_train_default_bf16", "vit_train_default_bf16_gflops", "trainer_default", "simulate"]
    assert all(float(row["value"]) > 0 for row in rows.values())
    sim = rows["simulate"]
    assert sim["unit"] == "spectra/s" and float(sim["reference_value"]) == pytest.approx(1e6 / 600)
    assert float(sim["ratio"]) == pytest.approx(float(sim["value"]) / float(sim["reference_value"]))
    # the trainer is read against the step it runs (fp32 on a CPU)
    trainer, step = rows["trainer_default"], rows["vit_train_default"]
    assert float(trainer["reference_value"]) == pytest.approx(float(step["value"]))
    assert float(trainer["ratio"]) == pytest.approx(float(trainer["value"]) / float(step["value"]))
    assert "simulate" in r.stdout and "ratio" in r.stdout  # the printed table


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_suite_without_a_gpu_is_refused_before_any_work(tmp_path):
    out = tmp_path / "gpu.csv"
    r = run_suite("--device", "cuda", "--out", out)
    assert r.returncode == 2
    assert "--device cuda" in r.stderr and "sees no CUDA device" in r.stderr
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_the_gpu_check_stops_at_once_without_a_gpu(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "gpu_check: this torch" in r.stderr and "sees no CUDA device" in r.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_bad_batch_size_is_named(tmp_path):
    r = run_suite("--batch", "0", "--out", tmp_path / "x.csv")
    assert r.returncode == 2 and "--batch must be a positive integer, got 0" in r.stderr
