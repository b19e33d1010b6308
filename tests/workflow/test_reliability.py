"""Reliability of the workflow on the smoke config: jobs killed (SIGKILL) while writing data,
training or evaluating leave nothing that passes for complete, and the rerun ends with the
numbers of an uninterrupted build, byte for byte (two builds from empty results/);
every rule logs under results/logs/ and a failing rule names its log; training faults (NaN
loss, out of memory) say what happened and what to do."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import CORE, SMOKE, SNAKEFILE, run_snakemake

# The killed build makes Table 3 and the ceiling table: data, the four main runs, their evaluations and
# the ceilings (21 of the core DAG's 38 jobs), compared with the same files of the shared clean build
KILLED_TARGETS = ("results/tables/table3_main.csv", "results/tables/ceiling.csv")
# Measurements of the machine, not results: the only numbers allowed to differ between builds
# (history.csv: epoch_seconds, samples_per_s; a run registry: wall_seconds, peak_memory_mb).
MEASURED_COLUMNS = {"epoch_seconds", "samples_per_s", "wall_seconds", "peak_memory_mb"}


def result_csvs(root):
    """Every CSV table the workflow wrote (relative path -> bytes); a table with measured
    columns is compared without them."""
    out = {}
    for path in sorted((root / "results").rglob("*.csv")):
        header = set(path.read_text().split("\n", 1)[0].split(","))
        if header & MEASURED_COLUMNS:
            table = pd.read_csv(path)
            out[str(path.relative_to(root))] = table.drop(columns=list(header & MEASURED_COLUMNS)).to_csv(
                index=False).encode()
        else:
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- kill, rerun, same result


def run_until_paused(work, point, kill_snakemake=False, timeout=300):
    """Run snakemake with the pause hook at ``point``; SIGKILL every job that reaches it (and, with
    ``kill_snakemake``, Snakemake itself and all its jobs, as when a node is lost). Returns
    (snakemake's exit status, its output, the pids killed at the point)."""
    pause_dir = work / "pauses"
    pause_dir.mkdir(exist_ok=True)
    exe = Path(sys.executable).with_name("snakemake")
    env = dict(os.environ, PYTHONUNBUFFERED="1", SPECVIT_PAUSE_AT=point, SPECVIT_PAUSE_DIR=str(pause_dir))
    proc = subprocess.Popen([str(exe), "--snakefile", str(SNAKEFILE), "--directory", str(work), "--cores", "2",
                             *KILLED_TARGETS, "--configfile", str(SMOKE), str(CORE)], cwd=work, env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    killed, deadline = set(), time.monotonic() + timeout
    try:
        while proc.poll() is None:
            assert time.monotonic() < deadline, f"snakemake did not stop at {point} within {timeout} s"
            for marker in pause_dir.glob(f"{point.partition(':')[0]}.*"):
                text = marker.read_text()
                if not text:  # created, its pid not yet written: read it at the next poll
                    continue
                pid = int(text)
                if kill_snakemake:
                    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every job it started
                elif pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                marker.unlink()
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, proc.stdout.read(), killed


@pytest.mark.workflow
def test_a_build_killed_three_times_and_rerun_is_byte_identical_to_an_uninterrupted_one(core_build, tmp_path):
    """Kill (SIGKILL) the data generation mid-write, the ViT mid-epoch and an evaluation together
    with Snakemake; after each kill nothing half-done passes for complete, and the final rerun
    ends with the tables, validation metrics and data files of the uninterrupted build.

    This is also the determinism test: both are builds of the smoke config from an empty results/
    (the shared clean build of the whole core DAG, this one of Table 3 and the ceiling table; a
    difference prints its files)."""
    work = tmp_path / "killed"
    work.mkdir()
    # 1. data generation killed after the first of three blocks of the training split
    rc, out, killed = run_until_paused(work, "simulate_block:2")
    assert rc != 0 and len(killed) == 1, out
    assert "Error in rule simulate_split" in out and "results/logs/data/simulate_train.log" in out, out
    assert not (work / "results/data/train.h5").exists()
    assert list((work / "results/data").glob(".train.h5.tmp-*")), "the kill did not hit a file being written"

    # 2. the ViT at N=600 killed in its second epoch (10 steps per epoch)
    rc, out, killed = run_until_paused(work, "train_step:13")
    assert rc != 0 and len(killed) == 1, out
    assert "Error in rule train_run" in out and "results/logs/runs/vit-tiny-N600-s0.log" in out, out
    assert sha(work / "results/data/train.h5") == sha(core_build / "results/data/train.h5")
    assert not list((work / "results/data").glob(".*.tmp-*"))  # the rerun removed the killed attempt's file
    run_dir = work / "results/runs/vit-tiny-N600-s0"
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "model/model.json").exists()
    assert torch.load(run_dir / "last.pt", weights_only=False)["state"]["epoch"] == 1

    # 3. an evaluation killed together with Snakemake (a lost node): its outputs stay marked incomplete
    rc, out, killed = run_until_paused(work, "evaluate_view", kill_snakemake=True)
    assert killed and rc == -signal.SIGKILL, out
    refused = run_snakemake(work, "--cores", "2", *KILLED_TARGETS, "--configfile", SMOKE, CORE)
    assert refused.returncode != 0 and "The files below seem to be incomplete" in refused.stdout, refused.stdout
    assert "/predictions_pooled.h5" in refused.stdout.split("Incomplete files:")[1], refused.stdout
    locked = run_snakemake(work, "--cores", "2", "--rerun-incomplete", *KILLED_TARGETS, "--configfile", SMOKE, CORE)
    assert locked.returncode != 0 and "--unlock" in locked.stdout, locked.stdout  # the dead Snakemake's lock
    assert run_snakemake(work, "--unlock", "--configfile", SMOKE, CORE).returncode == 0

    # 4. the rerun finishes; the ViT resumed from its checkpoint; everything equals the clean build
    r = run_snakemake(work, "--cores", "2", "--rerun-incomplete", *KILLED_TARGETS, "--configfile", SMOKE, CORE,
                      timeout=600)
    assert r.returncode == 0, r.stdout
    assert "resuming" in (work / "results/logs/runs/vit-tiny-N600-s0.log").read_text()
    rerun, clean = result_csvs(work), result_csvs(core_build)
    assert {*KILLED_TARGETS, "results/tables/ceiling_sim.csv", "results/runs/template-N200-s0/metrics_test.csv",
            "results/runs/vit-tiny-N600-s0/metrics_test.csv", "results/runs/vit-tiny-N600-s0/history.csv"} <= set(rerun)
    assert set(rerun) <= set(clean)
    assert [k for k in rerun if rerun[k] != clean[k]] == []
    for split in ("train", "val", "test"):
        assert sha(work / f"results/data/{split}.h5") == sha(core_build / f"results/data/{split}.h5")
    a, b = (json.loads((root / "results/runs/vit-tiny-N600-s0/metrics.json").read_text())
            for root in (work, core_build))
    assert a["val"] == b["val"] and a["fit"]["best_epoch"] == b["fit"]["best_epoch"]
    assert not list((work / "results").rglob(".*.tmp-*"))


# ----------------------------------------------------------------------------- logs


def dry_run_jobs(output):
    """[(rule, text of its job block)] from a dry run's job listing."""
    blocks = re.split(r"\n(?=(?:local)?rule \w+:\n)", output)
    return [(m[1], b) for b in blocks if (m := re.match(r"(?:local)?rule (\w+):\n", b))]


@pytest.mark.workflow
def test_every_rule_of_the_smoke_dag_logs_under_results_logs(core_build, tmp_path):
    # every rule of the whole smoke DAG (ablations and studies included) declares its log there ...
    full = run_snakemake(tmp_path, "-n", "--forceall", "--configfile", SMOKE)
    assert full.returncode == 0, full.stdout
    for rule, block in dry_run_jobs(full.stdout):
        logs = re.findall(r"^\s+log: (.+)$", block, re.M)
        assert rule == "all" or (logs and all(p.startswith("results/logs/") for p in logs[0].split(", "))), rule
    # ... and the clean build of the core DAG wrote every log of its jobs
    r = run_snakemake(tmp_path, "-n", "--forceall", "--configfile", SMOKE, CORE)
    assert r.returncode == 0, r.stdout
    jobs = dry_run_jobs(r.stdout)
    rules = {rule for rule, _ in jobs}
    assert {"simulate_split", "train_run", "evaluate_run", "table3", "fig1", "all"} <= rules
    for rule, block in jobs:
        if rule == "all":
            continue
        logs = re.findall(r"^\s+log: (.+)$", block, re.M)
        assert logs, f"rule {rule} has no log"
        for path in logs[0].split(", "):
            assert path.startswith("results/logs/"), (rule, path)
            assert (core_build / path).is_file(), (rule, path)  # and the clean build wrote it


# ----------------------------------------------------------------------------- training faults


def toy(n=96, n_val=32, p=64, seed=0):
    rng = np.random.default_rng(seed)
    logg = rng.uniform(1, 5, n + n_val)
    flux = (1 - 0.1 * logg[:, None] * np.exp(-0.5 * ((np.arange(p) - 32) / 4.0) ** 2)).astype(np.float32)
    return flux[:n], np.full((n, p), 0.02, np.float32), {"logg": logg[:n]}, flux[n:], {"logg": logg[n:]}


def toy_model(p=64):
    from specvit.models.vit import ViTConfig, build_vit

    torch.manual_seed(0)
    return build_vit(ViTConfig.from_dict({"n_pixels": p, "tokenizer": "C1D", "patch": 16, "dim": 16, "depth": 1,
                                          "heads": 2, "mlp_dim": 32, "pos_encoding": "learned",
                                          "pooling": "mean"}))


def fail_at_call(model, k, exc):
    """Make the ``k``-th forward pass of ``model`` raise ``exc`` (calls counted in training and validation)."""
    calls = {"n": 0}

    def hook(module, inputs):
        calls["n"] += 1
        if calls["n"] == k:
            raise exc

    model.register_forward_pre_hook(hook)
    return model


def test_nan_loss_after_a_good_epoch_names_epoch_step_and_the_last_good_checkpoint(tmp_path):
    from specvit.training.trainer import TrainConfig, TrainingData, TrainingDiverged, train

    flux, error, y, x_val, y_val = toy()
    model = toy_model()
    calls = {"n": 0}

    def poison(module, inputs, output):  # 6 steps + 1 validation pass = epoch 1; then step 3 of epoch 2
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 10 else output

    model.register_forward_hook(poison)
    with pytest.raises(TrainingDiverged) as err:
        train(model, TrainConfig(epochs=3, batch_size=16), TrainingData(("logg",), flux, error, y, x_val, y_val),
              tmp_path, log=lambda *a: None)
    assert f"at epoch 2, step 3; last good checkpoint: {tmp_path / 'last.pt'} (after epoch 1)" in str(err.value)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["state"]["epoch"] == 1


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_out_of_memory_names_the_batch_size_to_try(tmp_path, where):
    """torch raises torch.OutOfMemoryError (= torch.cuda.OutOfMemoryError) on a full GPU; simulated here on CPU."""
    from specvit.training.trainer import TrainConfig, TrainingData, TrainingOutOfMemory, train

    flux, error, y, x_val, y_val = toy()
    model = toy_model()
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if where == "forward":
        fail_at_call(model, 2, oom)
    else:
        def raise_oom(*args):
            raise oom

        model.head.register_full_backward_hook(raise_oom)
    with pytest.raises(TrainingOutOfMemory) as err:
        train(model, TrainConfig(epochs=1, batch_size=16), TrainingData(("logg",), flux, error, y, x_val, y_val),
              tmp_path, log=lambda *a: None)
    message = str(err.value)
    assert "ran out of memory at epoch 1, step" in message
    assert "training.batch_size = 16; try training.batch_size: 8" in message
    assert "Tried to allocate 2.00 GiB" in message
    assert not (tmp_path / "last.pt").exists()  # nothing half-written
