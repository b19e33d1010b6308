"""The template fit's noise model when the spectra come without errors (IRLS, ``specvit.models.template``)."""
from __future__ import annotations

import torch


def noise_weights(resid: torch.Tensor, flux: torch.Tensor) -> torch.Tensor:
    """IRLS weights 1 / sigma^2 [M, P], with sigma_j^2 = alpha f_j + beta fitted per star by least
    squares of resid^2 on the model flux (alpha, beta >= 0; a negative one is dropped and the other refitted)."""
    r2, f = resid * resid, flux.clamp_min(0.0)
    n = f.shape[1]
    sf, sff, sr, sfr = f.sum(1), (f * f).sum(1), r2.sum(1), (f * r2).sum(1)
    alpha = (n * sfr - sf * sr) / (n * sff - sf * sf)
    beta = (sr - alpha * sf) / n
    alpha, beta = torch.where(alpha < 0, 0.0, alpha), torch.where(alpha < 0, sr / n, beta)
    alpha, beta = torch.where(beta < 0, sfr / sff, alpha), beta.clamp_min(0.0)
    var = alpha[:, None] * f + beta[:, None]
    floor = 1e-6 * sr / n + torch.finfo(var.dtype).tiny
    return 1.0 / torch.maximum(var, floor[:, None])
