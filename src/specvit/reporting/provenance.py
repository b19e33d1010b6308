"""Provenance of every table and figure: a sidecar ``<name>.prov.json`` beside it.

A workflow script turns it on with one line, before it writes anything::

    from specvit.reporting.provenance import track; track(snakemake)

From then on ``specvit.reporting.tables.write_table`` and ``specvit.reporting.figures.save_figure`` write, after
each table or figure, the sidecar of its stem (``table3_main.{csv,md,tex}`` ->
``table3_main.prov.json``; ``fig1_r2_vs_snr.{pdf,png}`` -> ``fig1_r2_vs_snr.prov.json``):
content hashes of the files written and of the job's inputs, the config values the rule
used (its params), a hash of the whole config, the seeds, the code hash, the git commit and
whether the tree was dirty, package versions, the device, and the seed, device and commit of
each training run among the inputs. PDFs also carry the commit and
the config hash in their metadata (Subject, Keywords).

The time stamp lives in the sidecar only, so tables stay byte-identical between builds.
Without ``track`` (a notebook, a unit test) the writers write no sidecar.
"""
from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from specvit.runtime.gitinfo import git_state
from specvit.runtime.hashing import file_hash, json_digest
from specvit.runtime.io import jsonable, write_json

SCHEMA_VERSION = 1
# Versions recorded in every sidecar (those the numbers or the drawing depend on).
PACKAGES = ("specvit", "numpy", "pandas", "scipy", "torch", "lightgbm", "scikit-learn", "h5py", "matplotlib",
            "snakemake")
# Files above this size are hashed by their first and last block only (a 1M-spectrum
# training file is ~33 GB); the sidecar marks such hashes as partial.
FULL_HASH_LIMIT = 2 * 1024**3

_job: dict | None = None  # the context set by track(); None: write no sidecars


def track(smk) -> None:
    """Record the Snakemake job ``smk`` (the ``snakemake`` object of a script) so that every table
    and figure the script writes gets its sidecar and PDF metadata."""
    global _job
    params = {k: v for k, v in smk.params.items() if k != "code"}
    _job = {
        "rule": smk.rule,
        "inputs": [str(p) for p in _flat(smk.input)],
        "params": jsonable(params),
        "code": smk.params.get("code"),
        "config_hash": config_hash(smk.config),
        "seeds": seeds_of(smk.config, params),
        "git": git_state(),
    }


def untrack() -> None:
    global _job
    _job = None


def active() -> bool:
    return _job is not None


def _flat(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flat(item)
        else:
            yield item


def config_hash(config: dict) -> str:
    """A short hash of the whole resolved config (keys sorted, so key order does not count)."""
    return json_digest(jsonable(config))


def seeds_of(config: dict, params: dict) -> dict:
    """The master seed and every value named ``seed`` or ``*_seed`` in the rule's params."""
    found = {"config.seed": config.get("seed")}

    def walk(obj, key):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{key}[{i}]")
        elif key.split(".")[-1] == "seed" or key.endswith("_seed"):
            found[f"params.{key}"] = obj

    walk(jsonable(params), "")
    return found


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device() -> dict:
    """The machine of this job; the accelerator only where torch is loaded already (a table job
    should not pay for importing torch to say it ran on a CPU)."""
    out = {"host": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
           "processor": platform.processor() or None, "accelerator": "cpu"}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        out["accelerator"] = torch.cuda.get_device_name(0)
    return out


def input_runs(inputs) -> dict:
    """{run_id: {"seed", "device", "git_commit"}} of the training runs among the inputs (files inside
    results/runs/<run_id>/), from their run.json and metrics.json: where and how the numbers were made."""
    out = {}
    for p in inputs:
        run_dir = next((d for d in Path(p).parents if d.parent.name == "runs"), None)
        if run_dir is None or run_dir.name in out or not (run_dir / "metrics.json").is_file():
            continue
        metrics = json.loads((run_dir / "metrics.json").read_text())
        out[run_dir.name] = {"seed": metrics.get("seed"), "device": metrics.get("device"),
                             "git_commit": (metrics.get("git") or {}).get("commit")}
    return dict(sorted(out.items()))


def sidecar_path(path) -> Path:
    """``results/tables/table3_main.csv`` -> ``results/tables/table3_main.prov.json``."""
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".prov.json")


def pdf_metadata() -> dict:
    """PDF metadata entries with the commit and the config hash ({} when not tracking)."""
    if _job is None:
        return {}
    commit = _job["git"]["commit"] or "unknown"
    dirty = "+dirty" if _job["git"]["dirty"] else ""
    return {"Subject": f"specvit {_job['rule']}: commit {commit}{dirty}, config {_job['config_hash']}",
            "Keywords": f"commit={commit}{dirty}; config_hash={_job['config_hash']}; rule={_job['rule']}"}


def stamp(*paths) -> Path | None:
    """Write the sidecar of the table/figure files ``paths`` (one stem) if tracking is on."""
    if _job is None:
        return None
    inputs = _job["inputs"]
    record = {
        "schema_version": SCHEMA_VERSION,
        "outputs": {Path(p).name: file_hash(p, FULL_HASH_LIMIT) for p in paths},
        "rule": _job["rule"],
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {p: file_hash(p, FULL_HASH_LIMIT) for p in inputs},
        "params": _job["params"],
        "config_hash": _job["config_hash"],
        "seeds": _job["seeds"],
        "code": _job["code"],
        "git": _job["git"],
        "packages": package_versions(),
        "device": device(),
        "runs": input_runs(inputs),
    }
    out = sidecar_path(paths[0])
    write_json(record, out)
    return out
