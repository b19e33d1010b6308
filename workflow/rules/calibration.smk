# Calibration of the synthetic model against the paper: mag -> SNR and
# ceiling R² tables, and a figure of example spectra.


rule calibration:
    """SNR vs magnitude and CRLB ceiling vs the paper's table."""
    output:
        ceiling="results/calibration/ceiling_vs_paper.csv",
        snr="results/calibration/snr_vs_mag.csv",
    params:
        code=code_hash("calibration.py"),
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
        pdf="results/figures/spectra_examples.pdf",
        png="results/figures/spectra_examples.png",
    params:
        code=code_hash("spectra_examples.py"),
    log:
        "results/logs/figures/spectra_examples.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/spectra_examples.py"
