"""Snakemake's own view of the workflow's files, for the paper checklist (``specvit.reporting.checklist``):
``snakemake --summary`` on the same Snakefile, working directory and config says which files are
built, stale or missing, the judgement that decides reruns, so nothing is re-implemented here."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from specvit.runtime.io import jsonable

# A DAG status per file, from the `status`/`plan` columns of `snakemake --summary`.
BUILT, STALE, MISSING, NOT_IN_CONFIG = "built", "stale", "missing", "not in this config"


def summary_status(summary_text: str) -> dict[str, str]:
    """{file: built/stale/missing} from the output of ``snakemake --summary``."""
    out = {}
    for line in summary_text.splitlines():
        cols = line.split("\t")
        if len(cols) < 6 or cols[0] == "output_file":
            continue
        path, status, plan = cols[0], cols[4], cols[5]
        if status == "missing":
            out[path] = MISSING
        elif plan == "update pending" or status not in ("ok",):
            out[path] = STALE
        else:
            out[path] = BUILT
    return out


def dag_status(snakefile, workdir, config: dict, targets) -> dict[str, str]:
    """Snakemake's own status of ``targets`` for ``config``: ``snakemake --summary`` on the same
    Snakefile and working directory, the resolved config passed as a config file. Merged over
    config.yaml again it gives the same config (every key is present, lists replace lists)."""
    targets = list(targets)
    if not targets:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(yaml.safe_dump(jsonable(config), sort_keys=False))
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
               "--summary", "--nolock", "--configfile", str(cfg), "--", *targets]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=dict(os.environ), timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"snakemake --summary failed (exit {r.returncode}) for the checklist status:\n"
                           f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    status = summary_status(r.stdout)
    return {t: status.get(t, MISSING) for t in targets}


def item_status(targets, file_status: dict, config_targets) -> str:
    """One status for an item from those of its targets: the worst of them."""
    if not targets:
        return "missing (no target in the workflow)"
    configured = set(config_targets)
    states = [file_status.get(t, MISSING) if t in configured else NOT_IN_CONFIG for t in targets]
    for state in (NOT_IN_CONFIG, MISSING, STALE):
        if state in states:
            return state
    return BUILT


def provenance_status(targets, root) -> str:
    """Readiness item "reproducibility information": built when every table and figure has its sidecar."""
    from specvit.reporting.provenance import sidecar_path

    stems = [t for t in targets
             if t.startswith(("results/tables/", "results/figures/")) and t.endswith((".csv", ".pdf"))]
    lacking = [t for t in stems if not (Path(root) / sidecar_path(t)).is_file()]
    return BUILT if stems and not lacking else MISSING
