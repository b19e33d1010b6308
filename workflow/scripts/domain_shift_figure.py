"""R² vs severity per shift (rule fig_domain_shift)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.study_figures import plot_domain_shift
from specvit.studies.shifts import UNITS

plot_domain_shift(pd.read_csv(snakemake.input.csv), UNITS, snakemake.output.pdf, snakemake.output.png)
