"""One run of the pre-train -> fine-tune study: the pre-training, a fine-tune or a from-scratch run
(rules pretrain_run and finetune_run)."""
from specvit.runtime.io import log_to

log_to(snakemake.log[0])

from pathlib import Path

import numpy as np
import torch

from specvit.data.contract import validate_file
from specvit.data.subsets import load_subset, make_nested_subsets
from specvit.evaluation.metrics import prior_variances
from specvit.studies.pretrain_finetune import SplitFiles, load_study, run_transfer

torch.set_num_threads(snakemake.threads)
p = snakemake.params
if p.n_train is None:  # the pre-training: a nested subset of the core runs
    rows = load_subset(snakemake.input.subset)
else:                  # fine-tune and scratch runs of one N use the same stars
    n_pool = validate_file(snakemake.input.train, check_values=False).n
    if max(p.all_n) > n_pool:
        raise ValueError(f"config key 'pretrain.n_finetune' has N={max(p.all_n)}, more than the {n_pool} spectra "
                         f"of {snakemake.input.train}")
    rows = make_nested_subsets(n_pool, p.all_n, p.subset_seed)[p.n_train]
files = SplitFiles(train=snakemake.input.train, val=snakemake.input.val, test=snakemake.input.test)
data = load_study(files, rows, p.labels, val_noise_seed=p.val_noise_seed, test_noise_seed=p.test_noise_seed,
                  val_noise_level=1.0, test_noise_level=p.test_noise_level,  # validation: as the core runs'
                  r2_variance=prior_variances(p.label_priors, ["logg"])["logg"])  # R² as Table 3's
init = Path(snakemake.input.init).parent if hasattr(snakemake.input, "init") else None
metrics = run_transfer(Path(snakemake.output.metrics).parent, data, p.vit, p.train, init_dir=init,
                       identity={"rows": int(np.sum(rows)), "n": int(rows.size)})
