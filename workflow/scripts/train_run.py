"""Train one run (rule train_run)."""
from specvit.io import log_to

log_to(snakemake.log[0])

from pathlib import Path

import torch

from specvit.runs import RunSpec, execute_run

torch.set_num_threads(snakemake.threads)
spec = RunSpec(**{**snakemake.params.spec, "labels": tuple(snakemake.params.spec["labels"])})
execute_run(
    spec,
    train_path=snakemake.input.train,
    val_path=snakemake.input.val,
    subset_path=snakemake.input.subset,
    out_dir=Path(snakemake.output.metrics).parent,
    val_noise_seed=snakemake.params.val_noise_seed,
    threads=snakemake.threads,
)
