"""Attributions of a trained ViT's log g on test stars, and the line table (rule attribution)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

from pathlib import Path

import numpy as np
import torch

from specvit.reporting.tables import write_table
from specvit.runtime.io import atomic_path
from specvit.studies.attribution import AttributionSettings, attribute_run

torch.set_num_threads(snakemake.threads)
table, arrays = attribute_run(Path(snakemake.input.model).parent, snakemake.input.test,
                              AttributionSettings.from_config(snakemake.params.cfg),
                              noise_level=snakemake.params.noise_level, seed=snakemake.params.seed)
with atomic_path(snakemake.output.arrays) as tmp, open(tmp, "wb") as f:
    np.savez(f, **arrays)
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex,
            caption=f"Share of |attribution| of log g near the lines ({snakemake.params.run_id})")
print(table.to_string(index=False))
