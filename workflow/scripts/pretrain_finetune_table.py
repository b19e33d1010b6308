"""The pre-train -> fine-tune table (rule pretrain_finetune)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import json

from specvit.reporting.tables import write_table
from specvit.studies.pretrain_finetune import pretrain_table

pre = {**json.load(open(snakemake.input.pretrained)), "seed": snakemake.params.pretrain_seed}
runs = {tuple(key): json.load(open(path)) for key, path in zip(snakemake.params.run_keys, snakemake.input.runs)}
table = pretrain_table(pre, runs)
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex,
            caption="Test R² and MAE of log g: fine-tuned from the pre-trained ViT vs from scratch")
print(table.to_string(index=False))
