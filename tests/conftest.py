"""Shared helpers for the workflow and config tests: run Snakemake on this repository's
Snakefile from another working directory, so tests never write into the checkout."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def run_snakemake(workdir, *args, timeout=600, snakefile=SNAKEFILE):
    """`snakemake --snakefile <repo>/Snakefile --directory <workdir> *args`, run from `workdir`.

    Uses the snakemake of the running interpreter's environment. Returns the CompletedProcess
    with stdout and stderr merged into `.stdout`."""
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else "snakemake",
           "--snakefile", str(snakefile), "--directory", str(workdir), *map(str, args)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


@pytest.fixture
def snakemake_in(tmp_path):
    """run(*args) -> CompletedProcess, with tmp_path as working directory."""
    return lambda *args, **kw: run_snakemake(tmp_path, *args, **kw)
