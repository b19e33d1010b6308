"""Pooled test metrics of one run at several test noise levels (rule evaluate_noise)."""
from specvit.runtime.io import log_to

log_to(snakemake.log[0])

from pathlib import Path

import numpy as np
import torch

from specvit.evaluation.metrics import prior_variances
from specvit.evaluation.noise_levels import metrics_at_noise_levels
from specvit.runtime.io import write_csv
from specvit.training.factory import load_model

torch.set_num_threads(snakemake.threads)
p = snakemake.params
model = load_model(Path(snakemake.input.model).parent)
rows = None if p.max_stars is None else np.arange(p.max_stars)
table = metrics_at_noise_levels(model, snakemake.input.test, p.noise_levels, p.seed, rows=rows, n_boot=p.n_boot,
                                variances=prior_variances(p.label_priors, model.labels))
write_csv(table, snakemake.output.metrics)
print(table.to_string(index=False))
