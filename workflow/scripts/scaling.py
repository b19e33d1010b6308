"""Scaling table and its summary (rule scaling)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.paper_tables import scaling
from specvit.reporting.tables import write_table
from specvit.training.run import load_specs

metrics = {rid: pd.read_csv(path) for rid, path in zip(snakemake.params.runs, snakemake.input.metrics)}
table, summary = scaling(metrics, load_specs(snakemake.input.metrics))
write_table(table, snakemake.output.csv)
write_table(summary, snakemake.output.summary)
print(table.to_string(index=False), summary.to_string(index=False), sep="\n\n")
