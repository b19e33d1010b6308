"""Where the ViT looks (P2.1): integrated gradients, attention maps and attention rollout, and how
much of each falls on the gravity-sensitive lines of the forward model.

* Integrated gradients (Sundararajan et al. 2017) of the log g prediction (in dex) with respect
  to the input flux: IG_i = (x_i - b_i) * int_0^1 d f / d x_i (b + a (x - b)) da, the integral by
  Gauss-Legendre quadrature (the network is smooth: GELU, softmax, LayerNorm). Completeness,
  sum_i IG_i = f(x) - f(b), holds up to the quadrature error, which ``integrated_gradients``
  returns. The baseline ``continuum`` is a featureless spectrum (flux 1 everywhere; the files are
  normalised to their median), so the attribution says what the lines contribute.
* Attention rollout (Abnar & Zuidema 2020): per layer the head-averaged attention with the
  residual connection, 0.5 A + 0.5 I (rows renormalised), multiplied through the layers; the
  pooled token's row (CLS, or the mean over rows with mean pooling) gives each patch token's
  share, spread evenly over the token's pixels. Rows of the rollout sum to 1.
* Line statistics: per star group and spectral feature, the fraction of |attribution| within
  +-window of the feature's lines against the fraction of pixels there (chance), and the rank
  correlation of the attribution with |d flux / d logg| of the forward model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from specvit.physics.spectrum import marked_features

LOGG_FEATURES = ("Ca II", "Na I", "K I", "Mg I", "O I", "Pa", "TiO", "CN")
ALL_LINES = "all lines"
WHOLE_SPECTRUM = "whole spectrum"
TABLE_COLUMNS = ["group", "method", "feature", "window_A", "attribution_fraction", "pixel_fraction",
                 "enrichment", "corr_with_dflux_dlogg", "n_stars"]


# ----------------------------------------------------------------------------- the model as a function


def label_output(regressor, label: str = "logg"):
    """f(flux [B, P]) -> the predicted ``label`` [B] in physical units (dex), differentiable,
    for a fitted ``VitRegressor`` (the network's normalised output times the label scaler)."""
    if label not in regressor.labels:
        raise ValueError(f"the model predicts {list(regressor.labels)}, not {label!r}")
    i = regressor.labels.index(label)
    net = regressor.model.eval()
    scale, offset = float(regressor.scaler.scale[i]), float(regressor.scaler.offset[i])
    return lambda flux: net(flux)[:, i] * scale + offset


def baseline_spectra(kind: str, x: np.ndarray) -> np.ndarray:
    """The IG baseline for inputs ``x`` [B, P]: ``continuum`` (ones), ``zero`` or ``mean`` (mean spectrum)."""
    if kind == "continuum":
        return np.ones_like(x)
    if kind == "zero":
        return np.zeros_like(x)
    if kind == "mean":
        return np.broadcast_to(x.mean(axis=0, keepdims=True), x.shape).copy()
    raise ValueError(f"attribution baseline {kind!r} is not one of 'continuum', 'zero', 'mean'")


def integrated_gradients(f, x: torch.Tensor, baseline: torch.Tensor, steps: int = 32,
                         batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(IG [B, P], completeness error [B] = sum IG - (f(x) - f(baseline))) with ``steps``-point
    Gauss-Legendre quadrature of the path integral; f maps [B, P] -> [B]. Works in batches of
    ``batch_size`` stars, so memory does not grow with the number of stars."""
    if steps < 1:
        raise ValueError(f"integrated gradients need steps >= 1, got {steps}")
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (nodes + 1.0) / 2.0, weights / 2.0          # on [0, 1]
    x, baseline = x.float(), baseline.float()
    ig = torch.zeros_like(x)
    err = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], batch_size):
        xb, b = x[start:start + batch_size], baseline[start:start + batch_size]
        d = xb - b
        total = torch.zeros_like(d)
        for a, w in zip(alphas, weights):
            point = (b + float(a) * d).requires_grad_(True)
            grad, = torch.autograd.grad(f(point).sum(), point)
            total += float(w) * grad
        ig[start:start + batch_size] = total * d
        with torch.no_grad():
            err[start:start + batch_size] = ig[start:start + batch_size].sum(dim=1) - (f(xb) - f(b))
    return ig.detach(), err.detach()


@torch.no_grad()
def attention_maps(regressor, x: torch.Tensor) -> list[torch.Tensor]:
    """Per layer the attention weights [B, heads, S, S] of the fitted ViT (explicit softmax)."""
    return regressor.model.eval().attention_maps(x.float())


def attention_rollout(maps: list[torch.Tensor], residual: float = 0.5) -> torch.Tensor:
    """Rollout [B, S, S]: prod over layers (last first) of (1 - residual) mean_h A + residual I,
    each renormalised to rows summing to 1; the product of row-stochastic matrices is row-stochastic."""
    rollout = None
    for a in maps:
        a = a.double().mean(dim=1)
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = (1.0 - residual) * a + residual * eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def pooled_token_share(rollout: torch.Tensor, pooling: str) -> torch.Tensor:
    """Share of each patch token [B, T] in the pooled representation: the CLS row of the rollout
    without its CLS column (``cls``), or the mean over the rows (``mean``: every token is pooled)."""
    if pooling == "cls":
        return rollout[:, 0, 1:]
    return rollout.mean(dim=1)


def tokens_to_pixels(token_scores: np.ndarray, cfg) -> np.ndarray:
    """[B, T] token scores -> [B, n_pixels]: each token's score spread evenly over the pixels of its
    window (overlapping windows add up), the right padding cut off."""
    b = token_scores.shape[0]
    out = np.zeros((b, cfg.padded_length))
    for t in range(cfg.n_tokens):
        out[:, t * cfg.step:t * cfg.step + cfg.patch] += token_scores[:, t:t + 1] / cfg.patch
    return out[:, :cfg.n_pixels]


# ----------------------------------------------------------------------------- stars and lines


@dataclass(frozen=True)
class StarGroup:
    name: str
    teff: tuple[float, float]
    logg: tuple[float, float]

    def select(self, teff: np.ndarray, logg: np.ndarray) -> np.ndarray:
        """Stars with Teff and log g in the closed intervals (a star on a shared edge is in both groups)."""
        return (teff >= self.teff[0]) & (teff <= self.teff[1]) & (logg >= self.logg[0]) & (logg <= self.logg[1])


def star_groups(config: list[dict]) -> list[StarGroup]:
    """Groups from the config's ``attribution.groups`` ({name, teff: [lo, hi], logg: [lo, hi]})."""
    groups = []
    for i, g in enumerate(config):
        for key in ("teff", "logg"):
            lo, hi = g[key]
            if not lo < hi:
                raise ValueError(f"config key 'attribution.groups[{i}].{key}' ({g['name']}) needs lo < hi, got {g[key]}")
        groups.append(StarGroup(g["name"], tuple(map(float, g["teff"])), tuple(map(float, g["logg"]))))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"config key 'attribution.groups': names must be unique, got {names}")
    return groups


def feature_masks(wave: np.ndarray, window_a: float, features=LOGG_FEATURES) -> dict[str, np.ndarray]:
    """{feature: pixels within +-window_a of any of its lines (TiO/CN: band heads)}, plus their union
    ``all lines``; features with no line inside the wavelength range are left out."""
    marks = marked_features()
    masks = {}
    for name in features:
        centres = [w for label, w in marks if label == name]
        mask = np.zeros(wave.size, dtype=bool)
        for c in centres:
            mask |= np.abs(wave - c) <= window_a
        if mask.any():
            masks[name] = mask
    if masks:
        masks[ALL_LINES] = np.logical_or.reduce(list(masks.values()))
    return masks


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (rollout maps are constant across a token)."""
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation with average ranks for ties (NaN when either side is constant)."""
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(_average_ranks(a), _average_ranks(b))[0, 1])


def line_statistics(group: str, method: str, attribution: np.ndarray, dflux: np.ndarray | None,
                    masks: dict[str, np.ndarray], window_a: float, n_stars: int) -> list[dict]:
    """Rows of the line table for one group and method: ``attribution`` is the group's mean
    |attribution| per pixel [P], ``dflux`` its mean |d flux / d logg| [P] (None: not available).

    The correlation of a feature is taken over its window pixels; ``whole spectrum`` over all pixels."""
    attribution = np.abs(np.asarray(attribution, dtype=np.float64))
    total = attribution.sum()
    rows = []
    for feature, mask in {**masks, WHOLE_SPECTRUM: np.ones(attribution.size, dtype=bool)}.items():
        frac = float(attribution[mask].sum() / total) if total > 0 else float("nan")
        pix = float(mask.mean())
        corr = float("nan") if dflux is None else rank_correlation(attribution[mask], np.abs(dflux[mask]))
        rows.append({"group": group, "method": method, "feature": feature,
                     "window_A": float(window_a) if feature != WHOLE_SPECTRUM else float("nan"),
                     "attribution_fraction": frac, "pixel_fraction": pix, "enrichment": frac / pix,
                     "corr_with_dflux_dlogg": corr, "n_stars": int(n_stars)})
    return rows


def dflux_dlogg(labels: np.ndarray, wave: np.ndarray, params=None, batch_size: int = 128) -> np.ndarray:
    """|d flux / d logg| [N, P] of the forward model for labels [N, 5]: the log g column of the exact
    Jacobian (one forward-mode pass, float64; ``specvit.physics.fisher.jacobian`` computes all five)."""
    from torch.func import jvp

    from specvit.physics.labels import LOGG
    from specvit.physics.spectrum import SpectrumModel

    model = SpectrumModel(params, wave=wave).double()
    out = np.empty((labels.shape[0], wave.size))
    for start in range(0, labels.shape[0], batch_size):
        x = torch.as_tensor(labels[start:start + batch_size], dtype=torch.float64)
        tangent = torch.zeros_like(x)
        tangent[:, LOGG] = 1.0
        _, col = jvp(model, (x,), (tangent,))
        out[start:start + batch_size] = col.detach().abs().numpy()
    return out


def as_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


# ----------------------------------------------------------------------------- one trained run


def attribute_run(model_dir, test_path, groups: list[StarGroup], n_stars: int, mag: float, noise_level: float,
                  seed: int, steps: int = 32, baseline: str = "continuum", window_a: float = 10.0,
                  batch_size: int = 64, log=print) -> tuple[pd.DataFrame, dict]:
    """Attributions of the log g prediction of the ViT saved in ``model_dir`` on the first ``n_stars``
    test stars, re-noised at ``mag`` exactly as in the SNR sweep (same seed, same spectra).

    Returns (line table, arrays): per group (the configured ones and ``all``) the mean noise-free
    spectrum, mean |IG| and signed IG, the rollout share per pixel, the mean |d flux / d logg|
    (NaN without the five labels or a ``jacobian`` dataset), and the pooled token's attention per
    layer and head [layers, heads, tokens]."""
    from specvit.data.contract import read_arrays, read_labels, read_wave, validate_file
    from specvit.evaluation.predictions import view_inputs
    from specvit.studies.shifts import forward_params
    from specvit.training.factory import load_model
    from specvit.training.trainer import resolve_device

    reg = load_model(model_dir)
    if not hasattr(getattr(reg, "model", None), "attention_maps"):
        raise ValueError(f"{model_dir}: attribution needs a ViT run, got a {reg.name!r} model")
    info = validate_file(test_path, check_values=False)
    rows = np.arange(min(int(n_stars), info.n))
    wave = read_wave(test_path)
    labels = {k: v[rows] for k, v in read_labels(test_path).items()}
    flux, _ = read_arrays(test_path, rows)
    (_, x, _), = view_inputs(test_path, "sweep", [mag], noise_level, seed, rows)
    cfg = reg.model.cfg

    f = label_output(reg)
    device = resolve_device(reg.train_cfg.device)  # fp32 on the run's device (no autocast: exact gradients)
    reg.model.to(device)
    x_t, b_t = torch.from_numpy(x).to(device), torch.from_numpy(baseline_spectra(baseline, x)).to(device)
    ig, err = integrated_gradients(f, x_t, b_t, steps, batch_size)
    ig, err = ig.cpu(), err.cpu()
    gap = ig.sum(dim=1) - err  # f(x) - f(baseline)
    rel_err = float(err.abs().max() / gap.abs().max().clamp_min(1e-12))
    log(f"integrated gradients on {rows.size} stars, {steps} steps: max |sum IG - (f(x) - f(b))| = "
        f"{float(err.abs().max()):.2e} dex ({rel_err:.2e} of the largest gap)")
    share, cls_att = [], []
    for start in range(0, rows.size, batch_size):
        maps = [a.cpu() for a in attention_maps(reg, x_t[start:start + batch_size])]
        share.append(pooled_token_share(attention_rollout(maps), cfg.pooling).numpy())
        cls_att.append(np.stack([(a[:, :, 0, 1:] if cfg.pooling == "cls" else a.mean(dim=2)).double().numpy()
                                 for a in maps], axis=1))  # [B, layers, heads, T]
    share, cls_att = np.concatenate(share), np.concatenate(cls_att)
    rollout_px = tokens_to_pixels(share, cfg)

    dflux = None
    names5 = ("Teff", "logg", "M_H", "a_M", "C_M")
    if all(k in labels for k in names5):
        dflux = dflux_dlogg(np.stack([labels[k] for k in names5], axis=1).astype(np.float64), wave,
                            forward_params(info.attrs))
    elif info.has_jacobian and "logg" in info.jacobian_labels:
        import h5py
        with h5py.File(test_path, "r") as fh:
            dflux = np.abs(fh["jacobian"][rows, :, list(info.jacobian_labels).index("logg")])
    else:
        log("no five labels and no 'jacobian' dataset: the correlation with d flux / d logg is left out")

    masks = feature_masks(wave, window_a)
    selections = [("all", np.ones(rows.size, dtype=bool))]
    if "Teff" in labels:
        selections += [(g.name, g.select(labels["Teff"], labels["logg"])) for g in groups]
    else:
        log("the test file has no Teff: only the group 'all' is attributed")
    arrays = {k: [] for k in ("group", "n_stars", "mean_flux", "ig_abs", "ig_signed", "rollout", "dflux",
                              "cls_attention")}
    table = []
    for name, sel in selections:
        if not sel.any():
            log(f"group {name!r}: no star among the first {rows.size}; left out")
            continue
        means = {"ig_abs": np.abs(ig.numpy()[sel]).mean(0), "ig_signed": ig.numpy()[sel].mean(0),
                 "rollout": rollout_px[sel].mean(0),
                 "dflux": dflux[sel].mean(0) if dflux is not None else np.full(wave.size, np.nan)}
        d = None if dflux is None else means["dflux"]
        table += line_statistics(name, "integrated_gradients", means["ig_abs"], d, masks, window_a, sel.sum())
        table += line_statistics(name, "attention_rollout", means["rollout"], d, masks, window_a, sel.sum())
        for k, v in {**means, "group": name, "n_stars": int(sel.sum()), "mean_flux": flux[sel].mean(0),
                     "cls_attention": cls_att[sel].mean(0)}.items():
            arrays[k].append(v)
    out = {k: np.asarray(v) for k, v in arrays.items()}
    out.update(wave=wave, token_wave=_token_wave(wave, cfg), seq_len=np.int64(cfg.seq_len),
               completeness_error=err.numpy(), gap=gap.numpy(),
               mag=np.float64(mag), baseline=np.array(baseline), steps=np.int64(steps), window_a=np.float64(window_a))
    return as_table(table), out


def _token_wave(wave: np.ndarray, cfg) -> np.ndarray:
    from specvit.models.vit import token_wavelengths

    return token_wavelengths(wave, cfg)
