# The nuisance study: the ViT and LightGBM retrained on spectra with a continuum error and a radial
# velocity (their own splits), against the ceiling that leaves the same nuisances unknown, beside the
# clean runs and the clean ceiling. Config: `nuisance_study`; runs: STUDIES (specvit.pipeline.studies).

import re

from specvit.pipeline.studies import NUISANCE_DIR

NUISANCE_RUNS = STUDIES.nuisance_runs  # {run id: spec}
NUISANCE_DATA = {split: f"{NUISANCE_DIR}/data/{split}.h5" for split in SPLITS}
NUISANCE_N = config["nuisance_study"]["n_train"]


wildcard_constraints:
    nuisance_run="|".join(re.escape(r) for r in NUISANCE_RUNS) or "no-runs",


rule nuisance_split:
    """One split of the study's data: synthetic spectra with the study's nuisances, truth stored as labels."""
    output:
        h5=f"{NUISANCE_DIR}/data/{{split}}.h5",
    params:
        n=lambda w: config["nuisance_study"][f"n_{w.split}"],
        seed=lambda w: stream_seed(f"nuisance_{w.split}"),
        labels=config["data"]["labels"],
        mag_range=lambda w: targets.split_mags(config, w.split),
        chunk_size=config["data"]["chunk_size"],
        nuisances=config["nuisance_study"]["nuisances"],
    log:
        "results/logs/studies/nuisance_simulate_{split}.log",
    benchmark:
        "results/benchmarks/studies/nuisance_simulate_{split}.tsv"
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/simulate_split.py"


rule nuisance_subset:
    """The training rows of the study's runs: all of its training split."""
    input:
        h5=NUISANCE_DATA["train"],
    output:
        npy=[f"{NUISANCE_DIR}/data/subsets/N{NUISANCE_N}.npy"],
    params:
        sizes=[NUISANCE_N],
        seed=stream_seed("subsets"),
    log:
        "results/logs/studies/nuisance_subsets.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/subsets.py"


rule nuisance_train:
    """Train one model of the study on its data (the settings of its group's main run)."""
    input:
        train=NUISANCE_DATA["train"],
        val=NUISANCE_DATA["val"],
        subset=f"{NUISANCE_DIR}/data/subsets/N{NUISANCE_N}.npy",
    output:
        metrics=f"{NUISANCE_DIR}/runs/{{nuisance_run}}/metrics.json",
        model=f"{NUISANCE_DIR}/runs/{{nuisance_run}}/model/model.json",
    params:
        spec=lambda w: NUISANCE_RUNS[w.nuisance_run].to_dict(),
        val_noise_seed=stream_seed("val_noise"),
    log:
        "results/logs/studies/{nuisance_run}.log",
    benchmark:
        "results/benchmarks/studies/{nuisance_run}.tsv"
    # train_run.py starts training.devices DDP processes for a ViT: sized as train_run is
    threads: cluster_threads(lambda w: NUISANCE_RUNS[w.nuisance_run], data_parallel=True)
    resources:
        **cluster_resources(lambda w: NUISANCE_RUNS[w.nuisance_run], data_parallel=True),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_run.py"


rule nuisance_eval:
    """Score one model of the study on its test split: the pooled view and the SNR sweep."""
    input:
        model=f"{NUISANCE_DIR}/runs/{{nuisance_run}}/model/model.json",
        run=f"{NUISANCE_DIR}/runs/{{nuisance_run}}/metrics.json",
        test=NUISANCE_DATA["test"],
    output:
        pooled=f"{NUISANCE_DIR}/runs/{{nuisance_run}}/predictions_pooled.h5",
        sweep=f"{NUISANCE_DIR}/runs/{{nuisance_run}}/predictions_sweep.h5",
        metrics=f"{NUISANCE_DIR}/runs/{{nuisance_run}}/metrics_test.csv",
    params:
        mags=config["eval"]["mags"],
        noise_level=config["eval"]["noise_level"],
        n_boot=config["eval"]["n_boot"],
        seed=stream_seed("test_noise"),
        max_stars=lambda w: NUISANCE_RUNS[w.nuisance_run].max_eval_stars,
        label_priors=config["data"]["labels"],  # R² = 1 - MSE / Var(prior), as Table 3's
    log:
        "results/logs/studies/evaluate_{nuisance_run}.log",
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_run.py"


rule nuisance_study:
    """The study's table: R² vs SNR of the models on data with nuisances and on clean data, and the ceilings."""
    input:
        nuisance=[f"{NUISANCE_DIR}/runs/{r}/metrics_test.csv" for r in NUISANCE_RUNS],
        clean=run_file("metrics_test.csv", STUDIES.nuisance_clean_runs.values()),
        ceiling="results/tables/ceiling.csv",
    output:
        **reported("results/tables/nuisance_study", TABLE_FORMATS, caption="../report/nuisance_study.rst",
                   category=SECTIONS["ceiling"], only=["csv"]),
    params:
        nuisance_runs={r: [s.group.removeprefix("nuisance-"), s.n_train] for r, s in NUISANCE_RUNS.items()},
        clean_runs={r: [g, RUNS[r].n_train] for g, r in STUDIES.nuisance_clean_runs.items()},
        nuisances=config["nuisance_study"]["nuisances"],
    log:
        "results/logs/tables/nuisance_study.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/nuisance_study_table.py"


rule fig_nuisance_study:
    """R² vs SNR on clean spectra and on spectra with nuisances, each against its ceilings."""
    input:
        csv="results/tables/nuisance_study.csv",
    output:
        **reported("results/figures/fig_nuisance_study", FIGURE_FORMATS, caption="../report/fig_nuisance_study.rst",
                   category=SECTIONS["ceiling"], only=["png"]),
    log:
        "results/logs/figures/fig_nuisance_study.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/nuisance_study_figure.py"
