"""The generated paper checklist and the table of our numbers vs the paper's (rule paper_checklist)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import os
from pathlib import Path

from specvit.reporting import checklist, dag_status
from specvit.reporting.provenance import config_hash, stamp
from specvit.reporting.tables import write_table
from specvit.runtime.io import atomic_path

p = snakemake.params
paper = checklist.load_paper()
numbers = checklist.numbers_table(paper, checklist.Results.read(".", p.groups))
item_targets = sorted({t for item in paper["items"] for t in item["targets"]} & set(p.targets))
files = dag_status.dag_status(Path(snakemake.scriptdir).resolve().parents[1] / "Snakefile", os.getcwd(),
                              snakemake.config, item_targets)
statuses = {i["id"]: dag_status.item_status(i["targets"], files, p.targets) for i in paper["items"]}
readiness = checklist.readiness_status(paper, statuses, dag_status.provenance_status(p.targets, "."))
write_table(numbers, snakemake.output.csv, snakemake.output.md,
            caption=f"Our numbers beside the paper's ({paper['source']}); diff = ours − paper.")
with atomic_path(snakemake.output.checklist) as tmp:
    tmp.write_text(checklist.checklist_markdown(paper, numbers, statuses, readiness, config_hash(snakemake.config),
                                                p.targets))
stamp(snakemake.output.checklist)
print(files, statuses, readiness, sep="\n")
