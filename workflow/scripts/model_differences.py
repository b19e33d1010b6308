"""Paired differences of the main models (rule model_differences)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

from specvit.evaluation.predictions import read_predictions
from specvit.reporting.differences import CAPTION, model_differences
from specvit.reporting.tables import write_table

p = snakemake.params
files = {view: dict(zip(p.runs, getattr(snakemake.input, view))) for view in ("pooled", "sweep")}
predictions = {group: {view: [read_predictions(files[view][rid]) for rid in rids] for view in files}
               for group, rids in p.groups.items()}
table = model_differences(predictions, n_boot=p.n_boot, seed=p.seed)
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex, caption=CAPTION)
print(table.to_string(index=False))
