"""Shared helpers for the workflow and config tests: run Snakemake on this repository's
Snakefile from another working directory, so tests never write into the checkout; one build of
the core smoke DAG shared by every test file that needs it (``core_build``)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
SMOKE = REPO / "config" / "smoke.yaml"
CORE = REPO / "tests" / "core_only.yaml"  # the smoke DAG without ablations and studies (own builds)


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


def skip_unless_required(reason: str, env_var: str):
    """Skip the test for ``reason``; fail instead where ``env_var`` is 1 (CI, which provides what the
    test needs, so a missing piece is an error there, not a silent skip)."""
    if os.environ.get(env_var) == "1":
        pytest.fail(f"{env_var}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def core_build(tmp_path_factory) -> Path:
    """The working folder of one uninterrupted build of the core smoke DAG (smoke.yaml with
    tests/core_only.yaml), from an empty folder, made once per test session: the first test to ask
    builds it, every other one (in any pytest-xdist worker) waits for it on a file lock. Read it in
    place; ``copy_build`` it before running Snakemake in it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, shared by its workers
    work, done, failed = root / "core_build", root / "core_build.done", root / "core_build.failed"
    with FileLock(root / "core_build.lock"):
        if failed.exists():
            pytest.fail(f"the shared build of the core smoke DAG failed:\n{failed.read_text()[-5000:]}")
        if not done.exists():
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            r = run_snakemake(work, "--cores", "2", "--configfile", SMOKE, CORE, timeout=900)
            if r.returncode != 0:
                failed.write_text(r.stdout)
                pytest.fail(f"the shared build of the core smoke DAG failed:\n{r.stdout[-5000:]}")
            done.touch()
    return work


def copy_build(build: Path, dest: Path) -> Path:
    """A copy of the working folder ``build`` (results/ and Snakemake's records, times kept) at ``dest``,
    which Snakemake sees as up to date as the original."""
    shutil.copytree(build, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return dest
