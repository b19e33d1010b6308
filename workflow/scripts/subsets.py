"""Nested training subsets, one index file per size N (rule subsets)."""
import os
import re
import sys

# stdout, stderr (also of C libraries) and any traceback go to the rule's log file
with open(snakemake.log[0], "w") as _log:
    os.dup2(_log.fileno(), 1)
    os.dup2(_log.fileno(), 2)
sys.stdout.reconfigure(line_buffering=True)

from specvit.data import make_nested_subsets, save_subset, validate_file

train = snakemake.input.h5
n_pool = validate_file(train, check_values=False).n
sizes = list(snakemake.params.sizes)
by_size = make_nested_subsets(n_pool, sizes, snakemake.params.seed, source=train)  # {N: row indices}
for path in snakemake.output.npy:
    n = int(re.fullmatch(r"N(\d+)\.npy", os.path.basename(path)).group(1))
    save_subset(path, by_size[n])
    print(f"{path}: {n} of {n_pool} training spectra", flush=True)
