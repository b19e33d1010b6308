"""Check one split against the data contract; dump the summary as JSON (rule validate_split)."""
import os
import sys

# stdout, stderr (also of C libraries) and any traceback go to the rule's log file
with open(snakemake.log[0], "w") as _log:
    os.dup2(_log.fileno(), 1)
    os.dup2(_log.fileno(), 2)
sys.stdout.reconfigure(line_buffering=True)

import dataclasses
import json
import math
from pathlib import PurePath

import numpy as np

from specvit.data import validate_file


def jsonable(x):
    """Plain JSON types from numpy / pathlib / tuples; non-finite floats become null."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        items = sorted(x) if isinstance(x, (set, frozenset)) else x
        return [jsonable(v) for v in items]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, bytes):
        return x.decode()
    if isinstance(x, PurePath):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


summary = validate_file(snakemake.input.h5)
with open(snakemake.output.json, "w") as f:
    json.dump(jsonable(dataclasses.asdict(summary)), f, indent=2)
    f.write("\n")
print(f"{snakemake.input.h5}: valid", flush=True)
