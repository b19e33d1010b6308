# Names the rules share, taken from the plan of the config (PLAN, made in the Snakefile by
# specvit.pipeline.config.prepare): runs, studies, data paths, seeds and report outputs.
# Only wiring here; every decision is a function of specvit.pipeline.

import os
from pathlib import Path

from specvit.pipeline import targets
from specvit.pipeline.outputs import SECTIONS, reported
from specvit.pipeline.seeds import stream_seed as _stream_seed

# The conda environments install the package of THIS checkout (envs/*.post-deploy.sh
# read it; snakemake creates the envs from copies under .snakemake/conda/, so the env
# files cannot locate the repository themselves).
os.environ.update(SPECVIT_REPO=str(Path(workflow.basedir).resolve()))

SPLITS = targets.SPLITS
TABLE_FORMATS, FIGURE_FORMATS = targets.TABLE_FORMATS, targets.FIGURE_FORMATS
RUNS = PLAN.runs  # {run_id: RunSpec}: every run, the ablations' variants included
MAIN_RUNS = PLAN.main_runs  # {group: its largest-N run}: the models of Table 3 and Figure 1
GROUP_RUNS = PLAN.group_runs  # the runs of the `runs` groups (scaling curve, learning curves)
ABLATIONS = PLAN.ablations  # {ablation: {run_id: RunSpec}}
STUDIES = PLAN.studies  # attribution, pre-train -> fine-tune, domain shift
DATA = {split: targets.data_path(config, split) for split in SPLITS}
# The user's splits are validated (validate_split) before any job reads them; every rule that reads a
# split takes these summaries as its input `valid` (none for synthetic data, checked as it is written).
VALIDATED = targets.validated(config)
RESULT_TARGETS = PLAN.result_targets()  # every table and figure: what the checklist reports on


wildcard_constraints:
    split="|".join(SPLITS),


def is_synthetic():
    return targets.is_synthetic(config)


def data_path(split):
    return DATA[split]


def stream_seed(stream):
    return _stream_seed(config, stream)


def subset_path(n):
    return targets.subset_path(n)


def run_file(name, run_ids=None):
    """The file ``name`` of every run of the run groups (or of the given run ids)."""
    return targets.run_file(name, GROUP_RUNS if run_ids is None else run_ids)
