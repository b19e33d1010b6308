"""Settings of the template fit (``specvit.models.template``), checked without torch: the workflow
checks every run group of the config when it reads it, and a dry run must not import torch."""

from __future__ import annotations

import numpy as np

from specvit.models.checks import check_labels
from specvit.physics.grid import ForwardParams
from specvit.physics.labels import LABEL_NAMES
from specvit.physics.nuisances import NuisanceSet


def template_settings(labels=("logg",), n_starts: int = 4, max_iter: int = 30, damping: float = 1e-3,
                      batch_size: int = 256, seed: int = 0, forward: dict | None = None,
                      nuisances: dict | None = None) -> tuple[tuple[str, ...], dict]:
    """The checked labels and settings of a template fit; ValueError names the bad setting,
    TypeError an unknown one. ``nuisances``: {"continuum_degree": d or None, "rv": bool} fitted with
    the labels ({} or None: none)."""
    labels = check_labels(labels)
    unknown = [lab for lab in labels if lab not in LABEL_NAMES]
    if unknown:
        raise ValueError(f"template fits {LABEL_NAMES}; cannot predict {unknown}")
    for name, v in (("n_starts", n_starts), ("max_iter", max_iter), ("batch_size", batch_size)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if not (np.isfinite(damping) and float(damping) > 0):
        raise ValueError(f"damping must be finite and > 0, got {damping}")
    forward = dict(forward or {})
    try:
        ForwardParams(**forward)
    except TypeError as e:
        raise ValueError(f"forward: not ForwardParams fields ({e})") from e
    nuisances = dict(nuisances or {})
    unknown = sorted(set(nuisances) - {"continuum_degree", "rv"})
    if unknown:
        raise ValueError(f"nuisances: unknown keys {unknown}; expected continuum_degree and/or rv")
    if nuisances:
        nuisances = {"continuum_degree": nuisances.get("continuum_degree"), "rv": bool(nuisances.get("rv", False))}
        NuisanceSet(**nuisances)  # a continuum degree >= 0 or a radial velocity
    return labels, {"n_starts": int(n_starts), "max_iter": int(max_iter), "damping": float(damping),
                    "batch_size": int(batch_size), "seed": int(seed), "forward": forward, "nuisances": nuisances}
