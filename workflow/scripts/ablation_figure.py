"""One ablation's figure from its table and run folders (rule ablation_figure)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

from pathlib import Path

import pandas as pd

from specvit.evaluation.predictions import read_predictions
from specvit.reporting.ablation_figures import AblationResults, plot_ablation
from specvit.studies.ablations import residual_correlation
from specvit.training.run import load_specs

ablation = snakemake.params.ablation
table, long = pd.read_csv(snakemake.input.table), pd.read_csv(snakemake.input.runs)
dirs = {rid: Path(m).parent for rid, m in zip(snakemake.params.runs, snakemake.input.metrics)}
variants = dict(zip(long["run_id"], long["variant"]))
histories = {rid: pd.read_csv(d / "history.csv") for rid, d in dirs.items() if (d / "history.csv").exists()}
corr, title = None, ""
if ablation == "multitask":
    # the joint model: the setting that predicts the most labels
    specs = load_specs(snakemake.input.metrics)
    joint = max(specs.values(), key=lambda s: len(s.labels)).group
    runs = [rid for rid, s in specs.items() if s.group == joint]
    corr = residual_correlation([read_predictions(dirs[rid] / "predictions_pooled.h5") for rid in runs],
                                specs[runs[0]].labels)
    title = f"residual correlation, {variants[runs[0]]} ({len(runs)} seeds, pooled test)"
init = pd.read_csv(snakemake.input.init[0]) if len(snakemake.input.init) else None
results = AblationResults(table, long, histories=histories, variants=variants, residual_corr=corr, corr_title=title,
                          init=init)
plot_ablation(ablation, results, snakemake.output.pdf, snakemake.output.png,
              metadata={"Title": snakemake.wildcards.figure})
