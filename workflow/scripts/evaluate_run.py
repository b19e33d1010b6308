"""Predict the test views of one run and tabulate its metrics (rule evaluate_run)."""
from specvit.runtime.io import log_to

log_to(snakemake.log[0])

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from specvit.data.contract import read_labels
from specvit.evaluation.coverage import warn_outside
from specvit.evaluation.metrics import metrics_table, prior_variances
from specvit.evaluation.predictions import ViewSettings, predict_views, read_predictions
from specvit.physics.labels import headline_label
from specvit.runtime.io import remove_leftovers, write_csv
from specvit.runtime.pause import pause_point
from specvit.training.factory import load_model

torch.set_num_threads(snakemake.threads)
for out in snakemake.output:
    for leftover in remove_leftovers(out):
        print(f"removed {leftover}, left by an interrupted earlier attempt")
p = snakemake.params
model = load_model(Path(snakemake.input.model).parent)
rows = None if p.max_stars is None else np.arange(p.max_stars)  # slow models see the first stars only
test_labels = read_labels(snakemake.input.test, model.labels)
trained = json.loads(Path(snakemake.input.run).read_text()).get("train_label_range", {})
warn_outside(trained, {k: v if rows is None else v[rows] for k, v in test_labels.items()}, snakemake.input.test)
variances = prior_variances(p.label_priors, model.labels)  # R² = 1 - MSE / Var(prior), as the ceilings'
paths = predict_views(model, snakemake.input.test, Path(snakemake.output.metrics).parent, rows=rows,
                      views=ViewSettings(mags=p.mags, noise_level=p.noise_level, seed=p.seed, r2_variances=variances))
pause_point("evaluate_view")
label = headline_label(model.labels)  # log g, or a single-task run's own label
score = {"label": label, "n_boot": p.n_boot, "seed": p.seed, "variance": variances[label]}
pooled = metrics_table(read_predictions(paths["pooled"]), by=None, **score)
sweep = metrics_table(read_predictions(paths["sweep"]), by="mag", **score)
table = pd.concat([pooled.assign(view="pooled"), sweep.assign(view="sweep")], ignore_index=True)
write_csv(table[["view"] + [c for c in table.columns if c != "view"]], snakemake.output.metrics)
print(table.to_string(index=False))
