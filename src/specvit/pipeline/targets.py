"""Paths and targets of the workflow: where each split lives, and everything ``rule all`` builds."""
from __future__ import annotations

from specvit.pipeline.studies import Studies
from specvit.training.spec import RunSpec

SPLITS = ("train", "val", "test")
TABLE_FORMATS = ("csv", "md", "tex")
FIGURE_FORMATS = ("pdf", "png")
CHECKLIST_OUTPUTS = ["results/paper_checklist.md", "results/tables/paper_numbers.csv",
                     "results/tables/paper_numbers.md"]


def tables(*stems: str) -> list[str]:
    """results/tables/<stem>.{csv,md,tex} of each stem."""
    return [f"results/tables/{s}.{ext}" for s in stems for ext in TABLE_FORMATS]


def figures(*stems: str) -> list[str]:
    """results/figures/<stem>.{pdf,png} of each stem."""
    return [f"results/figures/{s}.{ext}" for s in stems for ext in FIGURE_FORMATS]


# ---------------------------------------------------------------- data


def is_synthetic(config: dict) -> bool:
    return config["data"]["source"] == "synthetic"


def data_path(config: dict, split: str) -> str:
    """The HDF5 file of a split: generated under results/data for source 'synthetic', the user's
    own file (read in place, never copied) for 'hdf5'."""
    return f"results/data/{split}.h5" if is_synthetic(config) else config["data"][split]


def summary_path(split: str) -> str:
    """The validation summary of a split (rule validate_split)."""
    return f"results/data/{split}.summary.json"


def validated(config: dict) -> list[str]:
    """What a rule that reads the user's splits waits for: the validation of all three (the full value
    scan, once per file; none for synthetic data, whose writer checks every block)."""
    return [] if is_synthetic(config) else [summary_path(s) for s in SPLITS]


def split_size(config: dict, split: str) -> int:
    key = {"train": "n_train_pool", "val": "n_val", "test": "n_test"}[split]
    return config["data"][key]


def split_mags(config: dict, split: str) -> list[float]:
    return config["data"]["test_mags" if split == "test" else "train_mags"]


def subset_path(n) -> str:
    return f"results/data/subsets/N{n}.npy"


def subset_paths(config: dict) -> list[str]:
    return [subset_path(n) for n in sorted(config["data"]["subsets"])]


def run_file(name: str, run_ids) -> list[str]:
    """The file ``name`` of every given run."""
    return [f"results/runs/{rid}/{name}" for rid in run_ids]


# ---------------------------------------------------------------- targets


def data_targets(config: dict) -> list[str]:
    out = [summary_path(s) for s in SPLITS]
    if is_synthetic(config):
        out += [data_path(config, s) for s in SPLITS]
    return out + subset_paths(config)


def calibration_targets() -> list[str]:
    return ["results/calibration/ceiling_vs_paper.csv", "results/calibration/snr_vs_mag.csv",
            *figures("spectra_examples")]


def core_targets(runs: dict[str, RunSpec], group_runs) -> list[str]:
    """Every run, Table 3, the ceiling and scaling tables, Figures 1 and 3 and the prediction plots
    (learning curves where a run group trains a ViT)."""
    has_vit = any(runs[rid].model == "vit" for rid in group_runs)
    return (run_file("metrics.json", runs) + tables("table3_main")
            + ["results/tables/ceiling.csv", "results/tables/scaling.csv", "results/tables/scaling_summary.csv"]
            + figures("fig1_r2_vs_snr", "fig3_scaling", "pred_vs_true", *(["learning_curves"] if has_vit else [])))


def ceiling_sim_inputs(config: dict) -> list[str]:
    """The simulated Bayes bound's rows that ceiling.csv takes in: synthetic data with
    ``ceiling.mmse_sim.enabled`` only (it needs the forward model)."""
    on = is_synthetic(config) and config["ceiling"]["mmse_sim"]["enabled"]
    return ["results/tables/ceiling_sim.csv"] if on else []


def scored_star_counts(config: dict, runs: dict[str, RunSpec], main_runs: dict[str, str]) -> list[int]:
    """The distinct ``max_eval_stars`` of the main runs (e.g. the template fit's 100): the ceilings are
    also computed on just those first test stars (synthetic data, where the forward model gives them)."""
    if not is_synthetic(config):
        return []
    return sorted({runs[r].max_eval_stars for r in main_runs.values() if runs[r].max_eval_stars})


def fairness_targets(plan) -> list[str]:
    """What a fair comparison of the models adds to the core results (``specvit.pipeline.config.Plan``):
    Table 3 and Figure 1 over the seeds of ``eval.main_seeds``, the paired differences of the main
    models, the ceilings on the stars a model scored on only its first of, and the augmentation study."""
    out = tables("table3_seeds") + figures("fig1_r2_vs_snr_seeds")
    if len(plan.seed_runs) > 1:
        out += tables("model_differences")
    if scored_star_counts(plan.config, plan.runs, plan.main_runs):
        out.append("results/tables/ceiling_scored_stars.csv")
    if plan.augmentation:
        out += (tables("augmentation") + [f"results/tables/augmentation_slopes.{ext}" for ext in ("csv", "md")]
                + figures("fig_augmentation"))
    return out


def ablation_targets(ablations: dict) -> list[str]:
    """Table and figure of every declared ablation (names in specvit.studies.ablations.KINDS), and the
    tokenization ablation's initial gradient norms."""
    from specvit.studies.ablations import KINDS

    return (tables(*(KINDS[a].table for a in ablations)) + figures(*(KINDS[a].figure for a in ablations))
            + (tables("tokenization_init") if "tokenization" in ablations else []))


def study_targets(studies: Studies) -> list[str]:
    """Tables and figures of the studies whose `enabled` is true."""
    c, out = studies.config, []
    if studies.attribution_run and c["attribution"]["enabled"]:
        out += tables("attribution_lines") + figures("fig_attribution", "fig_attention_heads")
    if c["pretrain"]["enabled"]:
        out += tables("pretrain_finetune") + figures("fig_pretrain_finetune")
    if studies.shift_models and c["domain_shift"]["enabled"]:
        out += tables("domain_shift") + figures("fig_domain_shift")
    if studies.nuisance_models and c["nuisance_study"]["enabled"]:
        out += tables("nuisance_study") + figures("fig_nuisance_study")
    return out


def tracking_targets(config: dict) -> list[str]:
    out = ["results/runs.csv", "results/tables/runs_compare.md", *CHECKLIST_OUTPUTS]
    return out + (["results/mlflow/logged.json"] if config["tracking"]["mlflow"] else [])


def result_targets(targets) -> list[str]:
    """The tables and figures among ``targets`` except the checklist's own (what the checklist reports
    on), and the run registry."""
    prefixes = ("results/tables/", "results/figures/", "results/calibration/")
    return [t for t in targets if t.startswith(prefixes) and t not in CHECKLIST_OUTPUTS] + ["results/runs.csv"]
