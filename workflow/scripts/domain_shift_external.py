"""The main runs on the user's external labelled test files (rule external_eval)."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from specvit.runtime.io import log_to

log_to(snakemake.log[0])

from pathlib import Path

import torch

from specvit.data.contract import read_wave
from specvit.evaluation.metrics import prior_variances
from specvit.runtime.io import write_csv
from specvit.studies.domain_shift import evaluate_external
from specvit.training.factory import load_model

torch.set_num_threads(snakemake.threads)
p = snakemake.params
models = {name: load_model(Path(path).parent) for name, path in zip(p.models, snakemake.input.models)}
table = evaluate_external(models, snakemake.input.external, read_wave(snakemake.input.test), p.noise_level,
                          p.test_noise_seed, variance=prior_variances(p.label_priors, ["logg"])["logg"])
write_csv(table, snakemake.output.csv)
print(table.to_string(index=False))
