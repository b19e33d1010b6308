"""Figures of the ablations, in one style: the left panel is always the ablation's test R² per
cell (mean ± std over seeds, each seed a dot, read from the ablation's table and its long form),
the right panel what that ablation is about (gradient norms, learning curves, residual
correlations, or the train × test noise matrix)."""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from specvit.reporting.figures import PALETTE, STYLE, draw_interval, save_figure


def r2_panel(ax, table: pd.DataFrame, long: pd.DataFrame, by: str = "variant", hue: str | None = None) -> None:
    """Test R² per cell: mean ± std over seeds (bar) and each seed (dot); one row per value of ``by``."""
    cells = list(dict.fromkeys(table[by]))
    hues = list(dict.fromkeys(table[hue])) if hue else [None]
    height = 0.8 / len(hues)
    for j, h in enumerate(hues):
        t = table if h is None else table[table[hue] == h]
        lg = long if h is None else long[long[hue] == h]
        color = PALETTE[j % len(PALETTE)]
        labelled = False
        for i, cell in enumerate(cells):
            row = t[t[by] == cell]
            if row.empty:
                continue
            y = i + (j - (len(hues) - 1) / 2) * height
            mean, std = float(row["r2_mean"].iloc[0]), float(row["r2_std"].iloc[0])
            ax.plot(mean, y, "o", color=color, ms=4, label=h if (not labelled and h is not None) else None)
            if np.isfinite(std):  # one seed: no spread to draw
                draw_interval(ax, y, mean - std, mean + std, color=color, horizontal=True)
            labelled = True
            seeds = lg[lg[by] == cell]["r2"]
            ax.scatter(seeds, np.full(len(seeds), y), s=8, color=color, alpha=0.4, lw=0)
    ax.set_yticks(range(len(cells)), [str(c) for c in cells])
    ax.invert_yaxis()
    ax.set_xlabel("test R² of log g (pooled)" if hue is None else "test R² (pooled)")
    ax.grid(alpha=0.3, axis="x")
    if hue:
        ax.legend(frameon=False, fontsize=7)


def _histories_by_variant(histories: dict[str, pd.DataFrame], variants: dict[str, str]) -> dict[str, list]:
    out: dict[str, list] = {}
    for rid, h in histories.items():
        out.setdefault(variants[rid], []).append(h)
    return out


def curve_panel(ax, histories, variants, column: str, ylabel: str, log: bool = False) -> None:
    """``column`` of history.csv per epoch: mean over seeds per variant, the seeds' range as a band."""
    for i, (variant, hs) in enumerate(_histories_by_variant(histories, variants).items()):
        epochs = hs[0]["epoch"].to_numpy()
        n = min(len(h) for h in hs)
        values = np.vstack([h[column].to_numpy(float)[:n] for h in hs])
        color = PALETTE[i % len(PALETTE)]
        ls = "-" if i < len(PALETTE) else "--"
        ax.plot(epochs[:n], np.nanmean(values, axis=0), color=color, ls=ls, lw=1.2, label=variant)
        ax.fill_between(epochs[:n], np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=color, alpha=0.15,
                        lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=6, ncol=2)


def matrix_panel(ax, matrix: pd.DataFrame, title: str, fmt: str = "{:.2f}", vmin=None, vmax=None, cmap="viridis"):
    im = ax.imshow(matrix.to_numpy(float), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(matrix.shape[1]), [f"{c:g}" if isinstance(c, float) else str(c) for c in matrix.columns])
    ax.set_yticks(range(matrix.shape[0]), [f"{c:g}" if isinstance(c, float) else str(c) for c in matrix.index])
    for (i, j), v in np.ndenumerate(matrix.to_numpy(float)):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                color="white" if (vmax is not None and v < (vmin + vmax) / 2) else "black")
    ax.set_title(title)
    return im


def init_panel(ax, init: pd.DataFrame) -> None:
    """Gradient norm at the initial weights per variant (tokenizer and transformer blocks), mean ± std over seeds."""
    y = np.arange(len(init))
    for k, (part, color) in enumerate((("tokenizer", PALETTE[1]), ("blocks", PALETTE[0]))):
        mean, std = init[f"grad_norm_{part}_mean"].to_numpy(), init[f"grad_norm_{part}_std"].fillna(0).to_numpy()
        lower = mean - np.minimum(std, 0.9 * mean)  # the log axis cannot show mean - std <= 0
        ax.plot(mean, y + (k - 0.5) * 0.3, "s", color=color, ms=4, label=part)
        draw_interval(ax, y + (k - 0.5) * 0.3, lower, mean + std, color=color, horizontal=True)
    ax.set_yticks(y, init["variant"])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(f"gradient norm at init, mean ± std of {int(init['n_seeds'].iloc[0])} seeds")
    ax.legend(frameon=False, fontsize=7)
    ax.grid(alpha=0.3, axis="x")


@dataclass(frozen=True, eq=False)
class AblationResults:
    """What the figure of one ablation shows: its table and long form (the left panel), and what
    the right panel of its kind needs: the runs' ``histories`` {run_id: history.csv} with each
    run's variant ``variants`` {run_id: variant} (tokenization, loss_norm), the residual correlation
    matrix and its title (multitask), and the gradient norms at init ``init`` (a third panel)."""

    table: pd.DataFrame
    long: pd.DataFrame
    histories: dict | None = None
    variants: dict | None = None
    residual_corr: pd.DataFrame | None = None
    corr_title: str = ""
    init: pd.DataFrame | None = None


def plot_ablation(ablation: str, results: AblationResults, pdf_path, png_path, *, metadata: dict | None = None):
    """The figure of one ablation (see the module doc)."""
    table, long, histories, variants = results.table, results.long, results.histories, results.variants
    residual_corr, corr_title, init = results.residual_corr, results.corr_title, results.init
    with plt.rc_context(STYLE):
        if ablation == "robustness":
            models = list(dict.fromkeys(table["model"]))
            fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models) + 0.8, 3.2), squeeze=False,
                                     layout="constrained")
            lo, hi = float(np.nanmin(table["r2_mean"])), float(np.nanmax(table["r2_mean"]))
            for i, (ax, model) in enumerate(zip(axes[0], models)):
                m = table[table["model"] == model].pivot(index="train_noise", columns="test_noise", values="r2_mean")
                im = matrix_panel(ax, m, f"{model}", vmin=lo, vmax=hi)
                ax.set_xlabel("test noise level")
                if i == 0:
                    ax.set_ylabel("training noise level")
            fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="test R² of log g (mean over seeds)")
        else:
            n_rows = table["variant" if "variant" in table else "setting"].nunique()
            n_panels = 3 if init is not None else 2
            fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 0.3 * n_rows + 3.0))
            left, right = axes[0], axes[1]
            if init is not None:
                init_panel(axes[2], init)
            if ablation == "multitask":
                r2_panel(left, table, long, by="label", hue="setting")
                matrix_panel(right, residual_corr, corr_title, vmin=-1, vmax=1, cmap="RdBu_r")
            else:
                r2_panel(left, table, long)
                if ablation == "tokenization":
                    curve_panel(right, histories, variants, "grad_norm_median",
                                "gradient norm (epoch median, before clipping)", log=True)
                elif ablation == "loss_norm":
                    curve_panel(right, histories, variants, "val_r2", "validation R² of log g")
                else:
                    r2_panel(right, table.assign(r2_mean=table["mae_mean"], r2_std=table["mae_std"]),
                             long.assign(r2=long["mae"]))
                    right.set_xlabel("test MAE of log g (dex)")
                    right.set_yticks([])
            fig.tight_layout()
        save_figure(fig, pdf_path, png_path, metadata=metadata)
