"""The domain-shift table from the per-shift and external results (rule domain_shift)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.tables import write_table
from specvit.studies.domain_shift import COLUMNS

table = pd.concat([pd.read_csv(path) for path in snakemake.input.parts], ignore_index=True)[COLUMNS]
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex,
            caption="Test R² and MAE of log g on shifted test sets and external files")
print(table.to_string(index=False))
