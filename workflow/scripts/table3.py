"""Table 3 from the main runs' test metrics (rules table3 and table3_seeds)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.reporting.paper_tables import TABLE3_CAPTION, table3
from specvit.reporting.tables import write_table
from specvit.training.run import load_specs

p = snakemake.params
metrics = {rid: pd.read_csv(path) for rid, path in zip(p.runs, snakemake.input.metrics)}
table = table3(metrics, load_specs(snakemake.input.metrics), train_mags=p.train_mags, test_mags=p.test_mags)
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex, caption=TABLE3_CAPTION)
print(table.to_string(index=False))
