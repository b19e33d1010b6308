# Ablations (config `ablations`): each is a group of run variants that joined RUNS when the config
# was expanded (specvit.pipeline.ablations; so train_run / evaluate_run build them), summarised by one rule pattern into a
# table and a figure: results/tables/<table>.{csv,md,tex} and results/figures/<figure>.{pdf,png},
# names in specvit.studies.ablations.KINDS.

from specvit.pipeline.ablations import ablation_of, run_inputs, noise_levels_by_run, vit_variants
from specvit.studies.ablations import KINDS

ABLATION_CATEGORY = SECTIONS["ablations"]  # report section of every ablation output
ABLATION_OF_TABLE = ablation_of(ABLATIONS, "table")
ABLATION_OF_FIGURE = ablation_of(ABLATIONS, "figure")
TEST_NOISE = noise_levels_by_run(config["ablations"], ABLATIONS)  # {run_id: test noise levels} (rule evaluate_noise)
# the gradient-norm check at initialisation: ablations.tokenization.init_gradients ({} without the ablation)
INIT_GRADIENTS = ((config["ablations"] or {}).get("tokenization") or {}).get("init_gradients", {})


rule evaluate_noise:
    """Pooled test metrics of one run at each test noise level of its ablation (same noise draw, scaled)."""
    input:
        model="results/runs/{run_id}/model/model.json",
        test=data_path("test"),
        valid=VALIDATED,
    output:
        metrics="results/runs/{run_id}/metrics_noise.csv",
    params:
        noise_levels=lambda w: TEST_NOISE[w.run_id],
        n_boot=config["eval"]["n_boot"],
        seed=stream_seed("test_noise"),
        max_stars=lambda w: RUNS[w.run_id].max_eval_stars,
        label_priors=config["data"]["labels"],  # R² = 1 - MSE / Var(prior)
    log:
        "results/logs/evaluate/{run_id}.noise.log",
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_noise.py"


rule ablation_init_gradients:
    """Gradient norms at the initial weights of every tokenization variant, over several init seeds."""
    input:
        train=data_path("train"),
        valid=VALIDATED,
        subset=lambda w: subset_path(config["ablations"]["tokenization"]["n_train"]),
    output:
        **reported("results/tables/tokenization_init", TABLE_FORMATS, caption="../report/ablation_init_gradients.rst",
                   category=ABLATION_CATEGORY, subcategory="tokenization_init"),
        runs="results/tables/tokenization_init_runs.csv",
    params:
        variants=vit_variants("tokenization", ABLATIONS.get("tokenization", {})),
        seeds=lambda w: list(range(INIT_GRADIENTS["n_seeds"])),
        batch_size=lambda w: INIT_GRADIENTS["batch_size"],
        noise_seed=stream_seed("val_noise"),
    log:
        "results/logs/tables/tokenization_init.log",
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/ablation_init_gradients.py"


rule ablation_table:
    """One ablation's table: mean and std over seeds per variant, and the per-run rows."""
    input:
        unpack(lambda w: run_inputs(ABLATION_OF_TABLE[w.table], ABLATIONS[ABLATION_OF_TABLE[w.table]])),
    output:
        **reported("results/tables/{table}", TABLE_FORMATS, caption="../report/ablation_table.rst",
                   category=ABLATION_CATEGORY, subcategory="{table}"),
        runs="results/tables/{table}_runs.csv",
    wildcard_constraints:
        table="|".join(ABLATION_OF_TABLE) or "no-ablations",
    params:
        ablation=lambda w: ABLATION_OF_TABLE[w.table],
        runs=lambda w: list(ABLATIONS[ABLATION_OF_TABLE[w.table]]),
    log:
        "results/logs/tables/{table}.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/ablation_table.py"


rule ablation_figure:
    """One ablation's figure, from its table and its runs' histories and predictions."""
    input:
        unpack(lambda w: run_inputs(ABLATION_OF_FIGURE[w.figure], ABLATIONS[ABLATION_OF_FIGURE[w.figure]])),
        table=lambda w: f"results/tables/{KINDS[ABLATION_OF_FIGURE[w.figure]].table}.csv",
        runs=lambda w: f"results/tables/{KINDS[ABLATION_OF_FIGURE[w.figure]].table}_runs.csv",
        init=lambda w: ["results/tables/tokenization_init.csv"] if ABLATION_OF_FIGURE[w.figure] == "tokenization" else [],
    output:
        **reported("results/figures/{figure}", FIGURE_FORMATS, caption="../report/ablation_figure.rst",
                   category=ABLATION_CATEGORY, subcategory="{figure}"),
    wildcard_constraints:
        figure="|".join(ABLATION_OF_FIGURE) or "no-ablations",
    params:
        ablation=lambda w: ABLATION_OF_FIGURE[w.figure],
        runs=lambda w: list(ABLATIONS[ABLATION_OF_FIGURE[w.figure]]),
    log:
        "results/logs/figures/{figure}.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/ablation_figure.py"
