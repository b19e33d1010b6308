"""Generate the weak "forest" line list shipped with the package (run once; the output is committed).

    python tools/make_forest_lines.py > src/specvit/resources/forest_lines.csv

The forest stands in for the hundreds of weak metal and CN lines of a real red-arm spectrum.
Each line gets a species drawn with the rough frequencies of the 7100-8850 A window, an
excitation energy typical of that species and a strength drawn log-uniformly, so that the
labels are partly degenerate as in real spectra (many lines respond to Teff, [M/H] and
log g at once). The seed is fixed: re-running this script reproduces the file byte for byte.
The forward model never draws lines at run time.
"""
from __future__ import annotations

import sys

import numpy as np

SEED = 20240501
N_LINES = 400
WAVE_RANGE = (7105.0, 8845.0)

# species, ion_stage, chi_ion (eV of the neutral), alpha, carbon, (chi_exc low, high), weight
SPECIES = [
    ("Fe", 1, 7.90, 0, 0, (2.2, 5.0), 0.40),
    ("Ni", 1, 7.64, 0, 0, (1.8, 4.2), 0.06),
    ("Cr", 1, 6.77, 0, 0, (2.5, 3.6), 0.04),
    ("Ti", 1, 6.83, 1, 0, (0.8, 2.3), 0.07),
    ("Ca", 1, 6.11, 1, 0, (1.9, 4.6), 0.04),
    ("Si", 1, 8.15, 1, 0, (4.9, 6.2), 0.06),
    ("Mg", 1, 7.65, 1, 0, (4.3, 5.9), 0.02),
    ("C", 1, 11.26, 0, 1, (7.5, 8.8), 0.02),
    ("CN", 0, 0.00, 0, 1, (0.0, 1.0), 0.20),
    ("Fe", 2, 7.90, 0, 0, (5.5, 7.0), 0.05),
    ("Ti", 2, 6.83, 1, 0, (1.1, 3.1), 0.02),
    ("Cr", 2, 6.77, 0, 0, (4.0, 5.5), 0.02),
]
LOG_S_RANGE = (-2.6, -0.6)  # log10 strength (A): depths from ~0.003 to ~0.2
LOG_GAMMA = (-1.4, 0.25)    # mean and scatter of the log10 Lorentz FWHM (A)


def main(out=sys.stdout) -> None:
    rng = np.random.default_rng(SEED)
    weights = np.array([s[-1] for s in SPECIES])
    kinds = rng.choice(len(SPECIES), size=N_LINES, p=weights / weights.sum())
    waves = np.sort(rng.uniform(*WAVE_RANGE, size=N_LINES))
    out.write("name,species,ion_stage,wavelength,chi_exc,chi_ion,alpha,carbon,log_s,log_gamma,window_px\n")
    for k, wave in zip(kinds, waves):
        species, stage, chi_ion, alpha, carbon, (lo, hi), _ = SPECIES[k]
        chi_exc = rng.uniform(lo, hi)
        log_s = rng.uniform(*LOG_S_RANGE)
        log_gamma = rng.normal(*LOG_GAMMA)
        roman = {0: "", 1: " I", 2: " II"}[stage]
        out.write(
            f"{species}{roman} {wave:.2f},{species},{stage},{wave:.2f},{chi_exc:.2f},{chi_ion:.2f},"
            f"{alpha},{carbon},{log_s:.3f},{log_gamma:.3f},16\n"
        )


if __name__ == "__main__":
    main()
