# Data sets: synthetic train/val/test files (or the user's own), their
# validation summaries, and the nested training subsets.


if is_synthetic():

    rule simulate_split:
        """Generate one synthetic split in the HDF5 data contract."""
        output:
            h5="results/data/{split}.h5",
        params:
            n=lambda w: targets.split_size(config, w.split),
            seed=lambda w: stream_seed(w.split),
            labels=config["data"]["labels"],
            mag_range=lambda w: targets.split_mags(config, w.split),
            chunk_size=config["data"]["chunk_size"],
            nuisances=config["data"]["nuisances"],
        log:
            "results/logs/data/simulate_{split}.log",
        benchmark:
            "results/benchmarks/data/simulate_{split}.tsv"
        # Before the trainings, which need only the train split: the test split is then ready
        # when the first run ends, so evaluations (and their errors) come early, not last.
        priority: 50
        threads: config["threads"]
        conda:
            "../../envs/torch.yaml"
        script:
            "../scripts/simulate_split.py"


rule validate_split:
    """Check a split against the data contract and summarise it as JSON."""
    input:
        h5=lambda w: data_path(w.split),
    output:
        json="results/data/{split}.summary.json",
    log:
        "results/logs/data/validate_{split}.log",
    benchmark:
        "results/benchmarks/data/validate_{split}.tsv"
    priority: 50
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/validate_split.py"


rule subsets:
    """Nested index subsets of the training pool (each contained in the next)."""
    input:
        h5=data_path("train"),
        valid=VALIDATED,
    output:
        npy=targets.subset_paths(config),
    params:
        sizes=sorted(config["data"]["subsets"]),
        seed=stream_seed("subsets"),
    log:
        "results/logs/data/subsets.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/subsets.py"
