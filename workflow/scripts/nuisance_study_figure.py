"""R² vs SNR on clean spectra and with nuisances, against their ceilings (rule fig_nuisance_study)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.study_figures import plot_nuisance_study

plot_nuisance_study(pd.read_csv(snakemake.input.csv), snakemake.output.pdf, snakemake.output.png)
