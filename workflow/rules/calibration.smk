# Calibration of the synthetic model against the paper: mag -> SNR and
# ceiling R² tables, and a figure of example spectra.


rule calibration:
    """SNR vs magnitude and CRLB ceiling vs the paper's table."""
    output:
        ceiling=report("results/calibration/ceiling_vs_paper.csv", caption="../report/calibration.rst",
                       category=SECTIONS["data"], labels={"name": "ceiling vs paper", "format": "CSV"}),
        snr=report("results/calibration/snr_vs_mag.csv", caption="../report/calibration.rst",
                   category=SECTIONS["data"], labels={"name": "SNR vs magnitude", "format": "CSV"}),
    params:
        n_stars=config["calibration"]["n_stars"],
        seed=stream_seed("calibration"),
        mags=config["calibration"]["mags"],
        labels=config["data"]["labels"],
    log:
        "results/logs/calibration/calibration.log",
    benchmark:
        "results/benchmarks/calibration/calibration.tsv"
    threads: config["threads"]
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/calibration.py"


rule spectra_examples:
    """Example spectra of the synthetic model (PDF + PNG)."""
    output:
        **reported("results/figures/spectra_examples", FIGURE_FORMATS, caption="../report/spectra_examples.rst",
                   category=SECTIONS["data"], name="example spectra"),
    log:
        "results/logs/figures/spectra_examples.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/spectra_examples.py"
