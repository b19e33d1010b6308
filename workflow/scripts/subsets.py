"""Nested training subsets, one index file per size N (rule subsets)."""
import os
import re

from specvit.runtime.io import log_to

log_to(snakemake.log[0])

from specvit.data.contract import validate_file
from specvit.data.subsets import make_nested_subsets, save_subset

train = snakemake.input.h5
n_pool = validate_file(train, check_values=False).n
sizes = list(snakemake.params.sizes)
by_size = make_nested_subsets(n_pool, sizes, snakemake.params.seed, source=train)  # {N: row indices}
for path in snakemake.output.npy:
    n = int(re.fullmatch(r"N(\d+)\.npy", os.path.basename(path)).group(1))
    save_subset(path, by_size[n])
    print(f"{path}: {n} of {n_pool} training spectra", flush=True)
