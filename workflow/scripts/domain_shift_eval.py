"""One shift: the main runs at every severity, and the ViT fine-tuned on a small shifted set
(rule shift_eval)."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # LightGBM next to other jobs (see train_run.py)

from specvit.runtime.io import log_to

log_to(snakemake.log[0])

from pathlib import Path

import pandas as pd
import torch

from specvit.evaluation.metrics import prior_variances
from specvit.runtime.io import write_csv
from specvit.studies.domain_shift import FineTuneSetup, ShiftSpec, evaluate_shift, finetune_on_shift
from specvit.studies.pretrain_finetune import SplitFiles
from specvit.studies.shifts import ShiftSettings
from specvit.training.factory import load_model

torch.set_num_threads(snakemake.threads)
p = snakemake.params
out = Path(snakemake.output.csv).parent
shift = ShiftSpec(p.shift, p.seed, ShiftSettings(**p.settings))
models = {name: load_model(Path(path).parent) for name, path in zip(p.models, snakemake.input.models)}
variance = prior_variances(p.label_priors, ["logg"])["logg"]  # R² = 1 - MSE / Var(prior), as Table 3's
table = evaluate_shift(models, snakemake.input.test, shift, p.severities, noise_level=p.noise_level,
                       noise_seed=p.test_noise_seed, scratch=out, variance=variance)
if p.vit is not None:
    files = SplitFiles(train=snakemake.input.train, val=snakemake.input.val, test=snakemake.input.test)
    setup = FineTuneSetup(severity=max(p.severities, key=abs), n_train=p.finetune["n_train"],
                          n_val=p.finetune["n_val"], train=p.train, subset_seed=p.subset_seed,
                          val_noise_seed=p.val_noise_seed, test_noise_seed=p.test_noise_seed,
                          noise_level=1.0, r2_variance=variance)  # the noise level of the core runs' validation sets
    tuned = finetune_on_shift(p.vit, Path(snakemake.input.vit).parent, files, shift, setup, out / "finetune")
    table = pd.concat([table, tuned], ignore_index=True)
write_csv(table, snakemake.output.csv)
print(table.to_string(index=False))
