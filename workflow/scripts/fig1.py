"""Figure 1 from Table 3 and the ceiling table (rules fig1 and fig1_seeds)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.figure1 import plot_r2_vs_snr

plot_r2_vs_snr(pd.read_csv(snakemake.input.table3), pd.read_csv(snakemake.input.ceiling),
               snakemake.output.pdf, snakemake.output.png, metadata={"Title": "R2 vs SNR"},
               train_mags=snakemake.params.train_mags)
