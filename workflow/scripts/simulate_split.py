"""Generate one synthetic split (rule simulate_split)."""
import sys

from specvit.runtime.io import log_to, remove_leftovers

log_to(snakemake.log[0])
for leftover in remove_leftovers(snakemake.output.h5):  # of a killed earlier attempt
    print(f"removed {leftover}, left by an interrupted earlier attempt", file=sys.stderr)

import torch

from specvit.data.simulate import StarDistribution, generate_split
from specvit.physics.labels import LabelSpace
from specvit.physics.nuisances import NuisanceSet

torch.set_num_threads(snakemake.threads)
p = snakemake.params
generate_split(
    snakemake.output.h5,
    n=p.n,
    seed=p.seed,
    stars=StarDistribution(LabelSpace.from_config(p.labels), tuple(p.mag_range)),
    chunk_size=p.chunk_size,
    split_name=snakemake.wildcards.split,
    progress=True,
    nuisances=None if p.nuisances is None else NuisanceSet.from_config(p.nuisances),
)
print(f"wrote {snakemake.output.h5}: {p.n} spectra, seed {p.seed}, mags {p.mag_range}", file=sys.stderr)
