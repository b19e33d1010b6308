# Beyond the core results: where the ViT looks (attribution, P2.1), pre-train -> fine-tune (P2.2)
# and trained models on shifted test data (domain shift, P2.3). Config: `attribution`,
# `pretrain`, `domain_shift`, `eval.external`.

include: "beyond_common.smk"


wildcard_constraints:
    shift="|".join(SHIFTS),
    setting="finetune|scratch",


# ---------------------------------------------------------------- attribution (P2.1)


rule attribution:
    """Integrated gradients and attention rollout of a ViT's log g on test stars, per Teff/log g group."""
    input:
        model=f"results/runs/{ATTRIBUTION_RUN}/model/model.json",
        test=data_path("test"),
    output:
        arrays="results/beyond/attribution/attribution.npz",
        csv=report("results/tables/attribution_lines.csv", caption="../report/attribution_lines.rst",
                   category="Interpretability (P2.1)"),
        md="results/tables/attribution_lines.md",
        tex="results/tables/attribution_lines.tex",
    params:
        code=code_hash("attribution.py"),
        cfg=config["attribution"],
        run_id=ATTRIBUTION_RUN,
        noise_level=config["eval"]["noise_level"],
        seed=stream_seed("test_noise"),
    log:
        "results/logs/beyond/attribution.log",
    benchmark:
        "results/benchmarks/beyond/attribution.tsv"
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/attribution.py"


rule fig_attribution:
    """Attributions over the mean spectrum with the line list; attention per layer and head."""
    input:
        arrays="results/beyond/attribution/attribution.npz",
        csv="results/tables/attribution_lines.csv",
    output:
        pdf="results/figures/fig_attribution.pdf",
        png=report("results/figures/fig_attribution.png", caption="../report/fig_attribution.rst",
                   category="Interpretability (P2.1)"),
        heads_pdf="results/figures/fig_attention_heads.pdf",
        heads_png=report("results/figures/fig_attention_heads.png", caption="../report/fig_attention_heads.rst",
                         category="Interpretability (P2.1)"),
    params:
        code=code_hash("attribution_figures.py"),
    log:
        "results/logs/figures/fig_attribution.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/attribution_figures.py"


# ---------------------------------------------------------------- pre-train -> fine-tune (P2.2)


rule pretrain_run:
    """Pre-train a ViT on all five labels of the largest training set."""
    input:
        train=data_path("train"),
        val=data_path("val"),
        test=data_path("test"),
        subset=subset_path(PRETRAIN_N),
    output:
        metrics=f"{PRETRAIN_DIR}/metrics.json",
        model=f"{PRETRAIN_DIR}/model/model.json",
    params:
        code=code_hash("pretrain_finetune_run.py"),
        n_train=None,
        all_n=None,
        subset_seed=None,
        labels=["Teff", "logg", "M_H", "a_M", "C_M"],
        vit=pretrain_vit(),
        train=pretrain_train("pretrained", PRETRAIN_SEED),
        val_noise_seed=stream_seed("val_noise"),
        test_noise_level=config["eval"]["noise_level"],
        test_noise_seed=stream_seed("test_noise"),
    log:
        "results/logs/beyond/pretrain.log",
    benchmark:
        "results/benchmarks/beyond/pretrain.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        **cluster_resources(lambda w: pretrain_spec("pretrained", PRETRAIN_N, PRETRAIN_SEED)),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain_finetune_run.py"


rule finetune_run:
    """Fine-tune the pre-trained ViT for log g on a small subset, or train from scratch on it (same budget)."""
    wildcard_constraints:
        n=r"\d+",
        seed=r"\d+",
    input:
        unpack(_finetune_inputs),
    output:
        metrics="results/beyond/pretrain/{setting}-N{n}-s{seed}/metrics.json",
        model="results/beyond/pretrain/{setting}-N{n}-s{seed}/model/model.json",
    params:
        code=code_hash("pretrain_finetune_run.py"),
        n_train=lambda w: int(w.n),
        all_n=[int(n) for n in config["pretrain"]["n_finetune"]],
        subset_seed=beyond_seed("finetune_subsets"),
        labels=["logg"],
        vit=lambda w: None if w.setting == "finetune" else pretrain_vit(),
        train=lambda w: pretrain_train(w.setting, w.seed),
        val_noise_seed=stream_seed("val_noise"),
        test_noise_level=config["eval"]["noise_level"],
        test_noise_seed=stream_seed("test_noise"),
    log:
        "results/logs/beyond/{setting}-N{n}-s{seed}.log",
    benchmark:
        "results/benchmarks/beyond/{setting}-N{n}-s{seed}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        **cluster_resources(lambda w: pretrain_spec(w.setting, w.n, w.seed)),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain_finetune_run.py"


rule pretrain_finetune:
    """Test R² and MAE of every fine-tune and scratch run, and of the pre-trained model itself."""
    input:
        pretrained=f"{PRETRAIN_DIR}/metrics.json",
        runs=[f"{small_run_dir(*key)}/metrics.json" for key in SMALL_RUNS],
    output:
        csv=report("results/tables/pretrain_finetune.csv", caption="../report/pretrain_finetune.rst",
                   category="Pre-train and fine-tune (P2.2)"),
        md="results/tables/pretrain_finetune.md",
        tex="results/tables/pretrain_finetune.tex",
    params:
        code=code_hash("pretrain_finetune_table.py"),
        run_keys=[list(key) for key in SMALL_RUNS],
        pretrain_seed=PRETRAIN_SEED,
    log:
        "results/logs/tables/pretrain_finetune.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain_finetune_table.py"


rule fig_pretrain_finetune:
    """Sample-efficiency curves: fine-tuned vs from scratch vs the pre-trained model."""
    input:
        csv="results/tables/pretrain_finetune.csv",
    output:
        pdf="results/figures/fig_pretrain_finetune.pdf",
        png=report("results/figures/fig_pretrain_finetune.png", caption="../report/fig_pretrain_finetune.rst",
                   category="Pre-train and fine-tune (P2.2)"),
    params:
        code=code_hash("pretrain_finetune_figure.py"),
    log:
        "results/logs/figures/fig_pretrain_finetune.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain_finetune_figure.py"


# ---------------------------------------------------------------- domain shift (P2.3)


rule shift_eval:
    """The main runs on the test set shifted at every severity, and the ViT fine-tuned on a small shifted set."""
    input:
        unpack(_shift_inputs),
    output:
        csv="results/beyond/domain_shift/{shift}/metrics.csv",
    params:
        code=code_hash("domain_shift_eval.py"),
        shift=lambda w: w.shift,
        severities=lambda w: config["domain_shift"]["severities"][w.shift],
        settings={k: config["domain_shift"][k] for k in ("continuum_degree", "sky_lines")},
        models=list(SHIFT_MODELS),
        vit=SHIFT_VIT,
        finetune=config["domain_shift"]["finetune"],
        train=lambda w: shift_finetune_train() if SHIFT_VIT_RUN else None,
        seed=beyond_seed("shift"),
        subset_seed=beyond_seed("shift_finetune"),
        noise_level=config["eval"]["noise_level"],
        val_noise_seed=stream_seed("val_noise"),
        test_noise_seed=stream_seed("test_noise"),
    log:
        "results/logs/beyond/shift_{shift}.log",
    benchmark:
        "results/benchmarks/beyond/shift_{shift}.tsv"
    threads: config["threads"]
    resources:
        gpu=1 if SHIFT_VIT_RUN else 0,
        # sized by its ViT fine-tune; without a ViT a CPU job with the profile's defaults
        **(cluster_resources(lambda w: shift_finetune_spec(w.shift)) if SHIFT_VIT_RUN else {}),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/domain_shift_eval.py"


rule external_eval:
    """The main runs on the user's labelled external test files (`eval.external`)."""
    input:
        test=data_path("test"),
        external=config["eval"]["external"],
        models=[f"results/runs/{r}/model/model.json" for r in SHIFT_MODELS.values()],
    output:
        csv="results/beyond/domain_shift/external.csv",
    params:
        code=code_hash("domain_shift_external.py"),
        models=list(SHIFT_MODELS),
        # observed spectra carry their noise already: eval.external_add_noise false scores them as they are
        noise_level=config["eval"]["noise_level"] if config["eval"]["external_add_noise"] else 0.0,
        test_noise_seed=stream_seed("test_noise"),
    log:
        "results/logs/beyond/external.log",
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/domain_shift_external.py"


rule domain_shift:
    """The domain-shift table: every shift and severity, the fine-tuned ViT, the external files."""
    input:
        parts=[f"results/beyond/domain_shift/{s}/metrics.csv" for s in config["domain_shift"]["severities"]]
        + (["results/beyond/domain_shift/external.csv"] if config["eval"]["external"] else []),
    output:
        csv=report("results/tables/domain_shift.csv", caption="../report/domain_shift.rst",
                   category="Domain shift (P2.3)"),
        md="results/tables/domain_shift.md",
        tex="results/tables/domain_shift.tex",
    params:
        code=code_hash("domain_shift_table.py"),
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
        pdf="results/figures/fig_domain_shift.pdf",
        png=report("results/figures/fig_domain_shift.png", caption="../report/fig_domain_shift.rst",
                   category="Domain shift (P2.3)"),
    params:
        code=code_hash("domain_shift_figure.py"),
    log:
        "results/logs/figures/fig_domain_shift.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/domain_shift_figure.py"
