"""Figure 1: test R² of log g against SNR per model, with the information ceilings of ceiling.csv
and the training magnitudes marked (rule fig1 and fig1_seeds)."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from specvit.reporting.figures import PALETTE, STYLE, _model_styles, draw_interval, save_figure

# How Figure 1 draws each kind of ceiling row (``mse`` is not drawn: it is the median's population mean).
CEILING_KINDS = {"median": ("CRLB, median star", "-"), "bayes": ("Bayes approximation (Gaussian surrogate)", "--")}
CEILING_COLORS = ["0.3", "#6A3D9A", "#01665E", "#8C510A", "#B2182B"]  # grey, then none of the models' colours
# Kinds drawn as markers with their r2_q10-r2_q90 range: estimates, not curves of a formula.
MARKER_KINDS = {"mmse_sim": "Bayes risk, simulated posterior (estimate; 10–90 % over stars)"}


def _draw_ceilings(ax, ceiling) -> None:
    """Every ceiling of the table except ``1d`` (log g alone) and ``mse``: one colour per ``dims`` (the
    clean one grey, with the q10-q90 band of its median star), a line style per kind; a kind this
    function does not know (e.g. a simulated posterior) as markers with its r2_q10-r2_q90 range."""
    from specvit.physics.nuisances import describe_dims

    ceiling = ceiling[ceiling["r2"].notna() & (ceiling["dims"] != "1d") & (ceiling["kind"] != "mse")]
    for i, dims in enumerate(dict.fromkeys(ceiling["dims"])):
        color, what = CEILING_COLORS[i % len(CEILING_COLORS)], describe_dims(dims)
        rows = ceiling[ceiling["dims"] == dims].sort_values("snr_median")
        kinds = [k for k in CEILING_KINDS if k in set(rows["kind"])] + [k for k in dict.fromkeys(rows["kind"])
                                                                          if k not in CEILING_KINDS]
        for kind in kinds:
            g = rows[rows["kind"] == kind]
            if kind == "median" and i == 0:
                ax.fill_between(g["snr_median"], g["r2_q10"], g["r2_q90"], color="0.88", lw=0,
                                label=f"q10–q90 of stars: {what}")
            if kind in CEILING_KINDS:
                name, ls = CEILING_KINDS[kind]
                ax.plot(g["snr_median"], g["r2"], color=color, lw=1.4, ls=ls, label=f"{name}: {what}")
            else:
                ax.plot(g["snr_median"], g["r2"], color=color, ls=":", lw=1, mfc="white", ms=4, zorder=3,
                        marker="D" if kind in MARKER_KINDS else "x", label=f"{MARKER_KINDS.get(kind, kind)}: {what}")
                draw_interval(ax, g["snr_median"], g["r2_q10"], g["r2_q90"], color=color)


def _training_range_snr(sweep, train_mags) -> tuple[float, float] | None:
    """The SNR span of the magnitudes inside ``train_mags`` [bright, faint], through the sweep's own
    magnitude -> SNR relation (None if the sweep has fewer than two magnitudes)."""
    mags = sweep.drop_duplicates("mag").sort_values("mag")
    if train_mags is None or len(mags) < 2:
        return None
    lm, ls = mags["mag"].to_numpy(float), np.log(mags["snr_median"].to_numpy(float))
    bright, faint = sorted(float(m) for m in train_mags)
    return float(np.exp(np.interp(faint, lm, ls))), float(np.exp(np.interp(bright, lm, ls)))


def _draw_models(ax, sweep, styles) -> None:
    """Each model's R² per magnitude with its bootstrap interval, and where it has several seeds
    (Table 3's ``n_seeds``) a band of the seeds' mean ± standard deviation."""
    for model, g in sweep.groupby("model"):
        s = styles[model]
        n_seeds = int(g["n_seeds"].max()) if "n_seeds" in g and g["n_seeds"].notna().any() else 1
        seeds = f"; band: {n_seeds} seeds ± std" if n_seeds > 1 else ""
        label = f"{model} (N = {int(g['n_train'].iloc[0]):,}{seeds})"
        ax.plot(g["snr_median"], g["r2"], color=s["color"], marker=s["marker"], ms=4, lw=1.2, label=label)
        draw_interval(ax, g["snr_median"], g["r2_lo"], g["r2_hi"], color=s["color"])
        if n_seeds > 1:
            mean, std = g["r2_seed_mean"].to_numpy(float), g["r2_seed_std"].fillna(0).to_numpy(float)
            ax.fill_between(g["snr_median"], mean - std, mean + std, color=s["color"], alpha=0.15, lw=0)


def plot_r2_vs_snr(table3, ceiling, pdf_path, png_path, metadata: dict | None = None, *,
                   train_mags=None) -> None:
    """Figure 1: test R^2 vs SNR per model (sweep view, bootstrap 95 % intervals; the seeds' spread
    where a model has several) with the ceilings of the ceiling table (``_draw_ceilings``): each
    ``dims`` it lists (all labels unknown, and each nuisance set), the per-star median CRLB (the paper's
    convention; q10-q90 band for the clean one) and the Bayes approximation, labelled with what each
    leaves unknown, and (kind ``mmse_sim``, where the table has it) the Bayes risk estimated by
    simulating the posterior, with its 10-90 % range over stars. ``train_mags`` [bright, faint] shades
    the SNR range of the training magnitudes: the points outside it measure generalisation to another
    noise level."""
    sweep = table3[table3["view"] == "sweep"].sort_values("snr_median")
    styles = _model_styles(sweep["model"].unique())
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        if ceiling is not None and len(ceiling):
            _draw_ceilings(ax, ceiling)
        span = _training_range_snr(sweep, train_mags)
        if span is not None:
            ax.axvspan(*span, color=PALETTE[4], alpha=0.15, lw=0, zorder=1.5,  # over the ceiling band, under the lines
                       label=f"training magnitudes {min(train_mags):g}–{max(train_mags):g}")
        _draw_models(ax, sweep, styles)
        ax.set_xscale("log")
        ax.set_xlabel("median SNR per pixel (‖flux‖/‖error‖)")
        ax.set_ylabel("test R² of log g (1 − MSE / Var prior)")
        lo = min(0.0, float(sweep["r2"].min()) - 0.05) if len(sweep) else 0.0
        ax.set_ylim(max(lo, -0.5), 1.02)
        mags = sweep.drop_duplicates("mag").sort_values("snr_median")
        if len(mags) > 1:  # magnitude on a secondary axis, through the SNR <-> mag relation of the data
            ls, lm = np.log(mags["snr_median"].to_numpy()), mags["mag"].to_numpy()
            sec = ax.secondary_xaxis("top", functions=(
                lambda s: np.interp(np.log(np.clip(s, 1e-3, None)), ls, lm),
                lambda m: np.exp(np.interp(m, lm[::-1], ls[::-1]))))
            sec.set_xlabel("magnitude")
            sec.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(lm))
            sec.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            sec.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            sec.tick_params(labelsize=7)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False, fontsize=7)
        ax.grid(alpha=0.3, which="both")
        save_figure(fig, pdf_path, png_path, metadata=metadata)
