"""Sizing of training jobs for a cluster: CPUs, memory, time limit, and the GPU-hours of a plan.

The workflow's training rules take their Slurm resources from here (through
``specvit.pipeline.job_resources``; ``train_run`` in ``workflow/rules/train.smk`` and the studies' jobs):

* threads (= Slurm CPUs per task): ``threads`` of the config, LightGBM ``cluster.lightgbm_threads``;
* a data-parallel ViT run (``training.devices`` = D > 1, rule ``train_run``) is D processes: D GPUs,
  D Slurm tasks of ``threads`` CPUs each on one node, started by ``srun`` inside the job (the
  plugin's ``mpi`` path), and D x the memory of one process (``data_parallel_resources``);
* ``mem_mb``: the arrays a run holds in memory, which grow with N (``run_mem_mb``);
* ``runtime`` (minutes, Slurm's time limit): ``cluster.runtime_margin`` x the estimated time, times
  the attempt number, so a job that timed out is retried with more time and resumes from ``last.pt``;
* ``slurm_partition`` / ``gpu_model`` of GPU jobs from the user's environment (``SPECVIT_SLURM_*``).

Time estimates come from the benchmark records of earlier runs (``results/benchmarks/runs/*.tsv``
with the run's ``run.json`` and ``metrics.json`` beside its outputs) where a comparable record
exists, else from a documented fallback model (``fallback_seconds``). A dry run prints the GPU-hours
of the stale GPU jobs (``GpuLedger``, filled by ``job_resources`` and printed by ``workflow/rules/cluster.smk``).
"""
from __future__ import annotations

import json
import math
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from specvit.training.spec import RunSpec

# Bytes held in memory per training pixel (N x P), by model: the slope of max_rss between N = 2k
# and 50k in the benchmark records of the default build (ViT: flux + error, float32 = 8 B;
# LightGBM: + the noisy copy, LightGBM's binned data and its gradients; Ridge: + the float64 Gram
# work). The template fit holds flux, error and one noisy copy.
BYTES_PER_PIXEL = {"vit": 8, "lightgbm": 18, "ridge": 14, "template": 12}
# Each noisy copy beyond the first (run-group key noise_copies): the slope of peak RSS from K = 1 to
# K = 4 at N = 2,000 x 4,096 pixels (one LightGBM and one Ridge run each; the float32 copy, and for
# LightGBM its bins and the transients of the noise draw).
COPY_BYTES_PER_PIXEL = {"lightgbm": 15, "ridge": 4}
BASE_MEMORY_MB = 2048          # interpreter, torch, the validation split's bookkeeping
MEMORY_MARGIN = 1.25
VAL_BYTES_PER_PIXEL = 12       # validation flux, error and the fixed noisy view (float32)
MIN_RUNTIME_MIN = 10           # Slurm time limit never below this
# Fallback for the overhead of one job besides training (start-up, loading data, the final
# validation pass), in seconds.
JOB_OVERHEAD_S = 300.0


def processes_of(spec: RunSpec, data_parallel: bool = True) -> int:
    """Processes of a run's job: ``training.devices`` for a ViT of a rule that starts data-parallel
    runs (``train_run``), else one."""
    if spec.model != "vit" or not data_parallel:
        return 1
    return int(spec.train.get("devices", 1))


def gpus_of(spec: RunSpec, data_parallel: bool = True) -> int:
    """GPUs a run asks for: one per process for a ViT, none for the baselines."""
    return processes_of(spec, data_parallel) if spec.model == "vit" else 0


def run_threads(spec: RunSpec, config: dict, data_parallel: bool = True) -> int:
    """Threads of a run's job (= Slurm CPUs per task, per process): LightGBM may get many more than
    the others; a data-parallel job's ``threads`` per process, all of them on one machine."""
    if spec.model == "lightgbm" and config["cluster"]["lightgbm_threads"]:
        return int(config["cluster"]["lightgbm_threads"])
    return int(config["threads"]) * processes_of(spec, data_parallel)


def data_parallel_resources(spec: RunSpec, config: dict) -> dict:
    """Slurm resources of a data-parallel job (D > 1 processes; {} for one): D tasks, one per GPU, of
    ``threads`` CPUs each, on one node, and ``mpi`` so that the job runs its own ``srun``."""
    d = processes_of(spec)
    if d == 1:
        return {}
    return {"tasks": d, "tasks_per_gpu": 1, "cpus_per_task": int(config["threads"]), "nodes": 1, "mpi": "srun"}


def run_mem_mb(spec: RunSpec, n_pixels: int, n_val: int, data_parallel: bool = True) -> int:
    """Memory request of a run in MB: its training arrays scale with N (and its noisy copies), plus
    validation and a base; each process of a data-parallel run holds its own."""
    per_pixel = BYTES_PER_PIXEL[spec.model] + (spec.noise_copies - 1) * COPY_BYTES_PER_PIXEL.get(spec.model, 0)
    n_bytes = per_pixel * spec.n_train * n_pixels + VAL_BYTES_PER_PIXEL * n_val * n_pixels
    one = int(math.ceil(MEMORY_MARGIN * (BASE_MEMORY_MB + n_bytes / 2**20)))
    return one * processes_of(spec, data_parallel)


def machine_memory_mb() -> int | None:
    """Physical memory of this machine in MiB (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20)
    except (ValueError, OSError, AttributeError):
        return None


def copies_memory_message(spec: RunSpec, key: str, *, n_pixels: int, n_val: int, limit_mb: int | None,
                          limit_key: str) -> str | None:
    """Why a run with noisy copies would not fit in ``limit_mb`` (its ``run_mem_mb`` is larger), or
    None; the message names the config ``key`` of the copies and where the limit comes from."""
    need = run_mem_mb(spec, n_pixels, n_val)
    if limit_mb is None or need <= limit_mb or spec.noise_copies <= 1:
        return None
    return (f"config key '{key}' = {spec.noise_copies}: run {spec.run_id} would need about {need:,} MiB "
            f"({spec.noise_copies} noisy copies of {spec.n_train:,} x {n_pixels} pixels), more than the "
            f"{limit_mb:,} MiB of {limit_key}; lower the copies or N, or raise 'memory_mb'")


def epochs_of(spec: RunSpec) -> int:
    """Epochs a run trains: a ViT's ``epochs``, raised by ``min_steps`` for a small set; 1 otherwise."""
    if spec.model != "vit":
        return 1
    from specvit.training.config import TrainConfig

    cfg = TrainConfig.from_dict(spec.train)
    return cfg.epochs_for(-(-spec.n_train // cfg.batch_size))


# ---------------------------------------------------------------- time estimates


@dataclass(frozen=True)
class Record:
    """One finished run's benchmark: wall seconds of its job, and what it trained."""

    run_id: str
    spec: RunSpec
    seconds: float
    epochs: int
    device: str

    @property
    def seconds_per_item(self) -> float:
        """Seconds per training spectrum and epoch."""
        return self.seconds / (self.spec.n_train * self.epochs)


def load_records(results_dir="results") -> list[Record]:
    """Every run with a benchmark TSV, its run.json and metrics.json under ``results_dir``.

    Runs missing one of the three files (still running, failed, deleted) are left out."""
    results_dir = Path(results_dir)
    records = []
    for tsv in sorted((results_dir / "benchmarks" / "runs").glob("*.tsv")):
        run_dir = results_dir / "runs" / tsv.stem
        if not ((run_dir / "run.json").is_file() and (run_dir / "metrics.json").is_file()):
            continue
        bench = pd.read_csv(tsv, sep="\t")
        if bench.empty:
            continue
        d = json.loads((run_dir / "run.json").read_text())
        spec = RunSpec(**{**d, "labels": tuple(d["labels"])})
        metrics = json.loads((run_dir / "metrics.json").read_text())
        epochs = int((metrics.get("fit") or {}).get("epochs") or epochs_of(spec))
        records.append(Record(tsv.stem, spec, float(bench["s"].iloc[-1]), epochs,
                              str(metrics.get("device", "cpu"))))
    return records


def _comparable(record: Record, spec: RunSpec, gpus: int) -> bool:
    """Same model and architecture (ViT) or settings (baselines), and, for a job that asks for a
    GPU, trained on a GPU (a laptop CPU's timing says nothing about a cluster GPU) and on as many."""
    r = record.spec
    if r.model != spec.model or r.labels != spec.labels:
        return False
    if spec.model == "vit":
        same_batch = r.train.get("batch_size") == spec.train.get("batch_size")
        same_gpus = int(r.train.get("devices", 1)) == max(1, gpus)
        return r.vit == spec.vit and same_batch and same_gpus and record.device.startswith("cuda")
    return r.params == spec.params and r.noise_copies == spec.noise_copies


def vit_train_flops(spec: RunSpec, n_pixels: int) -> float:
    """Training FLOPs per spectrum and epoch of a ViT: 6 x parameters x tokens (forward and
    backward of every weight) plus 12 x depth x tokens^2 x dim for the attention products."""
    from specvit.models.vit_config import ViTConfig, n_parameters

    cfg = ViTConfig.from_dict({**spec.vit, "n_pixels": n_pixels, "labels": tuple(spec.labels)})
    t = cfg.seq_len
    return 6.0 * n_parameters(cfg) * t + 12.0 * cfg.depth * t * t * cfg.dim


@dataclass(frozen=True)
class Estimate:
    seconds: float
    source: str     # "benchmarks" or "fallback"
    detail: str

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0


def fallback_seconds(spec: RunSpec, n_pixels: int, gpu_tflops: float, gpus: int = 1,
                     ddp_efficiency: float = 1.0) -> Estimate:
    """The fallback model of a GPU job's time: its training FLOPs (N x epochs x ``vit_train_flops``)
    at ``gpu_tflops`` sustained per GPU, on ``gpus`` GPUs scaling at ``ddp_efficiency`` of ideal,
    plus ``JOB_OVERHEAD_S``."""
    per_item = vit_train_flops(spec, n_pixels)
    speedup = gpus * ddp_efficiency if gpus > 1 else 1.0
    seconds = spec.n_train * epochs_of(spec) * per_item / (gpu_tflops * 1e12 * speedup) + JOB_OVERHEAD_S
    scaling = f" x {gpus} GPUs at {ddp_efficiency:.0%} of ideal scaling" if gpus > 1 else ""
    return Estimate(seconds, "fallback",
                    f"{per_item / 1e9:.2f} GFLOP per spectrum and epoch at {gpu_tflops:g} TFLOP/s{scaling}")


def estimate_seconds(spec: RunSpec, records: list[Record], n_pixels: int, gpu_tflops: float, *,
                     gpus: int | None = None, ddp_efficiency: float = 1.0) -> Estimate | None:
    """Wall time of ``spec``'s job on ``gpus`` GPUs (None: ``gpus_of(spec)``): the median seconds per
    spectrum and epoch of the comparable records (as many GPUs) times its N x epochs; without
    records the fallback model for a GPU job, None otherwise."""
    gpus = gpus_of(spec) if gpus is None else gpus
    rates = [r.seconds_per_item for r in records if _comparable(r, spec, gpus)]
    if rates:
        seconds = statistics.median(rates) * spec.n_train * epochs_of(spec)
        return Estimate(seconds, "benchmarks", f"{len(rates)} benchmark record(s)")
    if gpus:
        return fallback_seconds(spec, n_pixels, gpu_tflops, gpus, ddp_efficiency)
    return None


def runtime_minutes(estimate: Estimate | None, margin: float, default_min: int, attempt: int = 1) -> int:
    """Slurm time limit in minutes: margin x estimate (or ``default_min`` without one), x attempt."""
    base = default_min if estimate is None else max(MIN_RUNTIME_MIN, math.ceil(margin * estimate.seconds / 60))
    return int(base * max(1, attempt))


def gpu_partition(spec: RunSpec, environ=None) -> str:
    """Partition of a run's job from the user's environment: SPECVIT_SLURM_GPU_PARTITION for a job
    that asks for a GPU (falling back to SPECVIT_SLURM_PARTITION), SPECVIT_SLURM_PARTITION
    otherwise; '' leaves the choice to the cluster's default partition."""
    environ = os.environ if environ is None else environ
    default = environ.get("SPECVIT_SLURM_PARTITION", "")
    return environ.get("SPECVIT_SLURM_GPU_PARTITION", default) if gpus_of(spec) else default


def gpu_model(spec: RunSpec, environ=None) -> str:
    """Optional GPU type of a GPU job (SPECVIT_SLURM_GPU_MODEL, e.g. a100): '' asks for any GPU."""
    environ = os.environ if environ is None else environ
    return environ.get("SPECVIT_SLURM_GPU_MODEL", "") if gpus_of(spec) else ""


# ---------------------------------------------------------------- the plan's GPU-hours


def _run_order(run_id: str):
    """Sort key of '{group}-N{n}-s{seed}' ids: by group, then N and seed as numbers."""
    m = re.fullmatch(r"(.*)-N(\d+)-s(\d+)", run_id)
    return (m[1], int(m[2]), int(m[3])) if m else (run_id, 0, 0)


MAX_JOB_LINES = 40  # more stale GPU jobs than this: the dry run's budget is summed per run group


class GpuLedger:
    """The GPU jobs Snakemake plans to run, collected while it sizes them.

    Snakemake evaluates a rule's resources only for the jobs it will run (the stale ones), in a
    dry run too, so recording from the resource function sees exactly the planned jobs."""

    def __init__(self):
        self.jobs: dict[str, tuple[int, Estimate]] = {}

    def record(self, run_id: str, gpus: int, estimate: Estimate | None) -> None:
        if gpus and estimate is not None:
            self.jobs[run_id] = (gpus, estimate)

    def _job_lines(self) -> list[str]:
        width = max(len(r) for r in self.jobs)
        return [f"  {rid:<{width}}  {gpus} GPU  {gpus * est.hours:9.2f} GPU-h  from {est.source}: {est.detail}"
                for rid, (gpus, est) in sorted(self.jobs.items(), key=lambda kv: _run_order(kv[0]))]

    def _group_lines(self) -> list[str]:
        """One line per run group (the run id without -N<n>-s<seed>): too many jobs to list one by one."""
        groups: dict[str, list[float]] = {}
        for rid, (gpus, est) in self.jobs.items():
            groups.setdefault(re.sub(r"-N\d+-s\d+$", "", rid), []).append(gpus * est.hours)
        width = max(len(g) for g in groups)
        return [f"  {g:<{width}}  {len(h):3d} job(s)  {sum(h):9.2f} GPU-h" for g, h in sorted(groups.items())]

    def total_gpu_hours(self) -> float:
        return sum(g * e.hours for g, e in self.jobs.values())

    def summary(self) -> str:
        if not self.jobs:
            return "GPU budget: no stale job asks for a GPU."
        lines = [f"GPU budget of the {len(self.jobs)} stale job(s) that ask for a GPU (estimates):"]
        lines += self._job_lines() if len(self.jobs) <= MAX_JOB_LINES else self._group_lines()
        n_bench = sum(e.source == "benchmarks" for _, e in self.jobs.values())
        lines.append(f"  total {self.total_gpu_hours():.2f} GPU-hours ({n_bench} job(s) from benchmark "
                     f"records, {len(self.jobs) - n_bench} from the fallback model)")
        return "\n".join(lines)
