# Cluster sizing of the training jobs (threads, memory, time limit, partition, GPU type) and the
# GPU-hours a dry run prints. The logic is in specvit.pipeline.cluster; this file only wires it to the
# rules' resources: train_run, and the studies' pre-train, fine-tune and shift jobs (beyond.smk),
# each described by the run spec (specvit.training.spec.RunSpec) its job trains. Included before train.smk.

import atexit
import functools
import sys

from snakemake_interface_executor_plugins.settings import ExecMode

from specvit.pipeline import cluster as _cluster

GPU_LEDGER = _cluster.GpuLedger()


@functools.cache
def _n_pixels():
    """Pixels per spectrum: the synthetic grid, or the user's train file (read once)."""
    if is_synthetic():
        from specvit.physics.grid import N_PIXELS

        return N_PIXELS
    from specvit.data.contract import read_wave

    return int(read_wave(data_path("train")).size)


@functools.cache
def _benchmark_records():
    return _cluster.load_records("results")


_ESTIMATES = {}


def _estimate(spec):
    if spec.run_id not in _ESTIMATES:
        _ESTIMATES[spec.run_id] = _cluster.estimate_seconds(
            spec, _benchmark_records(), _n_pixels(), config["cluster"]["gpu_tflops"]
        )
    return _ESTIMATES[spec.run_id]


def cluster_threads(spec_of):
    """`threads:` of a rule whose job trains the run ``spec_of(wildcards)``."""
    return lambda wildcards: _cluster.run_threads(spec_of(wildcards), config)


def cluster_resources(spec_of):
    """`resources:` (mem_mb, runtime, slurm_partition, gpu_model) of a rule whose job trains the
    run ``spec_of(wildcards)``; local runs ignore them. Sizing a job's time limit also enters it
    in the GPU ledger, so the ledger holds exactly the jobs Snakemake plans to run."""

    def mem_mb(wildcards):
        return _cluster.run_mem_mb(spec_of(wildcards), _n_pixels(), config["data"]["n_val"])

    def runtime(wildcards, attempt):
        """Slurm time limit in minutes."""
        spec = spec_of(wildcards)
        estimate = _estimate(spec)
        GPU_LEDGER.record(spec.run_id, _cluster.gpus_of(spec), estimate)
        c = config["cluster"]
        return _cluster.runtime_minutes(estimate, c["runtime_margin"], c["cpu_runtime_min"], attempt)

    def slurm_partition(wildcards):
        return _cluster.gpu_partition(spec_of(wildcards))

    def gpu_model(wildcards):
        return _cluster.gpu_model(spec_of(wildcards))

    return dict(mem_mb=mem_mb, runtime=runtime, slurm_partition=slurm_partition, gpu_model=gpu_model)


def train_spec(wildcards):
    return RUNS[wildcards.run_id]


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
