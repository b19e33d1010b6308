"""The line statistics of an attribution (``specvit.studies.attribution``): star groups, pixel
windows around the gravity-sensitive lines of the forward model, and per group and spectral feature
the fraction of |attribution| within +-window of the feature's lines against the fraction of
pixels there (chance), and the rank correlation of the attribution with |d flux / d logg| of the
forward model.
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
                raise ValueError(f"config key 'attribution.groups[{i}].{key}' ({g['name']}) needs lo < hi, "
                                 f"got {g[key]}")
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
