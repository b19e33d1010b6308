"""Content hashes: of files (model files, provenance sidecars, a fine-tune's source weights) and of
JSON-able values (the config hash of the sidecars, the trainer's checkpoint fingerprint). The one
implementation of each in specvit."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

# Files are read in blocks of this many bytes; above a caller's ``partial_above`` only the first
# and the last block are hashed.
BLOCK = 64 * 1024**2


def file_hash(path, partial_above: int | None = None) -> dict:
    """``{"sha256": ..., "bytes": ...}`` of a file's content.

    With ``partial_above``, a file larger than that many bytes hashes its first and last ``BLOCK``
    only and says so (``"partial": true``): a 1M-spectrum training file is ~33 GB. A folder hashes
    its files' relative paths and hashes in sorted order."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for p in files:
            digest.update(str(p.relative_to(path)).encode())
            digest.update(file_hash(p, partial_above)["sha256"].encode())
        return {"sha256": digest.hexdigest(), "bytes": sum(p.stat().st_size for p in files)}
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if partial_above is None or size <= partial_above:
            for block in iter(lambda: f.read(BLOCK), b""):
                digest.update(block)
            return {"sha256": digest.hexdigest(), "bytes": size}
        digest.update(f.read(BLOCK))
        f.seek(size - BLOCK)
        digest.update(f.read(BLOCK))
    return {"sha256": digest.hexdigest(), "bytes": size, "partial": True}


def json_digest(obj) -> str:
    """Short hash (16 hex digits of the sha256) of ``obj`` as JSON with sorted keys, so key order
    does not count; values JSON has no type for are written as their ``str``."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
