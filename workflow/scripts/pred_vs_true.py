"""Predicted vs true log g of the main runs (rule pred_vs_true)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

from specvit.evaluation.predictions import read_predictions
from specvit.reporting.figures import plot_pred_vs_true

predictions = {rid: read_predictions(path) for rid, path in zip(snakemake.params.runs, snakemake.input.sweep)}
plot_pred_vs_true(predictions, snakemake.params.mags, snakemake.output.pdf, snakemake.output.png,
                  metadata={"Title": "predicted vs true log g"})
