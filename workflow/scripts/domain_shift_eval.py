"""One shift: the main runs at every severity, and the ViT fine-tuned on a small shifted set
(rule shift_eval)."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # LightGBM next to other jobs (see train_run.py)

from specvit.runtime.io import log_to

log_to(snakemake.log[0])

from pathlib import Path

import pandas as pd
import torch

from specvit.runtime.io import write_csv
from specvit.studies.domain_shift import evaluate_shift, finetune_on_shift
from specvit.studies.shifts import ShiftSettings
from specvit.training.factory import load_model

torch.set_num_threads(snakemake.threads)
p = snakemake.params
out = Path(snakemake.output.csv).parent
settings = ShiftSettings(**p.settings)
models = {name: load_model(Path(path).parent) for name, path in zip(p.models, snakemake.input.models)}
table = evaluate_shift(models, snakemake.input.test, p.shift, p.severities, p.seed, settings, p.noise_level,
                       p.test_noise_seed, scratch=out)
if p.vit is not None:
    ft = p.finetune
    tuned = finetune_on_shift(p.vit, Path(snakemake.input.vit).parent, snakemake.input.train, snakemake.input.val,
                              snakemake.input.test, p.shift, max(p.severities, key=abs), p.seed, settings,
                              ft["n_train"], ft["n_val"], p.train, 1.0, p.val_noise_seed, p.test_noise_seed,
                              p.subset_seed, out / "finetune")
    table = pd.concat([table, tuned], ignore_index=True)
write_csv(table, snakemake.output.csv)
print(table.to_string(index=False))
