"""The noise-augmentation study's figure (rule fig_augmentation)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.study_figures import plot_augmentation

plot_augmentation(pd.read_csv(snakemake.input.csv), pd.read_csv(snakemake.input.slopes), snakemake.output.pdf,
                  snakemake.output.png, metadata={"Title": "noise augmentation"})
