"""The run registry results/runs.csv and the params diff results/tables/runs_compare.md (rule registry)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

from pathlib import Path

from specvit.reporting.provenance import stamp
from specvit.reporting.registry import build_registry, compare_markdown
from specvit.reporting.tables import write_table
from specvit.runtime.io import atomic_path

# results/runs.csv sits beside the run folders results/runs/<run_id>/
registry = build_registry(Path(snakemake.output.csv).parent / "runs", snakemake.params.run_ids)
write_table(registry, snakemake.output.csv)
# several tables under one heading each: one document, not one write_table table
with atomic_path(snakemake.output.compare) as tmp:
    tmp.write_text(compare_markdown(registry))
stamp(snakemake.output.compare)
print(registry.to_string(index=False))
