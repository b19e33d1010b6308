# Training runs: one job per run declared in the config's `runs` groups
# (model x N x seed), each writing results/runs/<run_id>/.

import re


wildcard_constraints:
    run_id="|".join(re.escape(r) for r in RUNS) or "no-runs",


rule train_run:
    """Train one model on one nested subset; a rerun resumes a ViT from its last checkpoint."""
    input:
        train=data_path("train"),
        val=data_path("val"),
        valid=VALIDATED,
        subset=lambda w: subset_path(RUNS[w.run_id].n_train),
    output:
        metrics="results/runs/{run_id}/metrics.json",
        model="results/runs/{run_id}/model/model.json",
    params:
        spec=lambda w: RUNS[w.run_id].to_dict(),
        val_noise_seed=stream_seed("val_noise"),
    log:
        "results/logs/runs/{run_id}.log",
    benchmark:
        "results/benchmarks/runs/{run_id}.tsv"
    threads: cluster_threads(train_spec, data_parallel=True)
    resources:
        # GPUs (training.devices for a ViT, which the job's script starts as DDP processes), and the
        # cluster sizing (workflow/rules/cluster.smk, specvit.pipeline.cluster; ignored by local runs)
        **cluster_resources(train_spec, data_parallel=True),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_run.py"
