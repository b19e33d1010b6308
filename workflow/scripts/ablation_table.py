"""One ablation's table from its run folders (rule ablation_table)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

from pathlib import Path

from specvit.reporting.tables import write_table
from specvit.runtime.io import write_csv
from specvit.studies.ablations import CAPTIONS, long_table, summarise
from specvit.training.run import load_specs

ablation = snakemake.params.ablation
specs = load_specs(snakemake.input.metrics)
specs = {rid: specs[rid] for rid in snakemake.params.runs}  # declaration order
run_dirs = {rid: Path(m).parent for rid, m in zip(snakemake.params.runs, snakemake.input.metrics)}
long = long_table(ablation, specs, run_dirs)
table = summarise(long, ablation)
write_csv(long, snakemake.output.runs)
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex, caption=CAPTIONS[ablation])
print(long.to_string(index=False), table.to_string(index=False), sep="\n\n")
