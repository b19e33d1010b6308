"""``threads:`` and ``resources:`` of the rules whose jobs train a run (``train_run``, and the studies'
pre-training, fine-tune and shift jobs), each described by the run spec (``RunSpec``) it trains.
The sizing itself is ``specvit.pipeline.cluster``; local runs ignore these resources."""
from __future__ import annotations

import functools
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
        self._estimates: dict[str, cluster.Estimate | None] = {}

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

    def estimate(self, spec: RunSpec) -> cluster.Estimate | None:
        if spec.run_id not in self._estimates:
            self._estimates[spec.run_id] = cluster.estimate_seconds(spec, self.records, self.n_pixels,
                                                                    self.config["cluster"]["gpu_tflops"])
        return self._estimates[spec.run_id]

    def runtime_minutes(self, spec: RunSpec, attempt: int) -> int:
        """Slurm time limit in minutes (and the job's entry in the GPU ledger)."""
        estimate = self.estimate(spec)
        self.ledger.record(spec.run_id, cluster.gpus_of(spec), estimate)
        c = self.config["cluster"]
        return cluster.runtime_minutes(estimate, c["runtime_margin"], c["cpu_runtime_min"], attempt)

    def threads(self, spec_of: SpecOf):
        """`threads:` of a rule whose job trains the run ``spec_of(wildcards)``."""
        return lambda wildcards: cluster.run_threads(spec_of(wildcards), self.config)

    def resources(self, spec_of: SpecOf) -> dict:
        """`resources:` (mem_mb, runtime, slurm_partition, gpu_model) of a rule whose job trains the
        run ``spec_of(wildcards)``. Snakemake passes arguments by name: keep them as they are."""

        def mem_mb(wildcards):
            return cluster.run_mem_mb(spec_of(wildcards), self.n_pixels, self.config["data"]["n_val"])

        def runtime(wildcards, attempt):
            return self.runtime_minutes(spec_of(wildcards), attempt)

        def slurm_partition(wildcards):
            return cluster.gpu_partition(spec_of(wildcards))

        def gpu_model(wildcards):
            return cluster.gpu_model(spec_of(wildcards))

        return dict(mem_mb=mem_mb, runtime=runtime, slurm_partition=slurm_partition, gpu_model=gpu_model)
