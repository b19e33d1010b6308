# Cluster sizing of the training jobs (threads, memory, time limit, partition, GPU type) and the
# GPU-hours a dry run prints: specvit.pipeline.job_resources and specvit.pipeline.cluster, wired to
# the rules' resources: train_run, and the studies' pre-train, fine-tune and shift jobs, each
# described by the run spec (specvit.training.spec.RunSpec) its job trains.

import atexit
import sys

from snakemake_interface_executor_plugins.settings import ExecMode

from specvit.pipeline.job_resources import JobResources, cap_local_cores, usable_cpus

JOBS = JobResources(config)
cluster_threads, cluster_resources = JOBS.threads, JOBS.resources

# `--cores` larger than this machine: never more threads at once than it has CPUs (local runs only).
_asked_cores = cap_local_cores(workflow.global_resources)
if _asked_cores is not None and workflow.exec_mode == ExecMode.DEFAULT:
    print(f"--cores {_asked_cores} is more than the {usable_cpus()} CPUs of this machine: jobs run with at most "
          f"{usable_cpus()} threads in all (specvit.pipeline.job_resources.cap_local_cores)", file=sys.stderr)


def train_spec(wildcards):
    return RUNS[wildcards.run_id]


def _print_gpu_budget():
    """At the end of a dry run (the main process, not a job), the GPU-hours of the planned jobs.
    Snakemake runs no hooks in a dry run, hence atexit."""
    try:
        planning = workflow.dryrun and workflow.exec_mode == ExecMode.DEFAULT
    except Exception:  # snakemake stopped before it chose an executor
        return
    if planning and JOBS.ledger.jobs:
        print(JOBS.ledger.summary(), file=sys.stderr)


atexit.register(_print_gpu_budget)
