"""The noise-augmentation study's tables (rule augmentation_table)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import json
from pathlib import Path

import pandas as pd

from specvit.reporting.tables import write_table
from specvit.studies.augmentation import CAPTION, SLOPE_CAPTION, augmentation_table, slopes

p = snakemake.params
metrics = {rid: pd.read_csv(path) for rid, path in zip(p.runs, snakemake.input.metrics)}
info = {rid: json.loads(Path(path).read_text()) for rid, path in zip(p.runs, snakemake.input.runs)}
table = augmentation_table(p.arms, metrics, info, {rid: info[rid]["n_train"] for rid in p.runs})
summary = slopes(table)
out = snakemake.output
write_table(table, out.csv, out.md, out.tex, caption=CAPTION)
write_table(summary, out.slopes_csv, out.slopes_md, caption=SLOPE_CAPTION)
print(table.to_string(index=False), summary.to_string(index=False), sep="\n\n")
