"""Figures of the studies: attribution (P2.1), pre-train -> fine-tune (P2.2), domain shift (P2.3)
and the nuisance study. Same style and writer as ``specvit.reporting.figures``; every number drawn is
read from the tables and arrays their rules wrote."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from specvit.reporting.figures import PALETTE, STYLE, _mark_features, draw_interval, log_n_axis, save_figure

MARKERS = ["o", "s", "^", "D", "v", "P"]


def _norm(a: np.ndarray) -> np.ndarray:
    """Scaled to a peak of 1 (for overlaying curves of different units)."""
    peak = np.nanmax(np.abs(a)) if np.isfinite(a).any() else 0.0
    return a / peak if peak > 0 else a


def _smooth(a: np.ndarray, width: int) -> np.ndarray:
    """Running mean over ``width`` pixels (for display only; the table uses the raw attributions)."""
    if width <= 1:
        return a
    return np.convolve(a, np.ones(width) / width, mode="same")


def plot_attribution(arrays: dict, table: pd.DataFrame, pdf_path, png_path, smooth_px: int = 5,
                     metadata: dict | None = None) -> None:
    """Per star group: the mean spectrum with the line list marked, and below it |IG|, the attention
    rollout and |d flux / d logg| of the forward model (each scaled to its peak), with the share of
    |IG| on all gravity-sensitive lines against chance in the title."""
    from specvit.physics.spectrum import marked_features

    wave, groups = arrays["wave"], list(arrays["group"])
    features = marked_features()
    stats = table[(table["method"] == "integrated_gradients") & (table["feature"] == "all lines")].set_index("group")
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2 * len(groups), 1, figsize=(11, 2.6 * len(groups) + 0.6), sharex=True,
                                 gridspec_kw={"height_ratios": [1.2, 1] * len(groups)})
        for i, g in enumerate(groups):
            ax_s, ax_a = axes[2 * i], axes[2 * i + 1]
            ax_s.plot(wave, arrays["mean_flux"][i], color="0.2", lw=0.6)
            _mark_features(ax_s, features, ymax_label=(i == 0))
            title = f"{g} ({int(arrays['n_stars'][i])} stars)"
            if g in stats.index:
                r = stats.loc[g]
                title += (f": {100 * r['attribution_fraction']:.0f} % of |IG| within ±{r['window_A']:g} Å of the "
                          f"lines, on {100 * r['pixel_fraction']:.0f} % of the pixels")
            ax_s.set_title(title, loc="left")
            ax_s.set_ylabel("mean flux")
            ax_a.plot(wave, _norm(_smooth(arrays["ig_abs"][i], smooth_px)), color=PALETTE[1], lw=0.7,
                      label=f"|integrated gradients| (running mean, {smooth_px} px)")
            # the rollout is a share per pixel: drawn relative to uniform attention, on its own axis
            rel = arrays["rollout"][i] * wave.size / arrays["rollout"][i].sum()
            ax_r = ax_a.twinx()
            ax_r.plot(wave, rel, color=PALETTE[0], lw=1.0)
            ax_r.axhline(1.0, color=PALETTE[0], lw=0.5, ls=":")
            ax_r.set_ylabel("rollout / uniform", color=PALETTE[0])
            ax_r.ticklabel_format(axis="y", useOffset=False)
            ax_r.spines["right"].set_visible(True)
            ax_a.plot([], [], color=PALETTE[0], lw=1.0, label="attention rollout (right axis)")
            if np.isfinite(arrays["dflux"][i]).any():
                ax_a.plot(wave, _norm(arrays["dflux"][i]), color="0.5", lw=0.6, label="|∂flux/∂log g| (forward model)")
            _mark_features(ax_a, features, ymax_label=False)
            ax_a.set_ylabel("scaled to peak")
            ax_a.set_ylim(0, 1.05)
            if i == 0:
                ax_a.legend(frameon=False, ncol=3, loc="upper left", fontsize=7)
        axes[-1].set_xlabel("wavelength (Å)")
        axes[-1].set_xlim(wave[0], wave[-1])
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)


def plot_attention_heads(arrays: dict, pdf_path, png_path, metadata: dict | None = None) -> None:
    """Attention of the pooled token to each patch token, per layer (rows) and head (colours),
    averaged over the stars of group ``all``, against the token's central wavelength."""
    from specvit.physics.spectrum import marked_features

    att = arrays["cls_attention"][0]            # group 'all': [layers, heads, tokens]
    lam = arrays["token_wave"]
    layers, heads = att.shape[:2]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(layers, 1, figsize=(11, 1.8 * layers + 0.6), sharex=True, squeeze=False)
        for layer in range(layers):
            ax = axes[layer, 0]
            for h in range(heads):
                ax.plot(lam, att[layer, h], lw=0.9, color=PALETTE[h % len(PALETTE)], label=f"head {h + 1}")
            ax.axhline(1.0 / int(arrays["seq_len"]), color="0.6", lw=0.6, ls="--")
            _mark_features(ax, marked_features(), ymax_label=(layer == 0))
            ax.set_ylabel(f"layer {layer + 1}\nattention")
        axes[0, 0].legend(frameon=False, ncol=min(heads, 8), fontsize=7, loc="upper right")
        axes[-1, 0].set_xlabel("token central wavelength (Å); dashed: uniform attention")
        axes[-1, 0].set_xlim(arrays["wave"][0], arrays["wave"][-1])
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)


def plot_pretrain_finetune(table: pd.DataFrame, pdf_path, png_path, metadata: dict | None = None) -> None:
    """Test R^2 and MAE of log g vs fine-tuning set size: fine-tuned from the pre-trained model vs from
    scratch with the same budget (mean over seeds, range as bars); the pre-trained model itself,
    without fine-tuning, as a horizontal line."""
    small = table[table["n_finetune"] > 0]
    pre = table[table["setting"] == "pretrained"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, metric, label in ((axes[0], "r2", "test R² of log g"), (axes[1], "mae", "test MAE of log g (dex)")):
            for i, (setting, g) in enumerate(small.groupby("setting", sort=True)):
                agg = g.groupby("n_finetune")[metric].agg(["mean", "min", "max"])
                ax.plot(agg.index, agg["mean"], color=PALETTE[i], marker=MARKERS[i], ms=4, label=setting)
                draw_interval(ax, agg.index, agg["min"], agg["max"], color=PALETTE[i])
            if len(pre):
                ax.axhline(pre[metric].mean(), color="0.4", ls="--", lw=1,
                           label=f"pre-trained, no fine-tune (N = {int(pre['n_pretrain'].iloc[0]):,})")
            log_n_axis(ax, small["n_finetune"].unique())
            ax.set_xlabel("fine-tuning spectra N")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which="both")
        axes[0].legend(frameon=False, fontsize=7)
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)


def plot_domain_shift(table: pd.DataFrame, units: dict, pdf_path, png_path, metadata: dict | None = None) -> None:
    """Test R^2 of log g vs severity, one panel per shift; the fine-tuned ViT as a star at the
    severity it was fine-tuned for; external test files as a last panel of bars."""
    from specvit.studies.domain_shift import FINETUNE_SUFFIX

    ext = table[table["shift"].str.startswith("external:")]
    shifts = [s for s in table["shift"].unique() if not s.startswith("external:")]
    base_models = sorted(m for m in table["model"].unique() if not m.endswith(FINETUNE_SUFFIX))
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(base_models)}
    n = len(shifts) + (1 if len(ext) else 0)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, n, figsize=(2.9 * n, 3.2), sharey=True, squeeze=False)
        for ax, shift in zip(axes[0], shifts):
            t = table[table["shift"] == shift]
            for i, m in enumerate(base_models):
                g = t[t["model"] == m].sort_values("severity")
                ax.plot(g["severity"], g["r2"], color=colors[m], marker=MARKERS[i], ms=4, lw=1.2, label=m)
                ft = t[t["model"] == m + FINETUNE_SUFFIX]
                if len(ft):
                    ax.plot(ft["severity"], ft["r2"], color=colors[m], marker="*", ms=11, ls="none",
                            label=m + FINETUNE_SUFFIX)
            ax.set_title(shift)
            ax.set_xlabel(f"severity ({units.get(shift, '')})")
            ax.grid(alpha=0.3)
        if len(ext):
            ax = axes[0, -1]
            labels = sorted(ext["shift"].unique())
            width = 0.8 / max(len(base_models), 1)
            for i, m in enumerate(base_models):
                vals = [ext[(ext["shift"] == s) & (ext["model"] == m)]["r2"].mean() for s in labels]
                ax.bar(np.arange(len(labels)) + i * width, vals, width, color=colors[m])
            ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, [s.split(":", 1)[1] for s in labels], rotation=30)
            ax.set_title("external test files")
        axes[0, 0].set_ylabel("test R² of log g (pooled view)")
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.08))
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)


def _nuisance_panel(ax, part: pd.DataFrame, styles: dict) -> None:
    """One case of the nuisance study: each model's sweep R² with its interval, and the ceilings."""
    ceil = part[part["source"] == "ceiling"]
    med = ceil[ceil["name"] == "median"].sort_values("snr_median")
    if len(med):
        ax.fill_between(med["snr_median"], med["r2_lo"], med["r2_hi"], color="0.88", lw=0)
        ax.plot(med["snr_median"], med["r2"], color="0.3", lw=1.5, label="CRLB ceiling (median star)")
    bayes = ceil[ceil["name"] == "bayes"].sort_values("snr_median")
    if len(bayes):
        ax.plot(bayes["snr_median"], bayes["r2"], color="0.3", lw=1.5, ls="--",
                label="Bayes approximation (Gaussian surrogate)")
    sim = ceil[ceil["name"] == "mmse_sim"]
    if len(sim):
        ax.plot(sim["snr_median"], sim["r2"], ls="none", color="0.1", marker="D", mfc="white", ms=4,
                label="Bayes MMSE, simulated (estimate)")
        draw_interval(ax, sim["snr_median"], sim["r2_lo"], sim["r2_hi"], color="0.1")
    for name, g in part[part["source"] == "model"].groupby("name"):
        g = g.sort_values("snr_median")
        ax.plot(g["snr_median"], g["r2"], ms=4, lw=1.2, **styles[name],
                label=f"{name} (N = {int(g['n_train'].iloc[0]):,})")
        draw_interval(ax, g["snr_median"], g["r2_lo"], g["r2_hi"], color=styles[name]["color"])
    ax.set_xscale("log")
    ax.set_xlabel("median SNR per pixel")
    ax.grid(alpha=0.3, which="both")
    if not len(ceil):
        ax.text(0.5, 0.02, "no ceiling of these dims in ceiling.csv", transform=ax.transAxes, ha="center",
                fontsize=7, color="0.4")


def plot_nuisance_study(table: pd.DataFrame, pdf_path, png_path, metadata: dict | None = None) -> None:
    """R² of log g vs SNR of the models on clean data (left) and on data with nuisances (right), each
    against the ceilings of the same assumptions (``specvit.studies.nuisance``)."""
    from specvit.physics.nuisances import describe_dims

    names = sorted(table.loc[table["source"] == "model", "name"].unique())
    styles = {n: {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]} for i, n in enumerate(names)}
    models = table[table["source"] == "model"]
    lo = min(0.0, float(models["r2"].min()) - 0.05) if len(models) else 0.0
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
        for ax, case in zip(axes, ("clean", "nuisance")):
            part = table[table["case"] == case]
            dims = part["dims"].iloc[0] if len(part) else ""
            _nuisance_panel(ax, part, styles)
            ax.set_title(f"{'clean spectra' if case == 'clean' else 'spectra with nuisances'}: "
                         f"ceiling {describe_dims(dims)}" if dims else case, loc="left", fontsize=8)
            ax.legend(loc="lower right", frameon=False, fontsize=7)
        axes[0].set_ylabel("test R² of log g")
        axes[0].set_ylim(max(lo, -1.0), 1.02)
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)


def plot_augmentation(table: pd.DataFrame, slopes: pd.DataFrame, pdf_path, png_path,
                      metadata: dict | None = None) -> None:
    """The noise-augmentation study: pooled test R^2 vs N per model group (one panel each), the arm with
    its noise augmentation solid, without it dashed (bootstrap 95 % intervals drawn as their ends),
    each arm's slope per dex of N in the legend."""
    groups = list(dict.fromkeys(table["group"]))
    slope_of = slopes.set_index("group") if len(slopes) else None
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(groups), figsize=(4.4 * len(groups), 3.6), sharey=True, squeeze=False)
        for i, (ax, group) in enumerate(zip(axes[0], groups)):
            for aug, g in table[table["group"] == group].groupby("augmented", sort=False):
                g = g.sort_values("n_train")
                key = "slope_augmented" if aug else "slope_unaugmented"
                slope = float(slope_of.loc[group, key]) if slope_of is not None else float("nan")
                color = PALETTE[i % len(PALETTE)] if aug else "0.35"
                x = g["n_train"] * (1.02 if aug else 0.98)  # the two arms' bars side by side
                ax.plot(x, g["r2"], color=color, ls="-" if aug else "--", marker=MARKERS[int(aug)], ms=4,
                        label=f"{g['arm'].iloc[0]} (slope {slope:+.3f} per dex)")
                draw_interval(ax, x, g["r2_lo"], g["r2_hi"], color=color)
            log_n_axis(ax, table["n_train"].unique())
            ax.set_title(f"{group} ({table[table['group'] == group]['model'].iloc[0]})")
            ax.set_xlabel("training spectra N")
            ax.grid(alpha=0.3, which="both")
            ax.legend(frameon=False, fontsize=7)
        axes[0, 0].set_ylabel("pooled test R² of log g (1 − MSE / Var prior)")
        fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)
