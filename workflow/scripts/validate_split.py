"""Check one split against the data contract, every value scanned; dump the summary as JSON
(rule validate_split: every job that reads a user's split waits for it)."""
from specvit.runtime.io import log_to

log_to(snakemake.log[0])

import dataclasses

import numpy as np

from specvit.data.contract import validate_file
from specvit.runtime.io import write_json

summary = validate_file(snakemake.input.h5)
read_as = {"wave": np.dtype(np.float64).str}  # and float32 for the rest
converted = {k: v for k, v in summary.stored_dtypes.items() if v != read_as.get(k, np.dtype(np.float32).str)}
if converted:
    print(f"{snakemake.input.h5}: stored as {converted}; read as float64 wave and float32 for the rest", flush=True)
write_json(dataclasses.asdict(summary), snakemake.output.json)
print(f"{snakemake.input.h5}: valid ({summary.n} spectra of {summary.n_pixels} pixels)", flush=True)
