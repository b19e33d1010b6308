# Pre-train -> fine-tune (P2.2): a ViT pre-trained on all five labels, fine-tuned for log g on
# small subsets, against the same ViT trained from scratch on them. Config: `pretrain`; settings
# and run specs: STUDIES (specvit.pipeline.studies).

from specvit.physics.labels import LABEL_NAMES
from specvit.pipeline.studies import PRETRAIN_DIR, SMALL_SETTINGS, small_run_dir


wildcard_constraints:
    setting="|".join(SMALL_SETTINGS),


rule pretrain_run:
    """Pre-train a ViT on all five labels of the largest training set."""
    input:
        train=data_path("train"),
        val=data_path("val"),
        test=data_path("test"),
        valid=VALIDATED,
        subset=subset_path(STUDIES.pretrain_n),
    output:
        metrics=f"{PRETRAIN_DIR}/metrics.json",
        model=f"{PRETRAIN_DIR}/model/model.json",
    params:
        n_train=None,
        all_n=None,
        subset_seed=None,
        labels=list(LABEL_NAMES),
        vit=STUDIES.pretrain_vit(),
        train=STUDIES.pretrain_train("pretrained", STUDIES.pretrain_seed),
        val_noise_seed=stream_seed("val_noise"),
        test_noise_level=config["eval"]["noise_level"],
        test_noise_seed=stream_seed("test_noise"),
        label_priors=config["data"]["labels"],  # R² = 1 - MSE / Var(prior), as Table 3's
    log:
        "results/logs/studies/pretrain.log",
    benchmark:
        "results/benchmarks/studies/pretrain.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        **cluster_resources(lambda w: STUDIES.pretrain_spec("pretrained", STUDIES.pretrain_n, STUDIES.pretrain_seed)),
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
        unpack(lambda w: STUDIES.finetune_inputs(w.setting, DATA)),
        valid=VALIDATED,
    output:
        metrics="results/studies/pretrain/{setting}-N{n}-s{seed}/metrics.json",
        model="results/studies/pretrain/{setting}-N{n}-s{seed}/model/model.json",
    params:
        n_train=lambda w: int(w.n),
        all_n=[int(n) for n in config["pretrain"]["n_finetune"]],
        subset_seed=stream_seed("finetune_subsets"),
        labels=["logg"],
        vit=lambda w: None if w.setting == "finetune" else STUDIES.pretrain_vit(),
        train=lambda w: STUDIES.pretrain_train(w.setting, w.seed),
        val_noise_seed=stream_seed("val_noise"),
        test_noise_level=config["eval"]["noise_level"],
        test_noise_seed=stream_seed("test_noise"),
        label_priors=config["data"]["labels"],  # R² = 1 - MSE / Var(prior), as Table 3's
    log:
        "results/logs/studies/{setting}-N{n}-s{seed}.log",
    benchmark:
        "results/benchmarks/studies/{setting}-N{n}-s{seed}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        **cluster_resources(lambda w: STUDIES.pretrain_spec(w.setting, w.n, w.seed)),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain_finetune_run.py"


rule pretrain_finetune:
    """Test R² and MAE of every fine-tune and scratch run, and of the pre-trained model itself."""
    input:
        pretrained=f"{PRETRAIN_DIR}/metrics.json",
        runs=[f"{small_run_dir(*key)}/metrics.json" for key in STUDIES.small_runs],
    output:
        **reported("results/tables/pretrain_finetune", TABLE_FORMATS, caption="../report/pretrain_finetune.rst",
                   category=SECTIONS["pretrain"], only=["csv"]),
    params:
        run_keys=[list(key) for key in STUDIES.small_runs],
        pretrain_seed=STUDIES.pretrain_seed,
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
        **reported("results/figures/fig_pretrain_finetune", FIGURE_FORMATS, caption="../report/fig_pretrain_finetune.rst",
                   category=SECTIONS["pretrain"], only=["png"]),
    log:
        "results/logs/figures/fig_pretrain_finetune.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain_finetune_figure.py"
