"""Figure of example synthetic spectra, PDF + PNG (rule spectra_examples)."""
import os
import sys

# stdout, stderr (also of C libraries) and any traceback go to the rule's log file
with open(snakemake.log[0], "w") as _log:
    os.dup2(_log.fileno(), 1)
    os.dup2(_log.fileno(), 2)
sys.stdout.reconfigure(line_buffering=True)

import matplotlib

matplotlib.use("Agg")

from specvit.plots import plot_spectra_examples

plot_spectra_examples(snakemake.output.pdf, snakemake.output.png)
