"""Label normalisation of the ViT: fitted on the training labels, stored with the model, and
inverted on its outputs."""
from __future__ import annotations

import numpy as np

from specvit.training.config import LABEL_NORMS


class LabelScaler:
    """Label normalisation fitted on the training subset and stored with the model."""

    def __init__(self, kind: str, offset: np.ndarray, scale: np.ndarray):
        self.kind, self.offset, self.scale = kind, np.asarray(offset, float), np.asarray(scale, float)

    @classmethod
    def fit(cls, y: np.ndarray, kind: str) -> LabelScaler:
        """``standard``: (y - mean) / std; ``minmax``: (y - min) / (max - min), to [0, 1]."""
        if kind == "standard":
            offset, scale = y.mean(axis=0), y.std(axis=0)
        elif kind == "minmax":
            offset, scale = y.min(axis=0), y.max(axis=0) - y.min(axis=0)
        else:
            raise ValueError(f"label normalisation {kind!r} is not one of {LABEL_NORMS}")
        return cls(kind, offset, np.where(scale > 0, scale, 1.0))

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (y - self.offset) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.offset

    def to_dict(self) -> dict:
        return {"kind": self.kind, "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> LabelScaler:
        return cls(d["kind"], d["offset"], d["scale"])
