"""Exact Fisher information and Cramer-Rao bounds for log g.

For one spectrum with Gaussian pixel noise sigma_j, the Fisher matrix of the labels is
F = J^T diag(sigma^-2) J with J = d flux / d labels the exact Jacobian of the forward
model (forward-mode autodiff, one pass per label, batched over stars). The noise is
treated as known (its weak dependence on the flux through the source counts is not
differentiated, as in the paper).

- 5D (marginal) bound: (F^-1)_{logg,logg}, all other labels unknown;
- 1D (conditional) bound: 1 / F_{logg,logg}, all other labels known.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.func import jvp

from specvit.physics.labels import LABEL_NAMES, LOGG
from specvit.physics.noise import pixel_sigma

# Typical spread of each label: the Fisher matrix is inverted in these units so that
# Teff (K) and abundances (dex) do not make it ill-conditioned.
LABEL_SCALES = np.array([500.0, 1.0, 1.0, 0.25, 0.4])


def jacobian(model: torch.nn.Module, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flux [B, P] and Jacobian d flux / d labels [B, P, K] by forward-mode autodiff.

    Each star's spectrum depends only on its own labels, so one JVP with the same unit
    tangent for every row gives column k of every star's Jacobian at once.
    """
    columns = []
    flux = None
    for k in range(labels.shape[1]):
        tangent = torch.zeros_like(labels)
        tangent[:, k] = 1.0
        flux, col = jvp(model, (labels,), (tangent,))
        columns.append(col)
    return flux, torch.stack(columns, dim=-1)


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


def ceiling_per_star(model: torch.nn.Module, labels: np.ndarray, mags, noise_level: float = 1.0,
                     batch_size: int = 256, jacobian_fn=None, return_fisher: bool = False) -> dict[str, np.ndarray]:
    """Per-star CRLB of log g (5D and 1D) and SNR at each magnitude in ``mags``.

    The Jacobian is computed once per star in float64 and reused for every magnitude,
    since only the noise changes with magnitude. Returns arrays of shape [len(mags), N]:
    ``crlb_5d``, ``crlb_1d``, ``snr``.
    """
    from specvit.physics.noise import snr as snr_fn

    model = model.double()
    mags = np.atleast_1d(np.asarray(mags, dtype=np.float64))
    n = labels.shape[0]
    out = {key: np.empty((mags.size, n)) for key in ("crlb_5d", "crlb_1d", "snr")}
    if return_fisher:
        out["fisher"] = np.empty((mags.size, n, labels.shape[1], labels.shape[1]))
    for i in range(0, n, batch_size):
        x = torch.as_tensor(labels[i : i + batch_size], dtype=torch.float64)
        flux, jac = (jacobian_fn or jacobian)(model, x)
        flux, jac = flux.detach(), jac.detach()
        for m, mag in enumerate(mags):
            sigma = pixel_sigma(flux, float(mag), noise_level)
            fisher = fisher_matrix(jac, sigma)
            marginal, conditional = crlb(fisher)
            if return_fisher:
                out["fisher"][m, i : i + batch_size] = fisher.numpy()
            out["crlb_5d"][m, i : i + batch_size] = marginal.numpy()
            out["crlb_1d"][m, i : i + batch_size] = conditional.numpy()
            out["snr"][m, i : i + batch_size] = snr_fn(flux, sigma).numpy()
    return out
