"""Figure 3 from the scaling tables (rule fig3)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.figures import plot_scaling

plot_scaling(pd.read_csv(snakemake.input.csv), pd.read_csv(snakemake.input.summary),
             snakemake.output.pdf, snakemake.output.png, metadata={"Title": "R2 vs N"})
