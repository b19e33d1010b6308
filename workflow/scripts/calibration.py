"""Calibration tables: SNR vs magnitude and ceiling R² vs the paper (rule calibration)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import torch

from specvit.physics.calibration import calibration_tables
from specvit.physics.labels import LabelSpace
from specvit.reporting.tables import write_table

torch.set_num_threads(snakemake.threads)
p = snakemake.params
ceiling_df, snr_df = calibration_tables(p.n_stars, p.seed, list(p.mags), LabelSpace.from_config(p.labels))
write_table(ceiling_df, snakemake.output.ceiling)
write_table(snr_df, snakemake.output.snr)
print(ceiling_df.to_string(index=False), snr_df.to_string(index=False), sep="\n\n", flush=True)
