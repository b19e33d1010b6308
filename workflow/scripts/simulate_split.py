"""Generate one synthetic split (rule simulate_split)."""
import os
import sys

# stdout, stderr (also of C libraries) and any traceback go to the rule's log file
with open(snakemake.log[0], "w") as _log:
    os.dup2(_log.fileno(), 1)
    os.dup2(_log.fileno(), 2)
sys.stdout.reconfigure(line_buffering=True)

import torch

from specvit.labels import LabelSpace
from specvit.simulate import generate_split

torch.set_num_threads(snakemake.threads)
p = snakemake.params
generate_split(
    snakemake.output.h5,
    n=p.n,
    seed=p.seed,
    label_space=LabelSpace.from_config(p.labels),
    mag_range=tuple(p.mag_range),
    chunk_size=p.chunk_size,
    split_name=snakemake.wildcards.split,
    progress=True,
)
print(f"wrote {snakemake.output.h5}: {p.n} spectra, seed {p.seed}, mags {p.mag_range}", file=sys.stderr)
