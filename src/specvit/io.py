"""Small I/O helpers shared by the workflow scripts: logging to the rule's log file, atomic
writes (a killed job never leaves a half-written file under its final name), plain JSON."""
from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path, PurePath

import numpy as np


def log_to(path) -> None:
    """Send stdout, stderr (also of C libraries) and any traceback to ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(df, path) -> None:
    """A pandas table as CSV, atomically; floats with full precision so reruns compare byte for byte."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


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


def write_json(obj, path) -> None:
    """``obj`` as indented JSON, atomically."""
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(obj), indent=2) + "\n")
