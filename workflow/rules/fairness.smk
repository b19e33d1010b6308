# A fair comparison of the main models: Table 3 and Figure 1 over several training seeds, the
# paired differences of the models on the same stars, the ceilings on the stars a model was scored
# on, and the noise-augmentation study (config `eval.main_seeds`, `augmentation`; the runs they add
# joined RUNS when the config was expanded: specvit.pipeline.runs.seed_runs, specvit.pipeline.augmentation).

from dataclasses import asdict

SEED_RUNS = PLAN.seed_table_runs()  # every main group's largest N at the seeds of eval.main_seeds
AUGMENTATION_ARMS = [asdict(arm) for arm in PLAN.augmentation]
AUGMENTATION_RUNS = list(dict.fromkeys(r for arm in PLAN.augmentation for r in arm.runs))


rule table3_seeds:
    """Table 3 over the seeds of eval.main_seeds: the seed mean and spread beside each bootstrap interval."""
    input:
        metrics=run_file("metrics_test.csv", SEED_RUNS),
    output:
        **reported("results/tables/table3_seeds", TABLE_FORMATS, caption="../report/table3_seeds.rst",
                   category=SECTIONS["main"], name="Table 3 over seeds"),
    params:
        runs=SEED_RUNS,
        train_mags=config["data"]["train_mags"],
        test_mags=config["data"]["test_mags"],
    log:
        "results/logs/tables/table3_seeds.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/table3.py"


rule fig1_seeds:
    """Figure 1 drawn from Table 3 over seeds: each model's seed spread as a band."""
    input:
        table3="results/tables/table3_seeds.csv",
        ceiling="results/tables/ceiling.csv",
    output:
        **reported("results/figures/fig1_r2_vs_snr_seeds", FIGURE_FORMATS,
                   caption="../report/fig1_r2_vs_snr_seeds.rst", category=SECTIONS["main"],
                   name="Figure 1 over seeds"),
    params:
        train_mags=config["data"]["train_mags"],
    log:
        "results/logs/figures/fig1_r2_vs_snr_seeds.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/fig1.py"


rule model_differences:
    """Paired differences (a - b) of every pair of main models per view and magnitude, seeds pooled."""
    input:
        pooled=run_file("predictions_pooled.h5", SEED_RUNS),
        sweep=run_file("predictions_sweep.h5", SEED_RUNS),
    output:
        **reported("results/tables/model_differences", TABLE_FORMATS, caption="../report/model_differences.rst",
                   category=SECTIONS["main"], name="model differences"),
    params:
        runs=SEED_RUNS,
        groups={g: rids for g, rids in PLAN.seed_runs.items()},
        n_boot=config["eval"]["n_boot"],
        seed=stream_seed("test_noise"),
    log:
        "results/logs/tables/model_differences.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/model_differences.py"


rule ceiling_scored:
    """The ceilings on the first test stars only, for the models scored on just those (max_eval_stars)."""
    input:
        test=data_path("test"),
    output:
        csv=report("results/tables/ceiling_scored_stars.csv", caption="../report/ceiling_scored_stars.rst",
                   category=SECTIONS["ceiling"], labels={"name": "ceiling on the scored stars", "format": "CSV"}),
    params:
        n_stars=targets.scored_star_counts(config, RUNS, MAIN_RUNS),
        mags=config["eval"]["mags"],
        noise_level=config["eval"]["noise_level"],
        labels=config["data"]["labels"],
        nuisances=config["ceiling"]["nuisances"],
    log:
        "results/logs/tables/ceiling_scored_stars.log",
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/ceiling_scored.py"


rule augmentation_table:
    """The noise-augmentation study's table and slopes, from its arms' runs."""
    input:
        metrics=run_file("metrics_test.csv", AUGMENTATION_RUNS),
        runs=run_file("metrics.json", AUGMENTATION_RUNS),
    output:
        **reported("results/tables/augmentation", TABLE_FORMATS, caption="../report/augmentation.rst",
                   category=SECTIONS["scaling"], name="noise augmentation"),
        **reported("results/tables/augmentation_slopes", ("csv", "md"), caption="../report/augmentation.rst",
                   category=SECTIONS["scaling"], name="noise augmentation slopes", prefix="slopes_"),
    params:
        arms=AUGMENTATION_ARMS,
        runs=AUGMENTATION_RUNS,
    log:
        "results/logs/tables/augmentation.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/augmentation_table.py"


rule fig_augmentation:
    """The noise-augmentation study's figure, drawn from its tables."""
    input:
        csv="results/tables/augmentation.csv",
        slopes="results/tables/augmentation_slopes.csv",
    output:
        **reported("results/figures/fig_augmentation", FIGURE_FORMATS, caption="../report/fig_augmentation.rst",
                   category=SECTIONS["scaling"], name="noise augmentation"),
    log:
        "results/logs/figures/fig_augmentation.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/augmentation_figure.py"
