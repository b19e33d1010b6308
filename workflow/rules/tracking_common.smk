# Targets and config checks of the tracking stage (rules in tracking.smk).

from specvit.reporting.checklist import check_tolerances

check_tolerances(config["tracking"]["check_paper"]["tolerances"])

CHECKLIST_OUTPUTS = ["results/paper_checklist.md", "results/tables/paper_numbers.csv",
                     "results/tables/paper_numbers.md"]


def tracking_targets():
    out = ["results/runs.csv", "results/tables/runs_compare.md"] + CHECKLIST_OUTPUTS
    return out + (["results/mlflow/logged.json"] if config["tracking"]["mlflow"] else [])


def result_targets():
    """Every table and figure of the config except the checklist's own: what the checklist reports on."""
    prefixes = ("results/tables/", "results/figures/", "results/calibration/")
    return [t for t in all_targets() if t.startswith(prefixes) and t not in CHECKLIST_OUTPUTS] + ["results/runs.csv"]


def run_group_names():
    return [g["name"] for g in config["runs"]]
