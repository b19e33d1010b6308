"""Ceiling table of log g per magnitude (rule ceiling)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd
import torch

from specvit.evaluation.ceiling_sim import with_sim_rows
from specvit.evaluation.ceilings import CeilingSettings, ceiling_for_file
from specvit.physics.labels import LabelSpace
from specvit.physics.nuisances import nuisance_sets
from specvit.reporting.tables import write_table

torch.set_num_threads(snakemake.threads)
p = snakemake.params
settings = CeilingSettings(LabelSpace.from_config(p.labels), p.noise_level, nuisances=nuisance_sets(p.nuisances))
table = ceiling_for_file(snakemake.input.test, p.mags, settings, synthetic=p.synthetic)
table = with_sim_rows(table, pd.read_csv(snakemake.input.sim[0]) if snakemake.input.sim else None)  # mmse_sim
write_table(table, snakemake.output.csv)
print(table.to_string(index=False))
