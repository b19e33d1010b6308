"""The label space: stellar parameters, their ranges and how they are sampled.

Labels are always handled as float arrays whose last axis follows ``LABEL_NAMES``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LABEL_NAMES: tuple[str, ...] = ("Teff", "logg", "M_H", "a_M", "C_M")
LOGG = LABEL_NAMES.index("logg")

# The paper's grid (BOSZ subset used for the PFS simulations).
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "Teff": (3750.0, 6000.0),
    "logg": (1.0, 5.0),
    "M_H": (-2.5, 0.75),
    "a_M": (-0.25, 0.5),
    "C_M": (-0.75, 0.5),
}

DISTRIBUTIONS = ("uniform", "normal")


def headline_label(labels) -> str:
    """The label a run is scored by in ``metrics_test.csv`` and ``runs.csv``: log g, or the run's
    first label when it does not predict log g (single-task Teff or [M/H] runs of an ablation)."""
    labels = list(labels)
    return "logg" if "logg" in labels else labels[0]


@dataclass(frozen=True)
class LabelPrior:
    """Sampling distribution of one label: uniform on [low, high], or a normal
    (mean, std) truncated to [low, high]."""

    low: float
    high: float
    distribution: str = "uniform"
    mean: float | None = None
    std: float | None = None

    def __post_init__(self):
        if not self.low < self.high:
            raise ValueError(f"label range must have low < high, got [{self.low}, {self.high}]")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown label distribution {self.distribution!r}; expected one of {DISTRIBUTIONS}")
        if self.distribution == "normal" and (self.mean is None or self.std is None or self.std <= 0):
            raise ValueError("a 'normal' label distribution needs 'mean' and a positive 'std'")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.distribution == "uniform":
            return rng.uniform(self.low, self.high, size=n)
        out = np.empty(n)
        filled = 0
        while filled < n:  # rejection sampling keeps the truncated normal exact
            draw = rng.normal(self.mean, self.std, size=2 * (n - filled) + 16)
            draw = draw[(draw >= self.low) & (draw <= self.high)][: n - filled]
            out[filled : filled + draw.size] = draw
            filled += draw.size
        return out

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF: maps uniform numbers in [0, 1) onto this distribution."""
        if self.distribution == "uniform":
            return self.low + u * (self.high - self.low)
        from scipy.stats import truncnorm

        a, b = (self.low - self.mean) / self.std, (self.high - self.mean) / self.std
        return truncnorm.ppf(u, a, b, loc=self.mean, scale=self.std)

    def variance(self, n_grid: int = 20001) -> float:
        """Variance of the distribution (closed form for uniform, numerical otherwise)."""
        if self.distribution == "uniform":
            return (self.high - self.low) ** 2 / 12.0
        x = np.linspace(self.low, self.high, n_grid)
        w = np.exp(-0.5 * ((x - self.mean) / self.std) ** 2)
        w /= w.sum()
        m = (w * x).sum()
        return float((w * (x - m) ** 2).sum())


@dataclass(frozen=True)
class LabelSpace:
    """Priors for all labels, in ``LABEL_NAMES`` order."""

    priors: dict[str, LabelPrior] = field(
        default_factory=lambda: {k: LabelPrior(*v) for k, v in DEFAULT_RANGES.items()}
    )

    def __post_init__(self):
        if tuple(self.priors) != LABEL_NAMES:
            missing = set(LABEL_NAMES) - set(self.priors)
            extra = set(self.priors) - set(LABEL_NAMES)
            if missing or extra:
                raise ValueError(f"label space must define exactly {LABEL_NAMES}; "
                                 f"missing {sorted(missing)}, unknown {sorted(extra)}")
            object.__setattr__(self, "priors", {k: self.priors[k] for k in LABEL_NAMES})

    @classmethod
    def from_config(cls, cfg: dict | None) -> LabelSpace:
        """Build from the config's ``data.labels`` mapping; labels not given keep the paper's range."""
        cfg = cfg or {}
        priors = {}
        for name in LABEL_NAMES:
            low, high = DEFAULT_RANGES[name]
            c = cfg.get(name, {})
            priors[name] = LabelPrior(
                low=float(c.get("min", low)),
                high=float(c.get("max", high)),
                distribution=c.get("distribution", "uniform"),
                mean=c.get("mean"),
                std=c.get("std"),
            )
        return cls(priors)

    @property
    def low(self) -> np.ndarray:
        return np.array([p.low for p in self.priors.values()])

    @property
    def high(self) -> np.ndarray:
        return np.array([p.high for p in self.priors.values()])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` label vectors, shape [n, 5], float64."""
        return np.stack([p.sample(n, rng) for p in self.priors.values()], axis=1)

    def sample_quasi_random(self, n: int, seed: int) -> np.ndarray:
        """``n`` label vectors from a scrambled Sobol sequence mapped through each prior.

        For population summaries (such as the median ceiling of the calibration) this has a
        much smaller sampling error than independent draws: measured here, the median
        5D ceiling R^2 at mag 22.5 scatters by 0.013 over 1024 Sobol stars against 0.04
        over 1000 random ones.
        """
        import warnings

        from scipy.stats import qmc

        with warnings.catch_warnings():  # Sobol balance is best at powers of two; any n is valid
            warnings.simplefilter("ignore", UserWarning)
            u = qmc.Sobol(len(self.priors), scramble=True, seed=seed).random(n)
        return np.stack([p.ppf(u[:, i]) for i, p in enumerate(self.priors.values())], axis=1)

    def to_attrs(self) -> dict[str, str]:
        """A flat, HDF5-attribute friendly description of the priors."""
        return {
            f"label_prior_{k}": f"{p.distribution}[{p.low}, {p.high}]"
            + (f" mean={p.mean} std={p.std}" if p.distribution == "normal" else "")
            for k, p in self.priors.items()
        }
