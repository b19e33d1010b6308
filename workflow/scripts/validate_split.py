"""Check one split against the data contract; dump the summary as JSON (rule validate_split)."""
from specvit.runtime.io import log_to

log_to(snakemake.log[0])

import dataclasses

from specvit.data.contract import validate_file
from specvit.runtime.io import write_json

summary = validate_file(snakemake.input.h5)
write_json(dataclasses.asdict(summary), snakemake.output.json)
print(f"{snakemake.input.h5}: valid", flush=True)
