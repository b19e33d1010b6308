# Where the ViT looks (attribution, P2.1): integrated gradients and attention of one ViT run on
# test stars. Config: `attribution`; the run is STUDIES.attribution_run (specvit.pipeline.studies).


rule attribution:
    """Integrated gradients and attention rollout of a ViT's log g on test stars, per Teff/log g group."""
    input:
        model=f"results/runs/{STUDIES.attribution_run}/model/model.json",
        test=data_path("test"),
        valid=VALIDATED,
    output:
        arrays="results/studies/attribution/attribution.npz",
        **reported("results/tables/attribution_lines", TABLE_FORMATS, caption="../report/attribution_lines.rst",
                   category=SECTIONS["attribution"], only=["csv"]),
    params:
        cfg=config["attribution"],
        run_id=STUDIES.attribution_run,
        noise_level=config["eval"]["noise_level"],
        seed=stream_seed("test_noise"),
    log:
        "results/logs/studies/attribution.log",
    benchmark:
        "results/benchmarks/studies/attribution.tsv"
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/attribution.py"


rule fig_attribution:
    """Attributions over the mean spectrum with the line list; attention per layer and head."""
    input:
        arrays="results/studies/attribution/attribution.npz",
        csv="results/tables/attribution_lines.csv",
    output:
        **reported("results/figures/fig_attribution", FIGURE_FORMATS, caption="../report/fig_attribution.rst",
                   category=SECTIONS["attribution"], only=["png"]),
        **reported("results/figures/fig_attention_heads", FIGURE_FORMATS, caption="../report/fig_attention_heads.rst",
                   category=SECTIONS["attribution"], only=["png"], prefix="heads_"),
    log:
        "results/logs/figures/fig_attribution.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/attribution_figures.py"
