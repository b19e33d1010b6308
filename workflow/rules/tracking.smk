# Tracking: the run registry, the generated paper checklist, the check against the paper's
# numbers, and the optional MLflow export. Captions of the report are in workflow/report/.

from specvit.pipeline.targets import CHECKLIST_OUTPUTS

RUN_GROUP_NAMES = [g["name"] for g in config["runs"]]


rule registry:
    """results/runs.csv (one row per run folder) and the params diff per experiment."""
    input:
        metrics=run_file("metrics.json", list(RUNS)),  # every run, the ablations' included
        test=run_file("metrics_test.csv", list(RUNS)),
    output:
        csv=report("results/runs.csv", caption="../report/runs.rst", category=SECTIONS["tracking"],
                   labels={"name": "run registry", "format": "CSV"}),
        compare=report("results/tables/runs_compare.md", caption="../report/runs_compare.rst",
                       category=SECTIONS["tracking"], labels={"name": "runs compared", "format": "Markdown"}),
    params:
        run_ids=list(RUNS),
    log:
        "results/logs/tracking/registry.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/registry.py"


rule paper_checklist:
    """The paper's checklist with the DAG status of each item and our numbers beside the paper's.
    Depends on every table and figure of the config, so it is made last and rebuilt when any changes."""
    input:
        RESULT_TARGETS,
    output:
        checklist=report(CHECKLIST_OUTPUTS[0], caption="../report/paper_checklist.rst",
                         category=SECTIONS["tracking"], labels={"name": "paper checklist", "format": "Markdown"}),
        csv=report(CHECKLIST_OUTPUTS[1], caption="../report/paper_numbers.rst", category=SECTIONS["tracking"],
                   labels={"name": "our numbers vs the paper's", "format": "CSV"}),
        md=report(CHECKLIST_OUTPUTS[2], caption="../report/paper_numbers.rst", category=SECTIONS["tracking"],
                  labels={"name": "our numbers vs the paper's", "format": "Markdown"}),
    params:
        groups=RUN_GROUP_NAMES,
        targets=RESULT_TARGETS,
    log:
        "results/logs/tracking/paper_checklist.log",
    conda:
        "../../envs/tracking.yaml"
    script:
        "../scripts/paper_checklist.py"


rule check_paper:
    """`snakemake check_paper`: prints chosen numbers against the paper's within the tolerances of
    tracking.check_paper; builds nothing, always runs, fails only with tracking.check_paper.strict."""
    params:
        groups=RUN_GROUP_NAMES,
        targets=RESULT_TARGETS,
        tolerances=config["tracking"]["check_paper"]["tolerances"],
        strict=config["tracking"]["check_paper"]["strict"],
    log:
        "results/logs/tracking/check_paper.log",
    conda:
        "../../envs/tracking.yaml"
    script:
        "../scripts/check_paper.py"


# check_paper and the checklist ask Snakemake itself for the DAG status: they run where Snakemake runs.
localrules:
    check_paper,
    paper_checklist,


rule mlflow:
    """Load the registry, the ViT histories and the tables and figures into MLflow (tracking.mlflow).
    A local rule: one writer on the machine that runs Snakemake, so no SQLite lock races."""
    input:
        registry="results/runs.csv",
        histories=run_file("metrics.json", PLAN.vit_runs()),
        results=[t for t in RESULT_TARGETS if t != "results/runs.csv"],
    output:
        json="results/mlflow/logged.json",
    params:
        uri=config["tracking"]["mlflow_uri"],
        experiment=config["tracking"]["mlflow_experiment"],
    log:
        "results/logs/tracking/mlflow.log",
    conda:
        "../../envs/mlflow.yaml"
    script:
        "../scripts/mlflow_export.py"


localrules:
    mlflow,
