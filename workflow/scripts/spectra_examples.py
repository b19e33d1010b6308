"""Figure of example synthetic spectra, PDF + PNG (rule spectra_examples)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import matplotlib

matplotlib.use("Agg")

from specvit.reporting.figures import plot_spectra_examples

plot_spectra_examples(snakemake.output.pdf, snakemake.output.png)
