"""Where the ViT looks (P2.1): integrated gradients, attention maps and attention rollout, and how
much of each falls on the gravity-sensitive lines of the forward model.

* Integrated gradients (Sundararajan et al. 2017) of the log g prediction (in dex) with respect
  to the input flux: IG_i = (x_i - b_i) * int_0^1 d f / d x_i (b + a (x - b)) da, the integral by
  Gauss-Legendre quadrature (the network is smooth: GELU, softmax, LayerNorm). Completeness,
  sum_i IG_i = f(x) - f(b), holds up to the quadrature error, which ``integrated_gradients``
  returns. The baseline ``continuum`` is a featureless spectrum (flux 1 everywhere; the synthetic
  spectra are normalised to mean 1), so the attribution says what the lines contribute.
* Attention rollout (Abnar & Zuidema 2020): per layer the head-averaged attention with the
  residual connection, 0.5 A + 0.5 I (rows renormalised), multiplied through the layers; the
  pooled token's row (CLS, or the mean over rows with mean pooling) gives each patch token's
  share, spread evenly over the token's pixels. Rows of the rollout sum to 1.
* Line statistics (``specvit.studies.attribution_lines``): per star group and spectral feature,
  the fraction of |attribution| within +-window of the feature's lines against the fraction of
  pixels there (chance), and the rank correlation of the attribution with |d flux / d logg| of
  the forward model.

``attribute_run`` does all of it for one trained run, as the settings of ``AttributionSettings``
(config ``attribution``) say.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from specvit.studies.attribution_lines import (
    StarGroup,
    as_table,
    dflux_dlogg,
    feature_masks,
    line_statistics,
    star_groups,
)

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


# ----------------------------------------------------------------------------- one trained run


@dataclass(frozen=True)
class AttributionSettings:
    """What ``attribute_run`` attributes (config ``attribution``): the first ``n_stars`` test stars
    re-noised at ``mag``, per star group (and all together); integrated gradients with ``steps``
    quadrature points from the ``baseline`` spectrum, ``batch_size`` stars at a time; line windows
    of +-``window_a`` Å."""

    n_stars: int
    mag: float
    groups: tuple[StarGroup, ...] = ()
    steps: int = 32
    baseline: str = "continuum"
    window_a: float = 10.0
    batch_size: int = 64

    @classmethod
    def from_config(cls, cfg: dict) -> AttributionSettings:
        """From the config's ``attribution`` section (its ``run`` is picked by the workflow)."""
        return cls(n_stars=cfg["n_stars"], mag=cfg["mag"], groups=tuple(star_groups(cfg["groups"])),
                   steps=cfg["ig_steps"], baseline=cfg["baseline"], window_a=cfg["window_A"])


def attribute_run(model_dir, test_path, settings: AttributionSettings, *, noise_level: float, seed: int,
                  log=print) -> tuple[pd.DataFrame, dict]:
    """Attributions of the log g prediction of the ViT saved in ``model_dir`` on the first
    ``settings.n_stars`` test stars, re-noised at ``settings.mag`` exactly as in the SNR sweep
    (``noise_level`` and ``seed`` of the sweep: the same spectra).

    Returns (line table, arrays): per group (the configured ones and ``all``) the mean noise-free
    spectrum, mean |IG| and signed IG, the rollout share per pixel, the mean |d flux / d logg|
    (NaN without the five labels or a ``jacobian`` dataset), and the pooled token's attention per
    layer and head [layers, heads, tokens]."""
    from specvit.data.contract import read_arrays, read_labels, read_wave, validate_file
    from specvit.evaluation.predictions import view_inputs
    from specvit.training.factory import load_model

    s = settings
    reg = load_model(model_dir)
    if not hasattr(getattr(reg, "model", None), "attention_maps"):
        raise ValueError(f"{model_dir}: attribution needs a ViT run, got a {reg.name!r} model")
    info = validate_file(test_path, check_values=False)
    rows = np.arange(min(int(s.n_stars), info.n))
    wave = read_wave(test_path)
    labels = {k: v[rows] for k, v in read_labels(test_path).items()}
    flux, _ = read_arrays(test_path, rows)
    (_, x, _), = view_inputs(test_path, "sweep", [s.mag], noise_level, seed, rows)
    cfg = reg.model.cfg

    x_t, ig, err = _integrated_gradients(reg, x, s, log)
    gap = ig.sum(dim=1) - err  # f(x) - f(baseline)
    share, cls_att = _attention(reg, x_t, s.batch_size)
    rollout_px = tokens_to_pixels(share, cfg)
    dflux = _dflux_dlogg(test_path, info, rows, labels, wave, log)
    table, arrays = _per_group(s, labels, log, flux=flux, ig=ig.numpy(), rollout_px=rollout_px, dflux=dflux,
                               cls_att=cls_att, wave=wave)
    arrays.update(wave=wave, token_wave=_token_wave(wave, cfg), seq_len=np.int64(cfg.seq_len),
                  completeness_error=err.numpy(), gap=gap.numpy(), mag=np.float64(s.mag),
                  baseline=np.array(s.baseline), steps=np.int64(s.steps), window_a=np.float64(s.window_a))
    return as_table(table), arrays


def _integrated_gradients(reg, x: np.ndarray, s: AttributionSettings, log):
    """(x on the model's device, IG [B, P], completeness error [B]); both results on the CPU."""
    from specvit.training.device import resolve_device

    f = label_output(reg)
    device = resolve_device(reg.train_cfg.device)  # fp32 on the run's device (no autocast: exact gradients)
    reg.model.to(device)
    x_t, b_t = torch.from_numpy(x).to(device), torch.from_numpy(baseline_spectra(s.baseline, x)).to(device)
    ig, err = integrated_gradients(f, x_t, b_t, s.steps, s.batch_size)
    ig, err = ig.cpu(), err.cpu()
    gap = ig.sum(dim=1) - err  # f(x) - f(baseline)
    rel_err = float(err.abs().max() / gap.abs().max().clamp_min(1e-12))
    log(f"integrated gradients on {x.shape[0]} stars, {s.steps} steps: max |sum IG - (f(x) - f(b))| = "
        f"{float(err.abs().max()):.2e} dex ({rel_err:.2e} of the largest gap)")
    return x_t, ig, err


def _attention(reg, x_t: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(rollout share of each patch token [B, T], the pooled token's attention [B, layers, heads, T])."""
    cfg = reg.model.cfg
    share, cls_att = [], []
    for start in range(0, x_t.shape[0], batch_size):
        maps = [a.cpu() for a in attention_maps(reg, x_t[start:start + batch_size])]
        share.append(pooled_token_share(attention_rollout(maps), cfg.pooling).numpy())
        cls_att.append(np.stack([(a[:, :, 0, 1:] if cfg.pooling == "cls" else a.mean(dim=2)).double().numpy()
                                 for a in maps], axis=1))  # [B, layers, heads, T]
    return np.concatenate(share), np.concatenate(cls_att)


def _dflux_dlogg(test_path, info, rows: np.ndarray, labels: dict, wave: np.ndarray, log) -> np.ndarray | None:
    """|d flux / d logg| [B, P] of the stars: from the forward model with the five labels, else from
    the file's ``jacobian``; None without either."""
    from specvit.studies.shifts import forward_params

    names5 = ("Teff", "logg", "M_H", "a_M", "C_M")
    if all(k in labels for k in names5):
        return dflux_dlogg(np.stack([labels[k] for k in names5], axis=1).astype(np.float64), wave,
                           forward_params(info.attrs))
    if info.has_jacobian and "logg" in info.jacobian_labels:
        import h5py
        with h5py.File(test_path, "r") as fh:
            return np.abs(fh["jacobian"][rows, :, list(info.jacobian_labels).index("logg")])
    log("no five labels and no 'jacobian' dataset: the correlation with d flux / d logg is left out")
    return None


def _per_group(s: AttributionSettings, labels: dict, log, *, flux, ig, rollout_px, dflux, cls_att,
               wave) -> tuple[list[dict], dict]:
    """(line table rows, arrays) of every star group from the per-star noise-free ``flux``, ``ig``,
    ``rollout_px``, ``dflux`` (or None) and ``cls_att``."""
    n = flux.shape[0]
    masks = feature_masks(wave, s.window_a)
    selections = [("all", np.ones(n, dtype=bool))]
    if "Teff" in labels:
        selections += [(g.name, g.select(labels["Teff"], labels["logg"])) for g in s.groups]
    else:
        log("the test file has no Teff: only the group 'all' is attributed")
    arrays = {k: [] for k in ("group", "n_stars", "mean_flux", "ig_abs", "ig_signed", "rollout", "dflux",
                              "cls_attention")}
    table = []
    for name, sel in selections:
        if not sel.any():
            log(f"group {name!r}: no star among the first {n}; left out")
            continue
        means = {"ig_abs": np.abs(ig[sel]).mean(0), "ig_signed": ig[sel].mean(0),
                 "rollout": rollout_px[sel].mean(0),
                 "dflux": dflux[sel].mean(0) if dflux is not None else np.full(wave.size, np.nan)}
        d = None if dflux is None else means["dflux"]
        table += line_statistics(name, "integrated_gradients", means["ig_abs"], d, masks, s.window_a, sel.sum())
        table += line_statistics(name, "attention_rollout", means["rollout"], d, masks, s.window_a, sel.sum())
        for k, v in {**means, "group": name, "n_stars": int(sel.sum()), "mean_flux": flux[sel].mean(0),
                     "cls_attention": cls_att[sel].mean(0)}.items():
            arrays[k].append(v)
    return table, {k: np.asarray(v) for k, v in arrays.items()}


def _token_wave(wave: np.ndarray, cfg) -> np.ndarray:
    from specvit.models.positional import token_wavelengths

    return token_wavelengths(wave, cfg)
