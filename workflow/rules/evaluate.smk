# Test-set evaluation of every run, the information ceilings, and the tables and
# figures of the paper's core results (Table 3, Figure 1, the scaling curve).


rule evaluate_run:
    """Predict the pooled and SNR-sweep test views (fixed seeded noise); metrics with bootstrap intervals."""
    input:
        model="results/runs/{run_id}/model/model.json",
        run="results/runs/{run_id}/metrics.json",
        test=data_path("test"),
        valid=VALIDATED,
    output:
        pooled="results/runs/{run_id}/predictions_pooled.h5",
        sweep="results/runs/{run_id}/predictions_sweep.h5",
        metrics="results/runs/{run_id}/metrics_test.csv",
    params:
        mags=config["eval"]["mags"],
        noise_level=config["eval"]["noise_level"],
        n_boot=config["eval"]["n_boot"],
        seed=stream_seed("test_noise"),
        max_stars=lambda w: RUNS[w.run_id].max_eval_stars,
        label_priors=config["data"]["labels"],  # R² = 1 - MSE / Var(prior): the ceilings' denominator
    log:
        "results/logs/evaluate/{run_id}.log",
    benchmark:
        "results/benchmarks/evaluate/{run_id}.tsv"
    priority: 40  # each run is scored as soon as it ends, before the next trainings start
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_run.py"


rule ceiling:
    """5D and 1D Fisher/CRLB ceilings of log g per magnitude (median, mse, bayes), one row set per nuisance set,
    and mmse_sim's rows."""
    input:
        test=data_path("test"),
        valid=VALIDATED,
        sim=targets.ceiling_sim_inputs(config),
    output:
        csv=report("results/tables/ceiling.csv", caption="../report/ceiling.rst", category=SECTIONS["ceiling"],
                   labels={"name": "ceiling", "format": "CSV"}),
    params:
        mags=config["eval"]["mags"],
        noise_level=config["eval"]["noise_level"],
        labels=config["data"]["labels"],
        synthetic=is_synthetic(),
        nuisances=config["ceiling"]["nuisances"],
    log:
        "results/logs/tables/ceiling.log",
    benchmark:
        "results/benchmarks/tables/ceiling.tsv"
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/ceiling.py"


rule table3:
    """Table 3: pooled metrics and R² per magnitude of each group's main (largest-N) run, over its declared seeds."""
    input:
        metrics=run_file("metrics_test.csv", PLAN.table3_runs()),
    output:
        **reported("results/tables/table3_main", TABLE_FORMATS, caption="../report/table3_main.rst",
                   category=SECTIONS["main"], name="Table 3"),
    params:
        runs=PLAN.table3_runs(),
        train_mags=config["data"]["train_mags"],
        test_mags=config["data"]["test_mags"],
    log:
        "results/logs/tables/table3_main.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/table3.py"


rule fig1:
    """Figure 1: R² vs SNR per model with the ceilings, drawn from Table 3 and the ceiling table."""
    input:
        table3="results/tables/table3_main.csv",
        ceiling="results/tables/ceiling.csv",
    output:
        **reported("results/figures/fig1_r2_vs_snr", FIGURE_FORMATS, caption="../report/fig1_r2_vs_snr.rst",
                   category=SECTIONS["main"], name="Figure 1"),
    params:
        train_mags=config["data"]["train_mags"],
    log:
        "results/logs/figures/fig1_r2_vs_snr.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/fig1.py"


rule scaling:
    """Pooled test R² vs N for every run; slopes and where the ViT overtakes LightGBM."""
    input:
        metrics=run_file("metrics_test.csv"),
    output:
        csv=report("results/tables/scaling.csv", caption="../report/scaling.rst", category=SECTIONS["scaling"],
                   labels={"name": "scaling", "format": "CSV"}),
        summary=report("results/tables/scaling_summary.csv", caption="../report/scaling_summary.rst", category=SECTIONS["scaling"],
                   labels={"name": "scaling summary", "format": "CSV"}),
    params:
        runs=GROUP_RUNS,
    log:
        "results/logs/tables/scaling.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/scaling.py"


rule fig3:
    """Figure 3: the scaling curve, drawn from the scaling tables."""
    input:
        csv="results/tables/scaling.csv",
        summary="results/tables/scaling_summary.csv",
    output:
        **reported("results/figures/fig3_scaling", FIGURE_FORMATS, caption="../report/fig3_scaling.rst",
                   category=SECTIONS["scaling"], name="Figure 3"),
    log:
        "results/logs/figures/fig3_scaling.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/fig3.py"


rule learning_curves:
    """Validation R² and training loss per epoch of every ViT run (history.csv beside metrics.json)."""
    input:
        metrics=run_file("metrics.json", PLAN.vit_runs()),
    output:
        **reported("results/figures/learning_curves", FIGURE_FORMATS, caption="../report/learning_curves.rst",
                   category=SECTIONS["main"], name="learning curves"),
    log:
        "results/logs/figures/learning_curves.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/learning_curves.py"


rule pred_vs_true:
    """Predicted vs true log g of each main run at two magnitudes of the sweep."""
    input:
        sweep=run_file("predictions_sweep.h5", MAIN_RUNS.values()),
    output:
        **reported("results/figures/pred_vs_true", FIGURE_FORMATS, caption="../report/pred_vs_true.rst",
                   category=SECTIONS["main"], name="predicted vs true"),
    params:
        runs=list(MAIN_RUNS.values()),
        mags=config["eval"]["pred_vs_true_mags"],
    log:
        "results/logs/figures/pred_vs_true.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/pred_vs_true.py"
