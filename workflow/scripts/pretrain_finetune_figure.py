"""Sample-efficiency curves of the pre-train -> fine-tune study (rule fig_pretrain_finetune)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.study_figures import plot_pretrain_finetune

plot_pretrain_finetune(pd.read_csv(snakemake.input.csv), snakemake.output.pdf, snakemake.output.png)
