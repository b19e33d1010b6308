#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda env (--software-deployment-method conda).
# It installs the specvit package from this repository, editable and without dependencies
# (the env file provides them). SPECVIT_REPO is exported by the Snakefile
# (workflow/rules/common.smk): snakemake copies env files to .snakemake/conda/ before
# creating them, so a relative `pip: [-e ..]` would point at the wrong directory.
set -euo pipefail
: "${SPECVIT_REPO:?SPECVIT_REPO is not set; run this through the Snakefile or export SPECVIT_REPO=/path/to/repo}"
python -m pip install --no-deps --no-build-isolation --editable "$SPECVIT_REPO"
