"""Figures. One style for all of them; every figure is written as PDF and PNG, atomically."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from specvit.io import atomic_path  # noqa: E402

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
    """Write ``fig`` to PDF and PNG through temporary names, so a killed job leaves no half file."""
    for path, fmt in ((pdf_path, "pdf"), (png_path, "png")):
        meta = {k: str(v) for k, v in (metadata or {}).items()} if fmt == "pdf" else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, metadata=meta, bbox_inches="tight")
    plt.close(fig)


def _mark_features(ax, features, ymax_label=True):
    for label, wave in features:
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
    from specvit.fisher import jacobian
    from specvit.forward import SpectrumModel, marked_features
    from specvit.labels import LOGG

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
            ax_f[0].set_ylabel("flux / median")
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
