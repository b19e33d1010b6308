"""Nuisance parameters of an observed spectrum: a multiplicative continuum error and a radial velocity.

Real spectra carry flux-calibration and continuum errors and a Doppler shift; a model that knows the
labels still has to fit those. Here (torch-free, so the workflow can read the config without torch):

- ``legendre_basis``: the Legendre polynomials P_0..P_d of a wavelength grid mapped linearly onto
  x in [-1, 1], shape [P, d + 1]; ``apply_continuum`` multiplies flux [N, P] by 1 + sum_k c_k P_k(x)
  for coefficients c [N, d + 1] (c_0 is the flux scale). One implementation for the Fisher
  columns, the simulated nuisances and the domain-shift study's continuum error.
- ``NuisanceSet``: one set of nuisances marginalised in a ceiling (config ``ceiling.nuisances``):
  a continuum of degree d (or none) and/or a radial velocity, with the Gaussian prior rms each
  nuisance has in the Bayes bound; ``dims`` names its ceiling rows, e.g. ``5d+cont2+rv``.

The radial velocity enters through the forward model (``SpectrumModel.forward(labels, rv_kms)``):
its derivative is autodiff, not a numerical shift of the output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C_KMS = 299792.458
# The forward model evaluates each line on a fixed window of pixels around its rest wavelength:
# shifts beyond this would move weak lines towards the edge of their window (+-16 px).
RV_MAX_KMS = 200.0


def legendre_x(wave) -> np.ndarray:
    """The wavelength grid mapped linearly onto [-1, 1] (first pixel -1, last +1)."""
    wave = np.asarray(wave, dtype=np.float64)
    return 2.0 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1.0


def legendre_basis(wave, degree: int) -> np.ndarray:
    """Legendre polynomials P_0 .. P_degree of the grid ``wave`` on x in [-1, 1]: float64 [P, degree + 1]."""
    if int(degree) != degree or degree < 0:
        raise ValueError(f"continuum degree must be an integer >= 0, got {degree}")
    return np.polynomial.legendre.legvander(legendre_x(wave), int(degree))


def continuum_factor(coeffs, basis):
    """1 + sum_k c_k P_k(x) per star: coeffs [N, d + 1] and basis [P, d + 1] of the same library
    (numpy arrays or torch tensors) -> [N, P]."""
    return 1.0 + coeffs @ basis.T


def apply_continuum(flux, coeffs, basis):
    """flux [N, P] times the multiplicative continuum 1 + sum_k c_k P_k(x) (see ``continuum_factor``)."""
    return flux * continuum_factor(coeffs, basis)


@dataclass(frozen=True)
class NuisanceSet:
    """Nuisances marginalised together in one ceiling.

    ``continuum_degree``: None for no continuum error, d >= 0 for a multiplicative Legendre series of
    degree d (0: the flux scale alone); ``continuum_rms``: the Gaussian prior rms of each coefficient
    (a fraction of the flux). ``rv``: a free radial velocity, with Gaussian prior rms ``rv_rms_kms``.
    The priors enter only the Bayes bound; the Cramér-Rao bounds treat the nuisances as unknown.
    """

    continuum_degree: int | None = None
    continuum_rms: float = 0.05
    rv: bool = False
    rv_rms_kms: float = 20.0

    def __post_init__(self):
        d = self.continuum_degree
        if d is not None and (int(d) != d or d < 0):
            raise ValueError(f"continuum_degree must be null or an integer >= 0, got {d}")
        if d is None and not self.rv:
            raise ValueError("a nuisance set needs a continuum (continuum_degree) or a radial velocity (rv: true)")
        for name in ("continuum_rms", "rv_rms_kms"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v}")

    @classmethod
    def from_config(cls, cfg: dict) -> NuisanceSet:
        """One entry of the config's ``ceiling.nuisances`` list."""
        return cls(**cfg)

    @property
    def n_continuum(self) -> int:
        return 0 if self.continuum_degree is None else int(self.continuum_degree) + 1

    @property
    def names(self) -> list[str]:
        """The nuisance parameters, in the order of their Jacobian columns: cont_0 .. cont_d, then rv."""
        return [f"cont_{k}" for k in range(self.n_continuum)] + (["rv"] if self.rv else [])

    @property
    def suffix(self) -> str:
        """``+cont<d>`` and/or ``+rv``."""
        return ("" if self.continuum_degree is None else f"+cont{int(self.continuum_degree)}") + (
            "+rv" if self.rv else "")

    def dims(self, base: str = "5d") -> str:
        """The ``dims`` of this set's ceiling rows: the clean marginal's name plus the suffix, e.g. ``5d+cont2+rv``."""
        return base + self.suffix

    def prior_sd(self) -> np.ndarray:
        """Gaussian prior rms of each nuisance parameter, in ``names`` order (flux fraction, km/s)."""
        return np.array([self.continuum_rms] * self.n_continuum + ([self.rv_rms_kms] if self.rv else []))

    def describe(self) -> str:
        """What a reader of Figure 1 needs: which nuisances the ceiling also leaves unknown."""
        parts = []
        if self.continuum_degree == 0:
            parts.append("flux scale")
        elif self.continuum_degree is not None:
            parts.append(f"continuum (Legendre degree {int(self.continuum_degree)})")
        if self.rv:
            parts.append("radial velocity")
        return " + ".join(parts) + " unknown"


def nuisance_sets(items, key: str = "ceiling.nuisances") -> tuple[NuisanceSet, ...]:
    """The ``NuisanceSet``s of a config list; ValueError naming the config ``key`` and the entry for a bad
    entry or two entries with the same ``dims``."""
    sets, seen = [], {}
    for i, item in enumerate(items or ()):
        try:
            s = NuisanceSet.from_config(dict(item))
        except (TypeError, ValueError) as e:
            raise ValueError(f"config key '{key}[{i}]': {e}") from e
        if s.dims() in seen:
            raise ValueError(f"config key '{key}[{i}]' has the same dims {s.dims()!r} as '{key}[{seen[s.dims()]}]' "
                             "(the priors do not name a set); remove one")
        seen[s.dims()] = i
        sets.append(s)
    return tuple(sets)


def describe_dims(dims: str) -> str:
    """A plain-words label of a ceiling's ``dims`` (``5d``, ``1d``, ``3d``, ``5d+cont2+rv``, ...)."""
    base, *extra = dims.split("+")
    text = "log g alone (other labels known)" if base == "1d" else f"{base.upper()} (all labels unknown)"
    words = {"rv": "RV"}
    for part in extra:
        if part.startswith("cont"):
            degree = part[len("cont"):]
            words_part = "flux scale" if degree == "0" else f"continuum deg {degree}"
        else:
            words_part = words.get(part, part)
        text += f" + {words_part}"
    return text
