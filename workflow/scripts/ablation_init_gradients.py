"""Gradient norms at initialisation of every tokenization variant (rule ablation_init_gradients)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import numpy as np
import torch

from specvit.data.contract import read_arrays, read_labels, read_wave
from specvit.data.loader import fixed_noisy
from specvit.data.subsets import load_subset
from specvit.reporting.tables import write_table
from specvit.runtime.io import write_csv
from specvit.studies.init_gradients import init_gradient_table

torch.set_num_threads(snakemake.threads)
p = snakemake.params
rows = np.sort(load_subset(snakemake.input.subset))[: p.batch_size]  # one batch of the ablation's training set
flux, error = read_arrays(snakemake.input.train, rows)
x = fixed_noisy(flux, error, noise_level=1.0, seed=p.noise_seed)
y = read_labels(snakemake.input.train, ["logg"])["logg"][rows].astype(np.float64)
long, table = init_gradient_table(p.variants, x, y, p.seeds, wave=read_wave(snakemake.input.train))
write_csv(long, snakemake.output.runs)
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex, digits=4,
            caption=f"Gradient norm of the MSE loss on one batch of {len(rows)} training spectra at the initial "
                    f"weights, mean and standard deviation over {len(p.seeds)} initialisation seeds: whole model, "
                    f"tokenizer, transformer blocks; and the standard deviation of the tokens.")
print(table.to_string(index=False))
