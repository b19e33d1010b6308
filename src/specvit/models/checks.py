"""Input checks shared by every model: label lists, spectra matrices and label dicts, each
refused with one message that names the argument, what is wrong and what was expected."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def check_labels(labels) -> tuple[str, ...]:
    """Normalise a label list to a non-empty tuple of distinct strings (a bare string is one label)."""
    if isinstance(labels, str):
        labels = (labels,)
    labels = tuple(labels)
    if not labels:
        raise ValueError("labels must name at least one label")
    bad = [lab for lab in labels if not isinstance(lab, str) or not lab]
    if bad:
        raise ValueError(f"labels must be non-empty strings, got {bad!r}")
    dup = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dup:
        raise ValueError(f"labels must be distinct; repeated: {dup}")
    return labels


def _first_nonfinite(x: np.ndarray, block_rows: int = 4096) -> tuple[int, int, int]:
    """(count, first row, first column) of the non-finite entries of 2-D ``x``; count 0 when all finite."""
    count, first = 0, None
    for start in range(0, x.shape[0], block_rows):
        bad = ~np.isfinite(x[start:start + block_rows])
        c = int(bad.sum())
        if c:
            if first is None:
                r, col = np.argwhere(bad)[0]
                first = (start + int(r), int(col))
            count += c
    return (count, *first) if count else (0, -1, -1)


def check_x(x, name: str = "x", n_features: int | None = None) -> np.ndarray:
    """Validate a spectra matrix: 2-D [N, P], floating dtype, N >= 1, all finite, P == n_features if given.

    Returns ``x`` itself as an ndarray (no copy for an ndarray input). The finiteness check runs as
    one float64-accumulated sum (NaN and inf propagate; float32 input cannot overflow it), so a
    1M x 4096 matrix is not copied; only on failure is the first bad entry located.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N spectra, P pixels]; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point array (float32 spectra); got dtype {x.dtype}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"{name} has {x.shape[1]} features (pixels) per row; the model was fit on {n_features}")
    total = np.sum(x, dtype=np.float64)
    if not np.isfinite(total):
        count, r, c = _first_nonfinite(x)
        if count:
            raise ValueError(f"{name} has {count} non-finite value(s) (NaN or inf), first at row {r}, "
                             f"column {c} (value {x[r, c]}); spectra must be finite")
    return x


def check_y(y, labels: tuple[str, ...], n: int, name: str = "y") -> dict[str, np.ndarray]:
    """Validate a label dict: every requested label present, 1-D, length ``n``, numeric, finite.

    Returns ``{label: float64 [n]}`` for the requested labels only (extra keys are ignored).
    """
    if not isinstance(y, Mapping):
        raise ValueError(f"{name} must be a dict {{label name: array [N]}}; got {type(y).__name__}")
    missing = [lab for lab in labels if lab not in y]
    if missing:
        raise ValueError(f"{name} is missing label(s) {missing} that the model predicts; "
                         f"it has {sorted(map(str, y))}")
    out = {}
    for lab in labels:
        v = np.asarray(y[lab])
        if v.ndim != 1:
            raise ValueError(f"{name}[{lab!r}] must be a 1-D array [N]; got shape {v.shape}")
        if v.shape[0] != n:
            raise ValueError(f"{name}[{lab!r}] has {v.shape[0]} values but x has {n} rows")
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise ValueError(f"{name}[{lab!r}] must be numeric; got dtype {v.dtype}")
        v = v.astype(np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            raise ValueError(f"{name}[{lab!r}] has {int(bad.sum())} non-finite value(s), "
                             f"first at index {int(np.flatnonzero(bad)[0])}")
        out[lab] = v
    return out


def check_fit_inputs(labels, x_train, y_train, x_val, y_val):
    """Validate the arguments of ``fit``; returns (x_train, y_train, x_val, y_val) with y as float64 dicts."""
    x_train = check_x(x_train, "x_train")
    y_train = check_y(y_train, labels, x_train.shape[0], "y_train")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        x_val = check_x(x_val, "x_val", n_features=x_train.shape[1])
        y_val = check_y(y_val, labels, x_val.shape[0], "y_val")
    return x_train, y_train, x_val, y_val
