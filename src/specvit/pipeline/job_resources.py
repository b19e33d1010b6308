"""``threads:`` and ``resources:`` of the rules whose jobs train a run (``train_run``, and the studies'
pre-training, fine-tune and shift jobs), each described by the run spec (``RunSpec``) it trains.
The sizing itself is ``specvit.pipeline.cluster``; local runs ignore these resources, but not the
machine's own CPUs (``cap_local_cores``)."""
from __future__ import annotations

import functools
import os
from collections.abc import Callable

from specvit.pipeline import cluster
from specvit.training.spec import RunSpec

SpecOf = Callable[[object], RunSpec]  # the run spec of a job, from its wildcards


class JobResources:
    """Sizes the training jobs of one workflow; sizing a job's time limit also enters it in ``ledger``,
    so the ledger holds exactly the jobs Snakemake plans to run (it evaluates the resources of the
    jobs it will run only)."""

    def __init__(self, config: dict, results: str = "results"):
        self.config = config
        self.results = results
        self.ledger = cluster.GpuLedger()
        self._estimates: dict[tuple[str, bool], cluster.Estimate | None] = {}

    @functools.cached_property
    def n_pixels(self) -> int:
        """Pixels per spectrum: the synthetic grid, or the user's train file (read once, when first needed)."""
        if self.config["data"]["source"] == "synthetic":
            from specvit.physics.grid import N_PIXELS

            return N_PIXELS
        from specvit.data.contract import read_wave

        return int(read_wave(self.config["data"]["train"]).size)

    @functools.cached_property
    def records(self) -> list[cluster.Record]:
        return cluster.load_records(self.results)

    def estimate(self, spec: RunSpec, data_parallel: bool = False) -> cluster.Estimate | None:
        key = (spec.run_id, data_parallel)
        if key not in self._estimates:
            c = self.config["cluster"]
            self._estimates[key] = cluster.estimate_seconds(spec, self.records, self.n_pixels, c["gpu_tflops"],
                                                            gpus=cluster.gpus_of(spec, data_parallel),
                                                            ddp_efficiency=c["ddp_efficiency"])
        return self._estimates[key]

    def runtime_minutes(self, spec: RunSpec, attempt: int, data_parallel: bool = False) -> int:
        """Slurm time limit in minutes (and the job's entry in the GPU ledger)."""
        estimate = self.estimate(spec, data_parallel)
        self.ledger.record(spec.run_id, cluster.gpus_of(spec, data_parallel), estimate)
        c = self.config["cluster"]
        return cluster.runtime_minutes(estimate, c["runtime_margin"], c["cpu_runtime_min"], attempt)

    def threads(self, spec_of: SpecOf, data_parallel: bool = False):
        """`threads:` of a rule whose job trains the run ``spec_of(wildcards)`` (all processes of a
        data-parallel one, when the rule starts them: ``data_parallel``)."""
        return lambda wildcards: cluster.run_threads(spec_of(wildcards), self.config, data_parallel)

    def resources(self, spec_of: SpecOf, data_parallel: bool = False) -> dict:
        """`resources:` (mem_mb, runtime, slurm_partition, gpu_model) of a rule whose job trains the
        run ``spec_of(wildcards)``; with ``data_parallel`` (a rule that starts ``training.devices``
        processes) also its GPUs (``gpu``) and a multi-process job's tasks (``data_parallel_resources``;
        None, i.e. left out, for one process). Snakemake passes arguments by name: keep them as they are."""

        def mem_mb(wildcards):
            return cluster.run_mem_mb(spec_of(wildcards), self.n_pixels, self.config["data"]["n_val"], data_parallel)

        def runtime(wildcards, attempt):
            return self.runtime_minutes(spec_of(wildcards), attempt, data_parallel)

        def slurm_partition(wildcards):
            return cluster.gpu_partition(spec_of(wildcards))

        def gpu_model(wildcards):
            return cluster.gpu_model(spec_of(wildcards))

        out = dict(mem_mb=mem_mb, runtime=runtime, slurm_partition=slurm_partition, gpu_model=gpu_model)
        if data_parallel:
            out["gpu"] = lambda wildcards: cluster.gpus_of(spec_of(wildcards))
            for key in ("tasks", "tasks_per_gpu", "cpus_per_task", "nodes", "mpi"):
                out[key] = self._task_resource(spec_of, key)
        return out

    def _task_resource(self, spec_of: SpecOf, key: str):
        return lambda wildcards: cluster.data_parallel_resources(spec_of(wildcards), self.config).get(key)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity: a container's or a Slurm job's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cap_local_cores(global_resources, available: int | None = None) -> int | None:
    """Lower Snakemake's limit on the threads of the jobs running at once (``_cores``, what ``--cores``
    says) to the CPUs of this machine, so that ``--cores 8`` on 2 cores runs what ``--cores 2`` does
    instead of four 2-thread jobs fighting for 2 cores (a job's threads are clamped to it too).
    Only where jobs run here: a cluster executor (``--jobs``, no ``--cores``) is left alone.
    Returns the ``--cores`` it lowered, else None."""
    if global_resources["_nodes"].value is not None:
        return None
    cores = global_resources["_cores"].value
    available = usable_cpus() if available is None else available
    if not isinstance(cores, int) or cores <= available:
        return None
    global_resources["_cores"] = available
    return cores
