# SpecViT paper reproduction: entry point of the Snakemake workflow.
#
#   snakemake -n                                    what would run (and why) for the default config
#   snakemake --cores 8                             build everything the config asks for
#   snakemake --cores 8 --configfile config/paper.yaml   the same at paper scale
#
# All paths below are relative to the working directory (default: here; see --directory),
# except the workflow's own files, which are resolved relative to this Snakefile.

from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The default config, found from this Snakefile so that --directory works; any
# --configfile / --config given on the command line is merged over it.
configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


# `snakemake --report results/report.html`: this text opens the report (captions: workflow/report/).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# The schema is the single source of truth for keys, types and defaults.
# check_config() only turns its errors into short messages naming the key path.
check_config(config, Path(workflow.basedir) / "config" / "schema" / "config.schema.yaml")
validate(config, "config/schema/config.schema.yaml")
check_consistency(config)
check_writable_folder("results")  # one clear message instead of a traceback in the first job

from specvit.pipeline.runs import expand_runs, main_runs

RUNS = expand_runs(config["runs"], config["training"])
MAIN_RUNS = main_runs(RUNS)  # {group: its largest-N run}: the models of Table 3 and Figure 1
GROUP_RUNS = list(RUNS)  # the runs of the `runs` groups (scaling curve, learning curves)

from specvit.pipeline.ablations import expand_ablations

# {ablation: {run_id: RunSpec}}: the variants of each ablation, which join RUNS as ordinary runs
ABLATIONS = expand_ablations(config["ablations"], config["training"], config["data"]["subsets"])
for _specs in ABLATIONS.values():
    RUNS.update(_specs)


include: "workflow/rules/data.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/beyond.smk"
include: "workflow/rules/ablations.smk"
include: "workflow/rules/tracking.smk"  # last: the checklist depends on every other target


localrules:
    all,


rule all:
    default_target: True
    input:
        all_targets(),
