"""Learning curves of every ViT run (rule learning_curves)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

from pathlib import Path

import pandas as pd

from specvit.reporting.figures import plot_learning_curves

histories = {Path(m).parent.name: pd.read_csv(Path(m).parent / "history.csv") for m in snakemake.input.metrics}
plot_learning_curves(histories, snakemake.output.pdf, snakemake.output.png, metadata={"Title": "learning curves"})
