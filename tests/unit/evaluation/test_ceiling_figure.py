"""Figure 1 draws the ceilings the ceiling table lists, labelled with what each leaves unknown, and
tolerates kinds and columns it does not know (a simulated posterior's Monte Carlo error, a note)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from specvit.reporting.figure1 import _draw_ceilings, plot_r2_vs_snr  # noqa: E402


def _ceiling_table():
    rows = []
    for mag, snr in ((18.0, 87.0), (22.0, 4.6)):
        for dims, r2 in (("5d", 0.9), ("1d", 0.95), ("5d+cont2+rv", 0.5)):
            for kind in ("median", "mse", "bayes"):
                rows.append({"mag": mag, "snr_median": snr, "kind": kind, "dims": dims, "r2": r2 - 0.01 * mag,
                             "r2_q10": r2 - 0.2, "r2_q90": r2 + 0.02})
        rows.append({"mag": mag, "snr_median": snr, "kind": "mmse_sim", "dims": "5d", "r2": 0.8, "r2_q10": np.nan,
                     "r2_q90": np.nan, "mc_error": 0.005, "ess": 300.0})
        rows.append({"mag": mag, "snr_median": snr, "kind": "median", "dims": "3d+cont0+rv", "r2": np.nan,
                     "r2_q10": np.nan, "r2_q90": np.nan, "note": "needs the forward model"})
    return pd.DataFrame(rows)


def test_each_configured_ceiling_is_drawn_and_labelled():
    fig, ax = plt.subplots()
    _draw_ceilings(ax, _ceiling_table())
    _, labels = ax.get_legend_handles_labels()
    plt.close(fig)
    assert sorted(labels) == sorted([
        "q10–q90 of stars: 5D (all labels unknown)",
        "CRLB, median star: 5D (all labels unknown)",
        "Bayes approximation (Gaussian surrogate): 5D (all labels unknown)",
        "Bayes risk, simulated posterior (estimate; 10–90 % over stars): 5D (all labels unknown)",
        "CRLB, median star: 5D (all labels unknown) + continuum deg 2 + RV",
        "Bayes approximation (Gaussian surrogate): 5D (all labels unknown) + continuum deg 2 + RV",
    ])  # no 1d (log g alone), no mse, no rows without numbers


def test_figure_1_builds_with_extra_kinds_and_columns(tmp_path):
    table3 = pd.DataFrame({"view": "sweep", "model": "vit", "mag": [18.0, 22.0], "snr_median": [87.0, 4.6],
                           "r2": [0.9, 0.6], "r2_lo": [0.88, 0.55], "r2_hi": [0.92, 0.65], "n_train": 1000})
    plot_r2_vs_snr(table3, _ceiling_table(), tmp_path / "f.pdf", tmp_path / "f.png")
    assert (tmp_path / "f.pdf").stat().st_size > 0 and (tmp_path / "f.png").stat().st_size > 0
