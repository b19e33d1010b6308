"""Export the registry, the ViT histories and the tables and figures to MLflow (rule mlflow)."""
from specvit.runtime.io import log_to

log_to(snakemake.log[0])

import json
from pathlib import Path

import pandas as pd

from specvit.reporting.mlflow_export import export, tracking_uri
from specvit.runtime.io import write_json

p = snakemake.params
uri = tracking_uri(p.uri, ".")
out = Path(snakemake.output.json)
logged = export(pd.read_csv(snakemake.input.registry), Path(snakemake.input.registry).parent / "runs",
                snakemake.input.results, uri, p.experiment, out.parent / "artifacts")
write_json(logged, out)
print(json.dumps(logged, indent=2))
