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
def atomic_path(path, fsync: bool = False):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The one way specvit writes a file: every writer (tables, JSON, model files, checkpoints, split
    files, subsets) goes through here, so a killed job never leaves a half-written file under its
    final name. The temporary is ``.<name>.tmp-<pid>`` in the same folder (the rename is then
    atomic; ``remove_leftovers`` finds those of killed jobs). With ``fsync`` its content is flushed
    to disk before the rename (model files: a crash right after the rename still finds them whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_leftovers(path) -> list[Path]:
    """Delete the temporaries that killed writers left behind (``atomic_path`` names them
    ``.<name>.tmp-<pid>``; SIGKILL skips their clean-up, and a half-written 1M-spectrum
    file is tens of GB). ``path`` is an output file (its own temporaries) or a folder (all of
    them, recursively): call it only on outputs no other running job writes. Returns what it removed."""
    path = Path(path)
    found = path.rglob(".*.tmp-*") if path.is_dir() else path.parent.glob(f".{path.name}.tmp-*")
    removed = [p for p in found if p.is_file()]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def check_writable_folder(path, what: str = "output folder") -> None:
    """Raise one ValueError if files cannot be created under ``path`` (checked before any job
    runs, instead of a traceback from inside the first job). A folder that does not exist yet
    is fine if it can be created. Probes by creating and deleting a temporary file."""
    import tempfile

    path = Path(path)
    where = f"{what} '{path}' ({path.absolute()})"
    expected = "expected a writable folder (or run with --directory DIR to write elsewhere)"
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise ValueError(f"{where} cannot be written: {existing} is a broken link; {expected}")
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{where} cannot be written: {existing} is a file, not a folder; {expected}")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{where} cannot be written: creating a file in {existing} failed "
                         f"({exc.strerror or exc}); {expected}") from None


def write_csv(df, path) -> None:
    """A pandas table as CSV, atomically; floats with full precision so reruns compare byte for byte."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def jsonable(x):
    """Plain JSON types from numpy / pathlib / tuples / sets (sorted); non-finite floats become null
    (JSON has no NaN), and any other object its ``str``. The one conversion to JSON in specvit."""
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
