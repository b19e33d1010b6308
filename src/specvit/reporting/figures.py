"""Figures. One style for all of them; every figure is written as PDF and PNG, atomically."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specvit.evaluation.metrics import r2_of  # noqa: E402
from specvit.evaluation.predictions import r2_variance  # noqa: E402
from specvit.reporting import provenance  # noqa: E402
from specvit.runtime.io import atomic_path  # noqa: E402

# Okabe-Ito: distinguishable in print and for colour-blind readers.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,
}


def save_figure(fig, pdf_path, png_path, metadata: dict | None = None) -> None:
    """Write ``fig`` to PDF and PNG through temporary names, so a killed job leaves no half file; in a
    tracked workflow job (``specvit.reporting.provenance.track``) the PDF metadata also carry the commit and the
    config hash, and the sidecar ``<stem>.prov.json`` is written."""
    metadata = {**(metadata or {}), **provenance.pdf_metadata()}
    for path, fmt in ((pdf_path, "pdf"), (png_path, "png")):
        meta = {k: str(v) for k, v in metadata.items()} if fmt == "pdf" else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, metadata=meta, bbox_inches="tight")
    plt.close(fig)
    provenance.stamp(pdf_path, png_path)


def _mark_features(ax, features, ymax_label=True):
    for _, wave in features:
        ax.axvline(wave, color="0.6", lw=0.5, ls=":", zorder=0)
    if ymax_label:
        seen = set()
        for label, wave in features:
            key = (label, round(wave, -1) // 40)
            if key in seen:
                continue
            seen.add(key)
            ax.text(wave, 1.02, label, transform=ax.get_xaxis_transform(), fontsize=6,
                    rotation=90, ha="center", va="bottom", color="0.3")


def plot_spectra_examples(pdf_path, png_path, teffs=(4000.0, 5000.0, 5900.0), loggs=(1.5, 4.5),
                          m_h: float = 0.0, zoom=(8470.0, 8680.0)) -> None:
    """Example spectra of the embedded model across Teff and log g, main lines marked, with
    d flux / d logg under each spectrum; the right column zooms on the Ca II triplet."""
    import torch  # only this figure runs the forward model; the others need no torch (plot env)

    from specvit.physics.fisher import jacobian
    from specvit.physics.labels import LOGG
    from specvit.physics.spectrum import SpectrumModel, marked_features

    model = SpectrumModel().double()
    features = marked_features()
    labels = torch.tensor([[t, g, m_h, 0.0, 0.0] for t in teffs for g in loggs], dtype=torch.float64)
    flux, jac = jacobian(model, labels)
    flux, dflux = flux.detach().numpy(), jac[..., LOGG].detach().numpy()
    wave = model.wave
    in_zoom = (wave >= zoom[0]) & (wave <= zoom[1])

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2 * len(teffs), 2, figsize=(11, 2.3 * len(teffs) + 1),
                                 gridspec_kw={"width_ratios": [3, 1], "height_ratios": [2, 1] * len(teffs)},
                                 sharex="col")
        for i, teff in enumerate(teffs):
            ax_f, ax_d = axes[2 * i], axes[2 * i + 1]
            for j, logg in enumerate(loggs):
                row = i * len(loggs) + j
                for col, sel in ((0, slice(None)), (1, in_zoom)):
                    ax_f[col].plot(wave[sel], flux[row, sel], lw=0.6, color=PALETTE[j],
                                   label=f"log g = {logg:g}")
                    ax_d[col].plot(wave[sel], dflux[row, sel], lw=0.6, color=PALETTE[j])
            ax_f[0].set_ylabel("flux / mean")
            ax_d[0].set_ylabel(r"$\partial$flux/$\partial$log g")
            ax_f[0].set_title(f"Teff = {teff:.0f} K, [M/H] = {m_h:+.1f}", loc="left")
            for ax in (ax_f[0], ax_d[0]):
                _mark_features(ax, features, ymax_label=ax is ax_f[0] and i == 0)
            for ax in (ax_f[1], ax_d[1]):
                _mark_features(ax, [f for f in features if zoom[0] <= f[1] <= zoom[1]],
                               ymax_label=ax is ax_f[1] and i == 0)
        axes[0, 0].legend(loc="lower left", ncol=len(loggs), frameon=False)
        axes[-1, 0].set_xlabel("wavelength (Å)")
        axes[-1, 1].set_xlabel("wavelength (Å)")
        fig.suptitle("Embedded synthetic spectra (PFS MR red arm, R = 5000) and their log g derivative", y=1.0)
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata={"Title": "spectra_examples"})


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def _model_styles(models) -> dict:
    return {m: {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}
            for i, m in enumerate(sorted(models))}


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


def draw_interval(ax, x, lo, hi, *, color, horizontal: bool = False, lw: float = 1.0, cap: bool = True) -> None:
    """Draw each interval [lo, hi] at position x (on the y axis; the x axis if ``horizontal``) as a
    line from its lower to its upper end, with caps. The ends are drawn, never point ± distance: a
    percentile-bootstrap interval need not contain its point estimate (a model with R² ≈ 0 can have
    an interval entirely below it), which matplotlib's ``yerr`` refuses. Non-finite ends are skipped."""
    x, lo, hi = (np.asarray(a, dtype=float).ravel() for a in (x, lo, hi))
    ok = np.isfinite(x) & np.isfinite(lo) & np.isfinite(hi)
    x, lo, hi = x[ok], np.minimum(lo[ok], hi[ok]), np.maximum(lo[ok], hi[ok])
    lines = ax.hlines if horizontal else ax.vlines
    lines(x, lo, hi, color=color, lw=lw)
    if cap:
        marker = "|" if horizontal else "_"
        for end in (lo, hi):
            xy = (end, x) if horizontal else (x, end)
            ax.plot(*xy, ls="none", marker=marker, ms=4, mew=lw, color=color)


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
        label = f"{model} (N = {int(g['n_train'].iloc[0]):,}" + (f"; band: {n_seeds} seeds ± std)" if n_seeds > 1
                                                                  else ")")
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


def log_n_axis(ax, ns) -> None:
    """Log x axis with a tick at each training-set size in ``ns`` (labelled 50,000, not 5x10^4)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(sorted(ns)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def plot_scaling(table, summary, pdf_path, png_path, metadata: dict | None = None) -> None:
    """Figure 3: pooled test R^2 vs training-set size per model (mean over seeds; bars: the bootstrap
    95 % interval, its ends averaged over seeds)."""
    styles = _model_styles(table["model"].unique())
    slopes = summary.set_index("model")["slope_r2_per_dex"] if len(summary) else {}
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        for model, g in table.groupby("model"):
            agg = g.groupby("n_train").agg(r2=("r2", "mean"), lo=("r2_lo", "mean"), hi=("r2_hi", "mean"))
            s = styles[model]
            slope = slopes.get(model, float("nan"))
            label = model + (f" (slope {slope:+.3f} per dex)" if np.isfinite(slope) else "")
            ax.plot(agg.index, agg["r2"], color=s["color"], marker=s["marker"], ms=4, label=label)
            draw_interval(ax, agg.index, agg["lo"], agg["hi"], color=s["color"])
        log_n_axis(ax, table["n_train"].unique())
        ax.set_xlabel("training spectra N")
        ax.set_ylabel("pooled test R² of log g (1 − MSE / Var prior)")
        ax.legend(frameon=False)
        ax.grid(alpha=0.3, which="both")
        save_figure(fig, pdf_path, png_path, metadata=metadata)


def plot_learning_curves(histories: dict, pdf_path, png_path, metadata: dict | None = None) -> None:
    """Validation R^2 and training loss per epoch of every ViT run."""
    with plt.rc_context(STYLE):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        for i, (rid, h) in enumerate(sorted(histories.items())):
            color = PALETTE[i % len(PALETTE)]
            a1.plot(h["epoch"], h["val_r2"], color=color, lw=1.2, label=rid)
            a2.plot(h["epoch"], h["train_loss"], color=color, lw=1.2)
        a1.set(xlabel="epoch", ylabel="validation R² of log g")
        a2.set(xlabel="epoch", ylabel="training loss (normalised labels)", yscale="log")
        a1.legend(frameon=False, fontsize=7)
        for a in (a1, a2):
            a.grid(alpha=0.3)
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)


def plot_pred_vs_true(predictions: dict, mags, pdf_path, png_path, label: str = "logg",
                      metadata: dict | None = None) -> None:
    """Predicted vs true log g per model (rows) at the given magnitudes (columns), sweep view."""
    models = sorted(predictions)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(models), len(mags), figsize=(2.6 * len(mags), 2.5 * len(models)),
                                 squeeze=False, sharex=True, sharey=True)
        for i, model in enumerate(models):
            df = predictions[model]
            for j, mag in enumerate(mags):
                ax = axes[i, j]
                sel = df[np.isclose(df["mag"], mag)]
                t, p = sel[f"true_{label}"], sel[f"pred_{label}"]
                ax.scatter(t, p, s=2, alpha=0.3, color=PALETTE[i % len(PALETTE)], rasterized=True)
                lo, hi = float(t.min()), float(t.max())
                ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8)
                if len(sel):
                    r2 = r2_of(t, p, r2_variance(df, label))  # the tables' definition, stored with the predictions
                    ax.set_title(f"{model}, mag {mag:g}: R² = {r2:.3f}", fontsize=8)
                if j == 0:
                    ax.set_ylabel(f"predicted {label}")
                if i == len(models) - 1:
                    ax.set_xlabel(f"true {label}")
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)
