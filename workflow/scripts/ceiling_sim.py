"""The simulated Bayes bound of log g, kind mmse_sim, clean and per nuisance set (rule ceiling_sim)."""
from specvit.reporting.provenance import track
from specvit.runtime.io import log_to

log_to(snakemake.log[0])
track(snakemake)  # sidecars <name>.prov.json, PDF metadata

import torch

from specvit.evaluation.ceiling_sim import SimSettings, simulated_ceiling
from specvit.physics.labels import LabelSpace
from specvit.physics.nuisances import nuisance_sets
from specvit.physics.posterior import PosteriorSampling
from specvit.reporting.tables import write_table

torch.set_num_threads(snakemake.threads)
p = snakemake.params
settings = SimSettings(n_stars=p.sim["n_stars"], mags=tuple(p.sim["mags"]), seed=p.seed, noise_level=p.noise_level,
                       sampling=PosteriorSampling(n_prior=p.sim["n_prior"], n_star=p.sim["n_star"], seed=p.seed),
                       n_boot=p.n_boot, label_space=LabelSpace.from_config(p.labels),
                       max_mc_error=p.sim["max_mc_error"],
                       nuisances=nuisance_sets(p.nuisances) if p.sim["nuisances"] else ())
table, per_star = simulated_ceiling(snakemake.input.test, settings)
write_table(per_star, snakemake.output.per_star)
write_table(table, snakemake.output.csv)
print(table.to_string(index=False))
