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
