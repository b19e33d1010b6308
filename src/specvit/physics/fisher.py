"""Exact Fisher information and Cramer-Rao bounds for log g, with or without nuisances.

For one spectrum with Gaussian pixel noise sigma_j, the Fisher matrix of the parameters is
F = J^T diag(sigma^-2) J with J = d flux / d parameters the exact Jacobian of the forward
model (forward-mode autodiff, all columns in one vmapped pass, batched over stars). The noise is
treated as known (its weak dependence on the flux through the source counts is not
differentiated, as in the paper).

- 5D (marginal) bound: (F^-1)_{logg,logg}, all other labels unknown;
- 1D (conditional) bound: 1 / F_{logg,logg}, all other labels known;
- with a nuisance set (``specvit.physics.nuisances.NuisanceSet``): J gains the columns of a
  multiplicative Legendre continuum, d flux / d c_k = flux P_k(x) at c = 0, and of a radial
  velocity, d flux / d v from the forward model (autodiff through ``SpectrumModel.forward(labels,
  rv_kms)``); the marginal bound inverts the augmented F, the nuisances unknown and unconstrained.
  ``marginal_fisher`` gives the labels' information with the nuisances integrated out under their
  Gaussian priors (what the Bayes bound uses).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.func import jvp, vmap

from specvit.physics.labels import LABEL_NAMES, LOGG
from specvit.physics.noise import pixel_sigma
from specvit.physics.nuisances import NuisanceSet, legendre_basis

# Typical spread of each label: the Fisher matrix is inverted in these units so that
# Teff (K) and abundances (dex) do not make it ill-conditioned.
LABEL_SCALES = np.array([500.0, 1.0, 1.0, 0.25, 0.4])


def jacobian(model: torch.nn.Module, labels: torch.Tensor, *, rv: bool = False,
             rv_kms: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flux [B, P] and Jacobian d flux / d labels [B, P, K] by forward-mode autodiff, at radial
    velocities ``rv_kms`` [B] (None: at rest); with ``rv`` a last column d flux / d v (per km/s,
    through ``model(labels, rv_kms)``).

    Each star's spectrum depends only on its own labels, so one JVP with the same unit tangent for
    every row gives a column of every star's Jacobian at once; the columns are vmapped over, so
    the primal spectrum is computed once.
    """
    b, k = labels.shape
    n_col = k + int(rv)
    eye = torch.eye(n_col, dtype=labels.dtype, device=labels.device)
    label_tangents = eye[:, None, :k].expand(n_col, b, k)
    if not rv and rv_kms is None:
        flux, cols = vmap(lambda t: jvp(model, (labels,), (t,)), out_dims=(None, 0))(label_tangents)
    else:
        v0 = torch.zeros(b, dtype=labels.dtype, device=labels.device) if rv_kms is None else rv_kms
        rv_tangents = eye[:, k, None].expand(n_col, b) if rv else torch.zeros(n_col, b, dtype=labels.dtype)
        flux, cols = vmap(lambda t, u: jvp(model, (labels, v0), (t, u)), out_dims=(None, 0))(
            label_tangents, rv_tangents)
    return flux, cols.movedim(0, -1)


def nuisance_jacobian(model: torch.nn.Module, labels: torch.Tensor, *, continuum_degree: int | None = None,
                      rv: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Flux [B, P] and d flux / d (labels, c_0 .. c_d, v) [B, P, K + d + 1 (+ 1)]: the label columns,
    the continuum columns flux P_k(x) of the factor 1 + sum_k c_k P_k(x) at c = 0 (``model.wave``
    gives x), then the radial velocity (km/s) if ``rv``."""
    flux, jac = jacobian(model, labels)
    if rv:  # a JVP of its own: the labels' columns come from the cheaper path at rest (the same at v = 0)
        v0 = torch.zeros(labels.shape[0], dtype=labels.dtype, device=labels.device)
        _, d_v = jvp(lambda v: model(labels, v), (v0,), (torch.ones_like(v0),))
        jac = torch.cat([jac, d_v[..., None]], dim=-1)
    if continuum_degree is None:
        return flux, jac
    basis = torch.as_tensor(legendre_basis(model.wave, continuum_degree), dtype=flux.dtype, device=flux.device)
    k = labels.shape[1]
    return flux, torch.cat([jac[..., :k], flux[:, :, None] * basis, jac[..., k:]], dim=-1)


def fisher_matrix(jac: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """F = J^T diag(sigma^-2) J per star: jac [B, P, K], sigma [B, P] -> [B, K, K]."""
    weighted = jac / sigma[..., None]
    return weighted.transpose(1, 2) @ weighted


def crlb(fisher: torch.Tensor, index: int = LOGG,
         scales: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(marginal, conditional) Cramer-Rao variance bounds of label ``index`` per star.

    The marginal bound inverts F in the units ``scales`` (defaults: ``LABEL_SCALES`` when F
    covers all five labels) and converts back; the value does not depend on that choice.
    """
    k = fisher.shape[-1]
    if scales is None:
        scales = LABEL_SCALES if k == len(LABEL_NAMES) else np.ones(k)
    d = torch.as_tensor(scales, dtype=fisher.dtype, device=fisher.device)
    scaled = fisher * d[:, None] * d[None, :]
    inv = torch.linalg.inv(scaled)
    marginal = inv[:, index, index] * d[index] ** 2
    conditional = 1.0 / fisher[:, index, index]
    return marginal, conditional


def marginal_fisher(fisher: torch.Tensor, n_keep: int, prior_sd) -> torch.Tensor:
    """Fisher information [B, n, n] of the first ``n_keep`` parameters when the others are integrated
    out under independent Gaussian priors of rms ``prior_sd``: F_aa - F_ab (F_bb + diag(sd^-2))^-1 F_ba
    (for a linear model with Gaussian noise, the exact information of the marginal likelihood)."""
    sd = torch.as_tensor(np.asarray(prior_sd, dtype=np.float64), dtype=fisher.dtype, device=fisher.device)
    f_aa, f_ab = fisher[:, :n_keep, :n_keep], fisher[:, :n_keep, n_keep:]
    # in units of the prior rms, F_bb + I is well conditioned
    f_bb = fisher[:, n_keep:, n_keep:] * sd[:, None] * sd[None, :] + torch.eye(sd.numel(), dtype=fisher.dtype)
    f_ab = f_ab * sd
    return f_aa - f_ab @ torch.linalg.solve(f_bb, f_ab.transpose(1, 2))


@dataclass(frozen=True)
class BoundSpec:
    """What the bounds are of: the label at column ``index`` of the first ``n_labels`` Jacobian columns
    (the Fisher matrix inverted in the units ``label_scales``), and the ``NuisanceSet``s whose columns
    follow them in the Jacobian: the continuum c_0 .. c_max_degree, then the radial velocity if any set
    has one (the layout of ``nuisance_jacobian(max_degree, with_rv)``)."""

    n_labels: int = len(LABEL_NAMES)
    index: int = LOGG
    label_scales: tuple = tuple(LABEL_SCALES)
    nuisances: tuple = ()

    @property
    def max_degree(self) -> int | None:
        degrees = [s.continuum_degree for s in self.nuisances if s.continuum_degree is not None]
        return max(degrees) if degrees else None

    @property
    def with_rv(self) -> bool:
        return any(s.rv for s in self.nuisances)

    def columns(self, nuisance: NuisanceSet) -> list[int]:
        """Jacobian columns of the labels and of ``nuisance``'s parameters."""
        k, d = self.n_labels, self.max_degree
        n_cont = 0 if d is None else d + 1
        cols = list(range(k)) + [k + j for j in range(nuisance.n_continuum)]
        return cols + ([k + n_cont] if nuisance.rv else [])


def batch_bounds(flux: torch.Tensor, jac: torch.Tensor, mags, spec: BoundSpec = BoundSpec(), *,
                 noise_level: float = 1.0, return_fisher: bool = False) -> dict[str, np.ndarray]:
    """Bounds of one batch of stars from their flux [B, P] and Jacobian [B, P, K] (layout of ``spec``),
    each [len(mags), B]: ``snr``, ``crlb_marginal`` (all labels unknown), ``crlb_1d`` (the others known),
    ``crlb_<dims>`` per nuisance set (its nuisances unknown too; dims as ``NuisanceSet.dims()``); with
    ``return_fisher`` also ``fisher`` [M, B, k, k] and per set ``fisher_<dims>``, the labels'
    information with that set's nuisances integrated out under their priors (``marginal_fisher``)."""
    from specvit.physics.noise import snr as snr_fn

    k, scales = spec.n_labels, np.asarray(spec.label_scales, dtype=np.float64)
    per_mag = []
    for mag in np.atleast_1d(mags):
        sigma = pixel_sigma(flux, float(mag), noise_level)
        full = fisher_matrix(jac, sigma)
        marginal, conditional = crlb(full[:, :k, :k], spec.index, scales)
        res = {"snr": snr_fn(flux, sigma), "crlb_marginal": marginal, "crlb_1d": conditional}
        if return_fisher:
            res["fisher"] = full[:, :k, :k]
        for s in spec.nuisances:
            cols = spec.columns(s)
            sub = full[:, cols][:, :, cols]
            res[f"crlb_{s.dims()}"] = crlb(sub, spec.index, np.concatenate([scales, s.prior_sd()]))[0]
            if return_fisher:
                res[f"fisher_{s.dims()}"] = marginal_fisher(sub, k, s.prior_sd())
        per_mag.append(res)
    return {key: np.stack([r[key].numpy() for r in per_mag]) for key in per_mag[0]}


def ceiling_per_star(model: torch.nn.Module, labels: np.ndarray, mags, noise_level: float = 1.0,
                     batch_size: int = 256, *, nuisances=(), return_fisher: bool = False) -> dict[str, np.ndarray]:
    """Per-star CRLB of log g and SNR at each magnitude in ``mags``, for labels [N, 5] under ``model``.

    Arrays [len(mags), N]: ``crlb_5d``, ``crlb_1d``, ``snr``, and for each ``NuisanceSet`` of
    ``nuisances`` the marginal bound with its nuisances unknown, ``crlb_<dims>`` (e.g.
    ``crlb_5d+cont2+rv``); with ``return_fisher`` the Fisher matrices of ``batch_bounds``.
    The Jacobian is computed once per star in float64 and reused for every magnitude, since only
    the noise changes with magnitude.
    """
    model = model.double()
    spec = BoundSpec(nuisances=tuple(nuisances))
    parts = []
    for i in range(0, labels.shape[0], batch_size):
        x = torch.as_tensor(labels[i : i + batch_size], dtype=torch.float64)
        flux, jac = nuisance_jacobian(model, x, continuum_degree=spec.max_degree, rv=spec.with_rv)
        parts.append(batch_bounds(flux.detach(), jac.detach(), mags, spec, noise_level=noise_level,
                                  return_fisher=return_fisher))
    out = {key: np.concatenate([p[key] for p in parts], axis=1) for key in parts[0]}
    out["crlb_5d"] = out.pop("crlb_marginal")
    return out
