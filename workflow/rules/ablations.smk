# Ablations (config `ablations`): each is a group of run variants that joined RUNS in the
# Snakefile (so train_run / evaluate_run build them), summarised by one rule pattern into a
# table and a figure: results/tables/<table>.{csv,md,tex} and results/figures/<figure>.{pdf,png},
# names in specvit.studies.ablations.KINDS.

from specvit.studies.ablations import KINDS
from specvit.pipeline.ablations import run_inputs, vit_variants

ABLATION_CATEGORY = "Ablations (§6.6 tokenization, P1.1-P1.4)"  # report section of every ablation output
INIT_SEEDS = 8  # initialisation seeds of the gradient-norm check (seed spread is as large as the effect)

ABLATION_OF_TABLE = {KINDS[a].table: a for a in ABLATIONS}
ABLATION_OF_FIGURE = {KINDS[a].figure: a for a in ABLATIONS}
# the test noise levels of each run whose ablation declares them (rule evaluate_noise)
TEST_NOISE = {rid: [float(v) for v in config["ablations"][a]["test_noise"]]
              for a, specs in ABLATIONS.items() if KINDS[a].test_noise for rid in specs}


rule evaluate_noise:
    """Pooled test metrics of one run at each test noise level of its ablation (same noise draw, scaled)."""
    input:
        model="results/runs/{run_id}/model/model.json",
        test=data_path("test"),
    output:
        metrics="results/runs/{run_id}/metrics_noise.csv",
    params:
        code=code_hash("evaluate_noise.py"),
        noise_levels=lambda w: TEST_NOISE[w.run_id],
        n_boot=config["eval"]["n_boot"],
        seed=stream_seed("test_noise"),
        max_stars=lambda w: RUNS[w.run_id].max_eval_stars,
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
        subset=lambda w: subset_path(config["ablations"]["tokenization"]["n_train"]),
    output:
        csv=report("results/tables/tokenization_init.csv", caption="../report/ablation_init_gradients.rst", category=ABLATION_CATEGORY, subcategory="tokenization_init",
                   labels={"format": "CSV"}),
        md=report("results/tables/tokenization_init.md", caption="../report/ablation_init_gradients.rst", category=ABLATION_CATEGORY, subcategory="tokenization_init",
                   labels={"format": "Markdown"}),
        tex=report("results/tables/tokenization_init.tex", caption="../report/ablation_init_gradients.rst", category=ABLATION_CATEGORY, subcategory="tokenization_init",
                   labels={"format": "LaTeX"}),
        runs="results/tables/tokenization_init_runs.csv",
    params:
        code=code_hash("ablation_init_gradients.py"),
        variants=vit_variants("tokenization", ABLATIONS.get("tokenization", {})),
        seeds=list(range(INIT_SEEDS)),
        batch_size=64,
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
        csv=report("results/tables/{table}.csv", caption="../report/ablation_table.rst", category=ABLATION_CATEGORY, subcategory="{table}",
                   labels={"format": "CSV"}),
        md=report("results/tables/{table}.md", caption="../report/ablation_table.rst", category=ABLATION_CATEGORY, subcategory="{table}",
                   labels={"format": "Markdown"}),
        tex=report("results/tables/{table}.tex", caption="../report/ablation_table.rst", category=ABLATION_CATEGORY, subcategory="{table}",
                   labels={"format": "LaTeX"}),
        runs="results/tables/{table}_runs.csv",
    wildcard_constraints:
        table="|".join(ABLATION_OF_TABLE) or "no-ablations",
    params:
        code=code_hash("ablation_table.py"),
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
        pdf=report("results/figures/{figure}.pdf", caption="../report/ablation_figure.rst", category=ABLATION_CATEGORY, subcategory="{figure}",
                   labels={"format": "PDF"}),
        png=report("results/figures/{figure}.png", caption="../report/ablation_figure.rst", category=ABLATION_CATEGORY, subcategory="{figure}",
                   labels={"format": "PNG"}),
    wildcard_constraints:
        figure="|".join(ABLATION_OF_FIGURE) or "no-ablations",
    params:
        code=code_hash("ablation_figure.py"),
        ablation=lambda w: ABLATION_OF_FIGURE[w.figure],
        runs=lambda w: list(ABLATIONS[ABLATION_OF_FIGURE[w.figure]]),
    log:
        "results/logs/figures/{figure}.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/ablation_figure.py"
