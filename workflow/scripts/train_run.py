"""Train one run (rule train_run)."""
import os

# OpenMP threads that busy-wait collapse when other jobs share the cores (LightGBM fits were
# 15-80x slower next to one busy process); it must be set before torch or lightgbm load OpenMP.
if snakemake.params.spec["model"] == "lightgbm":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from specvit.runtime.io import log_to, remove_leftovers

log_to(snakemake.log[0])

from functools import partial
from pathlib import Path

for leftover in remove_leftovers(Path(snakemake.output.metrics).parent):  # the job owns its run folder
    print(f"removed {leftover}, left by an interrupted earlier attempt")

import torch

from specvit.runtime.jobenv import describe, job_environment
from specvit.training.config import TrainConfig
from specvit.training.ddp_launch import launch_run
from specvit.training.run import RunFiles, execute_run
from specvit.training.spec import RunSpec

job = job_environment()  # Slurm job id, CUDA_VISIBLE_DEVICES, host: traced in the log and metrics.json
print(describe(job))

torch.set_num_threads(snakemake.threads)
spec = RunSpec(**{**snakemake.params.spec, "labels": tuple(snakemake.params.spec["labels"])})
devices = TrainConfig.from_dict(spec.train).devices if spec.model == "vit" else 1
# training.devices > 1: that many DDP processes (torchrun here, srun in a Slurm job), sharing the job's threads
run = execute_run if devices == 1 else partial(launch_run, devices=devices)
run(
    spec,
    RunFiles(train=snakemake.input.train, val=snakemake.input.val, subset=snakemake.input.subset),
    out_dir=Path(snakemake.output.metrics).parent,
    val_noise_seed=snakemake.params.val_noise_seed,
    threads=snakemake.threads,
    job=job,
)
