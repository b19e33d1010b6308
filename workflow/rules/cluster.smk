# Cluster sizing of the train_run jobs (threads, memory, time limit, partition, GPU type) and the
# GPU-hours a dry run prints. The logic is in specvit.cluster; this file only wires it to the
# rule's resources. Included before train.smk.

import atexit
import functools
import sys

from snakemake_interface_executor_plugins.settings import ExecMode

from specvit import cluster as _cluster

GPU_LEDGER = _cluster.GpuLedger()


@functools.cache
def _n_pixels():
    """Pixels per spectrum: the synthetic grid, or the user's train file (read once)."""
    if is_synthetic():
        from specvit.forward_config import N_PIXELS

        return N_PIXELS
    from specvit.data import read_wave

    return int(read_wave(data_path("train")).size)


@functools.cache
def _benchmark_records():
    return _cluster.load_records("results")


@functools.cache
def _train_estimate(run_id):
    return _cluster.estimate_seconds(
        RUNS[run_id], _benchmark_records(), _n_pixels(), config["cluster"]["gpu_tflops"]
    )


def train_threads(wildcards):
    return _cluster.run_threads(RUNS[wildcards.run_id], config)


def train_mem_mb(wildcards):
    return _cluster.run_mem_mb(RUNS[wildcards.run_id], _n_pixels(), config["data"]["n_val"])


def train_runtime(wildcards, attempt):
    """Slurm time limit in minutes; sizing a job also enters it in the GPU ledger (so the
    ledger holds exactly the jobs Snakemake plans to run)."""
    spec = RUNS[wildcards.run_id]
    estimate = _train_estimate(wildcards.run_id)
    GPU_LEDGER.record(wildcards.run_id, _cluster.gpus_of(spec), estimate)
    c = config["cluster"]
    return _cluster.runtime_minutes(estimate, c["runtime_margin"], c["cpu_runtime_min"], attempt)


def train_partition(wildcards):
    return _cluster.gpu_partition(RUNS[wildcards.run_id])


def train_gpu_model(wildcards):
    return _cluster.gpu_model(RUNS[wildcards.run_id])


def _print_gpu_budget():
    """At the end of a dry run (the main process, not a job), the GPU-hours of the planned jobs.
    Snakemake runs no hooks in a dry run, hence atexit."""
    try:
        planning = workflow.dryrun and workflow.exec_mode == ExecMode.DEFAULT
    except Exception:  # snakemake stopped before it chose an executor
        return
    if planning and GPU_LEDGER.jobs:
        print(GPU_LEDGER.summary(), file=sys.stderr)


atexit.register(_print_gpu_budget)
