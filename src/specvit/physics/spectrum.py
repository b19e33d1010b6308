"""A differentiable synthetic spectrum model of the PFS medium-resolution red arm.

It stands in for the paper's BOSZ -> PFS simulations. A spectrum of labels
(Teff, logg, [M/H], [a/M], [C/M]) is built as

    flux = LSF_rest * [ continuum * exp(-sum_k tau_k(labels) * phi_k(lambda)) ] / mean

- continuum: a Planck curve at Teff (smooth; its slope over the window carries Teff);
- phi_k: an area-normalised pseudo-Voigt profile per line, evaluated only within a
  window of pixels around the line (wide for lines with damping wings, narrow for weak
  lines); its Gaussian part has a fixed pre-broadening of ``pre_broadening_fwhm``;
- LSF_rest: the rest of the Gaussian line-spread function (FWHM = lambda / 5000 in total,
  the two Gaussians adding in quadrature), applied after the exponential so that saturated
  line cores are smoothed as an instrument smooths them;
- the result is divided by its mean over all pixels: a smooth function of the labels (the paper's
  data were divided by their median, whose pixel changes identity within a fraction of a kelvin and
  makes the spectrum, its Jacobian and every chi^2 surface only piecewise smooth);
- a radial velocity ``rv_kms`` (per star, optional) shifts the lines, bands and continuum: every
  pixel is evaluated at its rest wavelength lambda / D, D = sqrt((1 + beta) / (1 - beta)), before
  the LSF (which acts in the observed frame), so d flux / d v is exact autodiff.

Line strengths follow the physics that makes a spectrum carry log g (see ``line_sensitivities``):
abundances, Boltzmann/Saha temperature factors 10^(-theta chi), ionised lines weakening as
g^(-1/3) (the continuous opacity grows with electron pressure), pressure (Lorentz) widths
growing as 10^(0.35 (logg - 4.44)) and as Z^(-1/3), hydrogen Paschen lines in the warmer
stars, and molecular bands (TiO, CN) that appear in cool stars.
Line lists ship as data files of the package (``resources/``); nothing is drawn at run time.
"""
from __future__ import annotations

import csv
from dataclasses import asdict
from importlib import resources

import numpy as np
import torch

from specvit.physics.bands import CN_BANDS, TIO_BANDS, MolecularBands

# the grid and the physical knobs live in a torch-free module (the workflow reads them); re-exported
from specvit.physics.grid import (  # noqa: F401
    LOGG_REF,
    N_PIXELS,
    RESOLUTION,
    THETA_REF,
    WAVE_START,
    WAVE_STEP,
    ForwardParams,
)
from specvit.physics.labels import LABEL_NAMES
from specvit.physics.lsf import FWHM_TO_SIGMA, SparseOperator, apply_lsf, lsf_kernel, lsf_matrix  # noqa: F401
from specvit.physics.nuisances import C_KMS, RV_MAX_KMS


def pfs_red_wave(n_pixels: int = N_PIXELS) -> np.ndarray:
    """The wavelength grid (A, float64): lambda_j = 7100.2136 + 0.427246 j."""
    return WAVE_START + WAVE_STEP * np.arange(n_pixels, dtype=np.float64)


def load_line_list(name: str) -> dict[str, np.ndarray]:
    """Read one of the shipped line lists (``named_lines`` or ``forest_lines``) into columns."""
    text = resources.files("specvit.resources").joinpath(f"{name}.csv").read_text()
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    out = {"name": np.array(cols.pop("name")), "species": np.array(cols.pop("species"))}
    for k, v in cols.items():
        out[k] = np.array(v, dtype=np.float64)
    return out


def line_sensitivities(lines: dict[str, np.ndarray], p: ForwardParams) -> np.ndarray:
    """d log10(strength) / d(M_H, a_M, C_M, theta - theta_ref, logg - logg_ref), shape [L, 5].

    - abundance: alpha elements scale with [a/M] and carbon features with [C/M]; with [M/H],
      minority neutrals (Na I, Fe I, ...) scale as Z, lines of the dominant ionisation stage
      (Ca II, O I) as Z^(2/3) because the H- opacity they compete with grows with the
      metals' electrons (Z^(1/3)); hydrogen lines do not scale with [M/H];
    - temperature (theta = 5040 / Teff): neutral lines of easily ionised elements
      (chi_ion < 10 eV) follow Saha x Boltzmann, 10^(theta (chi_ion - chi_exc)); lines of
      ions and of mostly neutral atoms (O I, C I) follow Boltzmann, 10^(-theta chi_exc);
      molecules (ion_stage 0) form in cool gas with an effective 3 eV; all scaled by
      ``thermal_scale`` because the H- continuous opacity also changes with temperature;
    - gravity: lines of the dominant ionisation stage (ions, and neutral O/C) weaken as
      g^(-1/3) because the H- opacity grows with electron pressure; minority neutrals are
      insensitive in the weak-line limit (their log g signal comes through the damping wings);
      molecules get ``molecule_gravity_exponent``.
    """
    stage, chi_exc, chi_ion = lines["ion_stage"], lines["chi_exc"], lines["chi_ion"]
    minority_neutral = (stage == 1) & (chi_ion < 10.0)
    molecule = stage == 0
    theta = np.where(minority_neutral, chi_ion - chi_exc, -chi_exc)
    theta = np.where(molecule, 3.0, theta) * p.thermal_scale
    gravity = np.where(minority_neutral, 0.0, p.ion_gravity_exponent)
    gravity = np.where(molecule, p.molecule_gravity_exponent, gravity)
    m_h = np.where(minority_neutral | molecule, 1.0, p.dominant_metal_exponent)
    m_h = np.where(lines["species"] == "H", 0.0, m_h)
    return np.stack([m_h, lines["alpha"], lines["carbon"], theta, gravity], axis=1)


def _voigt_shape(fwhm_g, fwhm_l):
    """(eta, Lorentz half width, Gaussian sigma) of the pseudo-Voigt approximating a Voigt profile of
    Gaussian and Lorentz FWHMs ``fwhm_g`` and ``fwhm_l`` (Thompson, Cox & Hastings 1987)."""
    fg2, fl2 = fwhm_g * fwhm_g, fwhm_l * fwhm_l
    f = (fg2 * fg2 * fwhm_g + 2.69269 * fg2 * fg2 * fwhm_l + 2.42843 * fg2 * fwhm_g * fl2
         + 4.47163 * fg2 * fl2 * fwhm_l + 0.07842 * fwhm_g * fl2 * fl2 + fl2 * fl2 * fwhm_l) ** 0.2
    r = fwhm_l / f
    eta = 1.36603 * r - 0.47719 * r * r + 0.11116 * r * r * r
    return eta, 0.5 * f, f * FWHM_TO_SIGMA


def _pseudo_voigt(dx, fwhm_g, fwhm_l):
    """Area-normalised pseudo-Voigt (Thompson, Cox & Hastings 1987), accurate to ~1 %."""
    eta, hw, sigma = _voigt_shape(fwhm_g, fwhm_l)
    lorentz = (hw / np.pi) / (dx * dx + hw * hw)
    gauss = torch.exp(-0.5 * (dx / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))
    return eta * lorentz + (1.0 - eta) * gauss


class _LineGroup(torch.nn.Module):
    """Lines that share a window half-width: evaluated on [L, 2W+1] pixels and scattered into tau.

    Window pixels beyond the grid are scattered into one extra pixel (index P) that the caller drops."""

    def __init__(self, wave: np.ndarray, lines: dict[str, np.ndarray], half_width: int, p: ForwardParams):
        super().__init__()
        center = np.searchsorted(wave, lines["wavelength"])
        offsets = np.arange(-half_width, half_width + 1)
        idx = center[:, None] + offsets[None, :]
        inside = (idx >= 0) & (idx < wave.size)
        dx = wave[np.clip(idx, 0, wave.size - 1)] - lines["wavelength"][:, None]
        self.register_buffer("index", torch.as_tensor(np.where(inside, idx, wave.size).reshape(-1)))
        self.register_buffer("dx", torch.as_tensor(dx))
        self.register_buffer("dx2", torch.as_tensor(dx * dx))
        self.register_buffer("wave_idx", torch.as_tensor(dx + lines["wavelength"][:, None]))
        self.register_buffer("log_s", torch.as_tensor(lines["log_s"] + p.strength_offset))
        self.register_buffer("log_gamma", torch.as_tensor(lines["log_gamma"] + np.log10(p.damping_scale)))
        self.register_buffer("sens", torch.as_tensor(line_sensitivities(lines, p)))
        self.damping_gravity, self.damping_metal = p.damping_gravity_exponent, p.damping_metal_exponent
        # Gaussian FWHM before the exponential: the pre-broadening; the rest of the LSF comes later.
        self.fwhm_g = p.pre_broadening_fwhm

    def forward(self, x: torch.Tensor, tau: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, 5] physics coordinates (M_H, a_M, C_M, dtheta, dlogg); adds into tau [B, P + 1].
        ``shift`` [B]: 1 - 1/D of each star's Doppler factor (None: at rest).

        strength x pseudo-Voigt, with every factor that depends only on the line ([B, L]) folded
        into two coefficients, so that few operations touch the [B, L, 2W+1] arrays (and their tangents)."""
        strength = 10.0 ** (self.log_s + x @ self.sens.T)                       # [B, L]
        pressure = self.damping_gravity * x[:, 4:5] + self.damping_metal * x[:, 0:1]
        gamma = 10.0 ** (self.log_gamma + pressure)                               # [B, L]
        eta, hw, sigma = _voigt_shape(self.fwhm_g, gamma)
        lorentz_amp = (strength * eta * hw / np.pi)[:, :, None]
        gauss_amp = (strength * (1.0 - eta) / (sigma * np.sqrt(2.0 * np.pi)))[:, :, None]
        gauss_rate = (-0.5 / (sigma * sigma))[:, :, None]
        if shift is None:
            dx2 = self.dx2
        else:  # rest wavelength of each pixel minus the line's: lambda/D - lambda_0 = dx - lambda (1 - 1/D)
            dx = self.dx - self.wave_idx * shift[:, None, None]
            dx2 = dx * dx
        contrib = lorentz_amp / (dx2 + (hw * hw)[:, :, None]) + gauss_amp * torch.exp(dx2 * gauss_rate)
        return tau.index_add(1, self.index, contrib.reshape(x.shape[0], -1))


class SpectrumModel(torch.nn.Module):
    """Labels [B, 5] (``LABEL_NAMES`` order) -> continuum-normalised flux [B, P].

    float32 by default; ``.double()`` (or ``dtype=torch.float64``) for Fisher work.
    """

    label_names = LABEL_NAMES

    def __init__(self, params: ForwardParams | None = None, wave: np.ndarray | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.params = params or ForwardParams()
        wave = pfs_red_wave() if wave is None else np.asarray(wave, dtype=np.float64)
        self.wave = wave
        p = self.params
        self.register_buffer("wave_t", torch.as_tensor(wave))
        groups = []
        for name in ("named_lines", "forest_lines"):
            lines = load_line_list(name)
            for w in np.unique(lines["window_px"]).astype(int):
                sel = {k: v[lines["window_px"] == w] for k, v in lines.items()}
                groups.append(_LineGroup(wave, sel, int(w), p))
        self.groups = torch.nn.ModuleList(groups)
        self.bands = MolecularBands(wave, p)
        self.register_buffer("lsf_kernel", torch.as_tensor(lsf_kernel(wave, p.pre_broadening_fwhm)))
        self.to(dtype)

    def physics_coordinates(self, labels: torch.Tensor) -> torch.Tensor:
        """(M_H, a_M, C_M, theta - theta_ref, logg - logg_ref) from labels in LABEL_NAMES order."""
        teff, logg, m_h, a_m, c_m = labels.unbind(-1)
        return torch.stack([m_h, a_m, c_m, 5040.0 / teff - THETA_REF, logg - LOGG_REF], dim=-1)

    def continuum(self, teff: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """Planck curve B_lambda(Teff) over the window (at each pixel's rest wavelength when ``shift``
        is given), divided by its value at the first pixel's observed wavelength."""
        c2 = 1.438777e8  # hc/k in A K
        lam0 = self.wave_t[0]
        lam = self.wave_t[None, :] if shift is None else self.wave_t[None, :] * (1.0 - shift[:, None])
        x = c2 / (lam * teff[:, None])
        x0 = c2 / (lam0 * teff[:, None])
        return (lam0 / lam) ** 5 * torch.expm1(x0) / torch.expm1(x)

    def optical_depth(self, labels: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        x = self.physics_coordinates(labels)
        n = self.wave_t.shape[0]
        tau = torch.zeros(labels.shape[0], n + 1, dtype=labels.dtype, device=labels.device)
        for group in self.groups:
            tau = group(x, tau, shift)
        tau = tau[:, :n]  # the last pixel collects the window pixels beyond the grid
        return self.bands(x, tau, shift)

    @staticmethod
    def doppler_shift(rv_kms: torch.Tensor) -> torch.Tensor:
        """1 - 1/D for radial velocities in km/s (D = sqrt((1 + beta) / (1 - beta)), relativistic):
        lambda_rest = lambda_obs (1 - shift), computed without cancellation for small beta."""
        if bool((rv_kms.detach().abs() > RV_MAX_KMS).any()):
            raise ValueError(f"rv_kms must be within +-{RV_MAX_KMS:g} km/s (the line windows are fixed at rest); "
                             f"got up to {float(rv_kms.detach().abs().max()):.1f}")
        return -torch.expm1(-torch.atanh(rv_kms / C_KMS))

    def _lsf_operator(self) -> SparseOperator:
        """The sparse LSF matrix of ``lsf_kernel``, rebuilt when the kernel is replaced, edited or converted
        (``_apply``: .double(), .to()). Built outside torch.func transforms, which cannot build it."""
        kernel = self.lsf_kernel
        cache = getattr(self, "_lsf_cache", None)
        if cache is None or cache[0] is not kernel or cache[1] != kernel._version:
            cache = (kernel, kernel._version, SparseOperator(lsf_matrix(kernel)))
            self._lsf_cache = cache
        return cache[2]

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        self._lsf_operator()
        return out

    def convolve_lsf(self, flux: torch.Tensor) -> torch.Tensor:
        """The per-pixel Gaussian LSF (``lsf_kernel``, replicate padding at the edges) as one sparse
        matrix product."""
        return apply_lsf(flux, self._lsf_operator())

    def forward(self, labels: torch.Tensor, rv_kms: torch.Tensor | float | None = None) -> torch.Tensor:
        """Flux [B, P] of labels [B, 5] (or [P] of one star [5]); ``rv_kms``: radial velocity per star
        in km/s ([B] or a scalar; None: at rest), positive away from us (lines shift redward)."""
        squeeze = labels.ndim == 1
        labels = labels.reshape(-1, len(LABEL_NAMES))
        shift = None
        if rv_kms is not None:
            rv = torch.as_tensor(rv_kms, dtype=labels.dtype, device=labels.device)
            shift = self.doppler_shift(rv.reshape(-1).expand(labels.shape[0]))
        raw = self.continuum(labels[:, 0], shift) * torch.exp(-self.optical_depth(labels, shift))
        raw = self.convolve_lsf(raw)
        flux = raw / raw.mean(dim=1, keepdim=True)
        return flux[0] if squeeze else flux

    def describe(self) -> dict:
        """Generator parameters for file attributes and provenance."""
        knobs = {f"forward_{k}": v for k, v in asdict(self.params).items()}
        return {"model": "specvit.physics.spectrum.SpectrumModel", **knobs}


@torch.no_grad()
def simulate(labels: np.ndarray, model: SpectrumModel | None = None, batch_size: int = 512,
             rv_kms: np.ndarray | None = None) -> np.ndarray:
    """Noise-free flux [N, P] (float32) for labels [N, 5] (and radial velocities [N] in km/s), in batches."""
    model = model or SpectrumModel()
    dtype = model.wave_t.dtype
    out = np.empty((labels.shape[0], model.wave.size), dtype=np.float32)
    for i in range(0, labels.shape[0], batch_size):
        rv = None if rv_kms is None else torch.as_tensor(rv_kms[i : i + batch_size], dtype=dtype)
        out[i : i + batch_size] = model(torch.as_tensor(labels[i : i + batch_size], dtype=dtype), rv).numpy()
    return out


def marked_features(groups=("Ca II", "Na I", "K I", "Mg I", "O I", "H I")) -> list[tuple[str, float]]:
    """(label, wavelength) of the named lines of ``groups`` and the TiO/CN band heads, for plots."""
    lines = load_line_list("named_lines")
    out = []
    for name, wave in zip(lines["name"], lines["wavelength"]):
        species = " ".join(name.split()[:2])
        if species in groups:
            out.append((species if species != "H I" else "Pa", float(wave)))
    out += [("TiO", h) for h, _, _ in TIO_BANDS] + [("CN", h) for h, _, _ in CN_BANDS]
    return out
