# Trained models on shifted test data (domain shift, P2.3), and on the user's external labelled
# files. Config: `domain_shift`, `eval.external`; the models: STUDIES (specvit.pipeline.studies).


wildcard_constraints:
    shift="|".join(STUDIES.shifts),


rule shift_eval:
    """The main runs on the test set shifted at every severity, and the ViT fine-tuned on a small shifted set."""
    input:
        **STUDIES.shift_inputs(DATA),
        valid=VALIDATED,
    output:
        csv="results/studies/domain_shift/{shift}/metrics.csv",
    params:
        shift=lambda w: w.shift,
        severities=lambda w: config["domain_shift"]["severities"][w.shift],
        settings={k: config["domain_shift"][k] for k in ("continuum_degree", "sky_lines")},
        models=list(STUDIES.shift_models),
        vit=STUDIES.shift_vit,
        finetune=config["domain_shift"]["finetune"],
        train=lambda w: STUDIES.shift_finetune_train() if STUDIES.shift_vit_run else None,
        seed=stream_seed("shift"),
        subset_seed=stream_seed("shift_finetune"),
        noise_level=config["eval"]["noise_level"],
        val_noise_seed=stream_seed("val_noise"),
        test_noise_seed=stream_seed("test_noise"),
        label_priors=config["data"]["labels"],  # R² = 1 - MSE / Var(prior), as Table 3's
    log:
        "results/logs/studies/shift_{shift}.log",
    benchmark:
        "results/benchmarks/studies/shift_{shift}.tsv"
    threads: config["threads"]
    resources:
        gpu=1 if STUDIES.shift_vit_run else 0,
        # sized by its ViT fine-tune; without a ViT a CPU job with the profile's defaults
        **(cluster_resources(lambda w: STUDIES.shift_finetune_spec(w.shift)) if STUDIES.shift_vit_run else {}),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/domain_shift_eval.py"


rule external_eval:
    """The main runs on the user's labelled external test files (`eval.external`)."""
    input:
        test=data_path("test"),
        valid=VALIDATED,
        external=config["eval"]["external"],
        models=[f"results/runs/{r}/model/model.json" for r in STUDIES.shift_models.values()],
    output:
        csv="results/studies/domain_shift/external.csv",
    params:
        models=list(STUDIES.shift_models),
        # observed spectra carry their noise already: eval.external_add_noise false scores them as they are
        noise_level=config["eval"]["noise_level"] if config["eval"]["external_add_noise"] else 0.0,
        test_noise_seed=stream_seed("test_noise"),
        label_priors=config["data"]["labels"],  # R² = 1 - MSE / Var(prior), as Table 3's
    log:
        "results/logs/studies/external.log",
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/domain_shift_external.py"


rule domain_shift:
    """The domain-shift table: every shift and severity, the fine-tuned ViT, the external files."""
    input:
        parts=[f"results/studies/domain_shift/{s}/metrics.csv" for s in STUDIES.shifts]
        + (["results/studies/domain_shift/external.csv"] if config["eval"]["external"] else []),
    output:
        **reported("results/tables/domain_shift", TABLE_FORMATS, caption="../report/domain_shift.rst",
                   category=SECTIONS["shift"], only=["csv"]),
    log:
        "results/logs/tables/domain_shift.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/domain_shift_table.py"


rule fig_domain_shift:
    """Test R² of log g vs severity per shift, with the fine-tuned ViT."""
    input:
        csv="results/tables/domain_shift.csv",
    output:
        **reported("results/figures/fig_domain_shift", FIGURE_FORMATS, caption="../report/fig_domain_shift.rst",
                   category=SECTIONS["shift"], only=["png"]),
    log:
        "results/logs/figures/fig_domain_shift.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/domain_shift_figure.py"
