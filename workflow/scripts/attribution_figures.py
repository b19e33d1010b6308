"""Attribution figures from the arrays and the line table (rule fig_attribution)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import numpy as np
import pandas as pd

from specvit.reporting.study_figures import plot_attention_heads, plot_attribution

with np.load(snakemake.input.arrays, allow_pickle=False) as f:
    arrays = dict(f)
plot_attribution(arrays, pd.read_csv(snakemake.input.csv), snakemake.output.pdf, snakemake.output.png)
plot_attention_heads(arrays, snakemake.output.heads_pdf, snakemake.output.heads_png)
