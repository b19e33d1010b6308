"""The ceilings on the first test stars, for models scored on only those (rule ceiling_scored)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import numpy as np
import pandas as pd
import torch

from specvit.data.contract import read_labels
from specvit.evaluation.ceilings import CeilingSettings, ceiling_table
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.nuisances import nuisance_sets
from specvit.physics.spectrum import SpectrumModel
from specvit.reporting.tables import write_table

torch.set_num_threads(snakemake.threads)
p = snakemake.params
found = read_labels(snakemake.input.test, LABEL_NAMES)
labels = np.stack([found[x] for x in LABEL_NAMES], axis=1).astype(np.float64)
# Var(logg) of the prior and the nuisance sets, as ceiling.csv
settings = CeilingSettings(LabelSpace.from_config(p.labels), p.noise_level, nuisances=nuisance_sets(p.nuisances))
model = SpectrumModel()
table = pd.concat([ceiling_table(model, labels[:n], p.mags, settings=settings).assign(n_stars=n) for n in p.n_stars],
                  ignore_index=True)
write_table(table[["n_stars", *[c for c in table.columns if c != "n_stars"]]], snakemake.output.csv)
print(table.to_string(index=False))
