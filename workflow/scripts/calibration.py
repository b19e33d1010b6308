"""Calibration tables: SNR vs magnitude and ceiling R² vs the paper (rule calibration)."""
import os
import sys

# stdout, stderr (also of C libraries) and any traceback go to the rule's log file
with open(snakemake.log[0], "w") as _log:
    os.dup2(_log.fileno(), 1)
    os.dup2(_log.fileno(), 2)
sys.stdout.reconfigure(line_buffering=True)

import torch

from specvit.calibration import calibration_tables
from specvit.labels import LabelSpace

torch.set_num_threads(snakemake.threads)
p = snakemake.params
ceiling_df, snr_df = calibration_tables(p.n_stars, p.seed, list(p.mags), LabelSpace.from_config(p.labels))
ceiling_df.to_csv(snakemake.output.ceiling, index=False)
snr_df.to_csv(snakemake.output.snr, index=False)
print(ceiling_df.to_string(index=False), snr_df.to_string(index=False), sep="\n\n", flush=True)
