"""Training subsets: nested row indices of the training pool, one .npy file per training-set size."""
from __future__ import annotations

import operator
from pathlib import Path

import numpy as np

from specvit.data.contract import row_selection
from specvit.runtime.io import atomic_path


def make_nested_subsets(n_pool: int, sizes, seed: int, source=None) -> dict[int, np.ndarray]:
    """Sorted int64 row indices for each training-set size, from one seeded permutation of the pool.

    Subset N is the first N entries of the permutation, so every smaller subset is contained in
    every larger one: a learning curve then measures more data, not different data.
    """
    where = f" in {source}" if source is not None else ""
    sizes = [operator.index(s) for s in sizes]
    for size in sizes:
        if size < 1:
            raise ValueError(
                f"subset N={size} is smaller than 1; expected 1 <= N <= {n_pool}, the training pool{where}")
        if size > n_pool:
            raise ValueError(f"subset N={size} is larger than the training pool of {n_pool} spectra{where}")
    order = np.random.default_rng(seed).permutation(n_pool)
    return {size: np.sort(order[:size]).astype(np.int64) for size in sizes}


def save_subset(path, idx) -> None:
    """Save row indices as .npy via a temporary file and rename, so readers never see half a file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(idx, dtype=np.int64))


def load_subset(path) -> np.ndarray:
    """Row indices saved by save_subset, checked to be usable as read_arrays rows."""
    idx = np.load(Path(path))
    try:
        return row_selection(idx)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
