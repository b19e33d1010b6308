"""Table 3 from the main runs' test metrics (rule table3)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.paper_tables import table3
from specvit.reporting.tables import write_table
from specvit.training.run import load_specs

runs = list(snakemake.params.runs)
metrics = {rid: pd.read_csv(path) for rid, path in zip(runs, snakemake.input.metrics)}
table = table3(metrics, load_specs(snakemake.input.metrics))
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex,
            caption="Test R² and MAE of log g per model: pooled test set and per magnitude of the SNR sweep "
                    "(95 % bootstrap intervals).")
print(table.to_string(index=False))
