"""The nuisance study's table (rule nuisance_study)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import pandas as pd

from specvit.physics.nuisances import NuisanceSet
from specvit.reporting.tables import write_table
from specvit.studies.nuisance import nuisance_table

p = snakemake.params
runs = [{"case": case, "run_id": rid, "group": group, "n_train": n, "metrics": pd.read_csv(path)}
        for case, named, paths in (("nuisance", p.nuisance_runs, snakemake.input.nuisance),
                                   ("clean", p.clean_runs, snakemake.input.clean))
        for (rid, (group, n)), path in zip(named.items(), paths)]
dims = NuisanceSet.from_config(p.nuisances).dims()
table = nuisance_table(runs, pd.read_csv(snakemake.input.ceiling), nuisance_dims=dims)
write_table(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex,
            caption=f"R² of log g vs SNR on clean spectra and with nuisances ({dims}), against their ceilings")
print(table.to_string(index=False))
