"""Are the stars a model is evaluated on inside the label range it was trained on?

A model trained on log g in [1.2, 4.9] extrapolates outside it. That is allowed (the test set
of user data may be wider) but must not pass silently: the evaluation warns, naming the file,
the label, how many stars and the trained range, and goes on.
"""
from __future__ import annotations

import warnings

import numpy as np


class OutsideTrainedRange(UserWarning):
    """Evaluation labels outside the range the model was trained on."""


def label_ranges(labels: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """{label: [min, max]} of training labels (stored in the run's metrics.json)."""
    return {name: [float(np.min(v)), float(np.max(v))] for name, v in labels.items()}


def warn_outside(trained: dict[str, list[float]], labels: dict[str, np.ndarray], source, log=print) -> list[str]:
    """Warn (``OutsideTrainedRange`` and a line in the log) for every label of ``labels`` that
    has values outside ``trained``; returns the messages."""
    messages = []
    for name, (lo, hi) in trained.items():
        if name not in labels:
            continue
        values = np.asarray(labels[name], dtype=np.float64)
        outside = int(np.count_nonzero((values < lo) | (values > hi)))
        if outside:
            messages.append(
                f"{source}: {outside} of {values.size} stars ({100 * outside / values.size:.1f} %) have {name} "
                f"outside [{lo:.4g}, {hi:.4g}], the range the model was trained on "
                f"(they span [{values.min():.4g}, {values.max():.4g}]); their predictions are extrapolations")
    for message in messages:
        log(f"WARNING: {message}")
        warnings.warn(message, OutsideTrainedRange, stacklevel=2)
    return messages
