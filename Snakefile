# SpecViT paper reproduction: entry point of the Snakemake workflow.
#
#   snakemake -n                                    what would run (and why) for the default config
#   snakemake --cores 8                             build everything the config asks for
#   snakemake --cores 8 --configfile config/paper.yaml   the same at paper scale
#
# All paths below are relative to the working directory (default: here; see --directory),
# except the workflow's own files, which are resolved relative to this Snakefile.
# The rules only declare; what they build is decided in the torch-free package specvit.pipeline.

import sys
from pathlib import Path

from snakemake.utils import min_version

from specvit.pipeline.codehash import add_code_params
from specvit.pipeline.config import prepare, read_yaml
from specvit.pipeline.failures import failed_jobs, failure_report
from specvit.runtime.io import check_writable_folder

min_version("9.0")

# The default config, found from this Snakefile so that --directory works; any
# --configfile / --config given on the command line is merged over it. Read here first for a
# YAML error's file and line (Snakemake's loader says only "not valid JSON or YAML").
read_yaml(Path(workflow.basedir) / "config" / "config.yaml")
configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


# `snakemake --report results/report.html`: this text opens the report (captions: workflow/report/).
report: "workflow/report/workflow.rst"


# The one entry point: lays the config over the schema's defaults (the single source of truth for
# keys, types and defaults) and checks all of it, the user's own files included, before any job
# runs; every problem is listed in one message. PLAN: the runs, ablations and studies to build.
PLAN = prepare(config, Path(workflow.basedir) / "config" / "schema" / "config.schema.yaml")
check_writable_folder("results")  # one clear message instead of a traceback in the first job


include: "workflow/rules/common.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/ceiling_sim.smk"
include: "workflow/rules/fairness.smk"
include: "workflow/rules/attribution.smk"
include: "workflow/rules/pretrain_finetune.smk"
include: "workflow/rules/domain_shift.smk"
include: "workflow/rules/nuisance_study.smk"
include: "workflow/rules/ablations.smk"
include: "workflow/rules/tracking.smk"  # last: the checklist depends on every other target


localrules:
    all,


rule all:
    default_target: True
    input:
        PLAN.all_targets(),


# When a job fails, the reason (the error at the end of its log) is printed where Snakemake runs,
# not only the log's path (specvit.pipeline.failures).
onerror:
    if failed_jobs(workflow):
        print(failure_report(failed_jobs(workflow)), file=sys.stderr)


# Every rule that runs a script gets the param `code`: the hash of the specvit code its script
# imports, so that editing a module makes exactly the outputs that run it stale.
add_code_params(workflow.rules, Path(workflow.basedir) / "src" / "specvit")
