# The Bayes bound checked by simulation (ceiling.mmse_sim): the posterior mean of log g of test stars
# under the exact forward model, by importance sampling; its rows join results/tables/ceiling.csv.


rule ceiling_sim:
    """mmse_sim: the simulated posterior-mean R² of log g per magnitude, clean and per nuisance set, with Monte
    Carlo error and ESS."""
    input:
        test=data_path("test"),
    output:
        csv=report("results/tables/ceiling_sim.csv", caption="../report/ceiling_sim.rst",
                   category=SECTIONS["ceiling"], labels={"name": "ceiling by simulation", "format": "CSV"}),
        per_star="results/ceiling_sim/per_star.csv",
    params:
        sim=config["ceiling"]["mmse_sim"],
        nuisances=config["ceiling"]["nuisances"],
        noise_level=config["eval"]["noise_level"],
        n_boot=config["eval"]["n_boot"],
        labels=config["data"]["labels"],
        seed=stream_seed("mmse_sim"),
    log:
        "results/logs/tables/ceiling_sim.log",
    benchmark:
        "results/benchmarks/tables/ceiling_sim.tsv"
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/ceiling_sim.py"
