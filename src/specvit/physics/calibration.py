"""Calibration of the synthetic model's information content against the paper.

The paper's Fisher ceiling (median over test stars of 1 - CRLB_5D / Var(logg)) and its
magnitude -> SNR table are the anchors: if the embedded spectrum model carried much more
or much less log g information than the paper's BOSZ -> PFS simulations, every later
experiment would be uninformative. ``calibration_tables`` measures both on stars drawn
from the configured label distribution and lists them beside the paper's values.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from specvit.physics.fisher import ceiling_per_star
from specvit.physics.labels import LabelSpace
from specvit.physics.noise import PAPER_SNR
from specvit.physics.spectrum import SpectrumModel

# The paper's 5D Fisher/CRLB ceiling R^2 per magnitude (median over its 10k test stars).
PAPER_CEILING_5D = {18.0: 0.9993, 20.0: 0.9892, 21.5: 0.8742, 22.0: 0.6983, 22.5: 0.2647}


def calibration_tables(n_stars: int, seed: int, mags, label_space: LabelSpace | None = None,
                       model: SpectrumModel | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ceiling table, SNR table) for ``n_stars`` stars drawn with ``seed``.

    Ceiling R^2 per star is 1 - CRLB / Var(logg) with Var the variance of the log g prior;
    the table reports the median over stars, as the paper does. Stars are a scrambled
    Sobol sample of the label prior, which pins the population median down far better
    than independent draws (the per-star CRLB spans three decades).
    """
    label_space = label_space or LabelSpace()
    labels = label_space.sample_quasi_random(n_stars, seed)
    per_star = ceiling_per_star(model or SpectrumModel(), labels, mags)
    var = label_space.priors["logg"].variance()
    mags = np.atleast_1d(np.asarray(mags, dtype=float))
    snr = np.median(per_star["snr"], axis=1)
    r2_5d = np.median(1.0 - per_star["crlb_5d"] / var, axis=1)
    r2_1d = np.median(1.0 - per_star["crlb_1d"] / var, axis=1)
    paper_r2 = np.array([PAPER_CEILING_5D.get(float(m), np.nan) for m in mags])
    paper_snr = np.array([PAPER_SNR.get(float(m), np.nan) for m in mags])
    ceiling = pd.DataFrame({
        "mag": mags,
        "snr_median": snr,
        "ceiling_r2_5d_median": r2_5d,
        "ceiling_r2_1d_median": r2_1d,
        "paper_ceiling_r2_5d": paper_r2,
        "delta": r2_5d - paper_r2,
    })
    snr_table = pd.DataFrame({
        "mag": mags,
        "snr_median": snr,
        "paper_snr": paper_snr,
        "rel_delta": snr / paper_snr - 1.0,
    })
    return ceiling, snr_table
