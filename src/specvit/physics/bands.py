"""Molecular bands (TiO, CN) of the synthetic spectrum model: their strengths and opacity profiles.

Each band's opacity is strength(labels) x shape(lambda_rest - head), with a unit-peak shape that
rises smoothly at the head (width ``EDGE``) and decays exponentially redward; it is smooth in
wavelength everywhere, so a radial velocity moves it differentiably. The shape is kept from 40 A
blueward of the head to ``TAIL`` e-folding lengths redward (e^-25: 1.4e-11 of the peak) and is zero
beyond, in a window of pixels fixed at rest; so a Doppler-shifted band costs only those pixels.
"""
from __future__ import annotations

import numpy as np
import torch

from specvit.physics.grid import LOGG_REF, THETA_REF, ForwardParams

# Band heads (A), e-folding length of the band redward of the head (A), log10 strength in a reference
# star where the band is present (Teff 3750 K for TiO, Teff 4000 K, logg 2 for CN).
TIO_BANDS = [(7054.0, 60.0, -0.1), (7589.0, 45.0, -0.4), (7666.0, 50.0, -0.5),
             (8432.0, 18.0, -0.9), (8442.0, 18.0, -0.9), (8452.0, 18.0, -0.9)]
CN_BANDS = [(7875.0, 30.0, -1.3), (7916.0, 35.0, -1.4), (8125.0, 40.0, -1.3)]
EDGE = 1.0       # A: width of a band head's onset
BLUE = 40.0      # A kept blueward of the head (the onset is e^-80 there)
TAIL = 25.0      # e-folding lengths kept redward of the head


def band_table(p: ForwardParams):
    """Heads, lengths, reference log strengths and sensitivities [Nb, 5] of TiO and CN bands.

    TiO ~ [Ti/H] with a steep temperature dependence (dissociation: effective 15 eV per
    unit theta, so it fades within a few hundred K above 3750 K); CN ~ [C/H] and forms in
    cool giants. Reference strengths are re-expressed at the reference star (theta_ref, logg_ref).
    """
    heads, lengths, log_s, sens = [], [], [], []
    for head, length, log_a in TIO_BANDS:
        s = np.array([1.0, 1.0, 0.0, 15.0, 0.1])
        ref = np.array([0.0, 0.0, 0.0, 5040.0 / 3750.0 - THETA_REF, 4.5 - LOGG_REF])
        heads.append(head)
        lengths.append(length)
        sens.append(s)
        log_s.append(log_a - s @ ref)
    for head, length, log_a in CN_BANDS:
        s = np.array([1.0, 0.0, 1.0, 3.0 * p.thermal_scale, p.molecule_gravity_exponent])
        ref = np.array([0.0, 0.0, 0.0, 5040.0 / 4000.0 - THETA_REF, 2.0 - LOGG_REF])
        heads.append(head)
        lengths.append(length)
        sens.append(s)
        log_s.append(log_a - s @ ref)
    return np.array(heads), np.array(lengths), np.array(log_s), np.stack(sens)


def band_shape(offset, inv_length):
    """Unit-peak band opacity at ``offset`` = lambda_rest - head (A): a smooth onset (tanh of width
    ``EDGE``) times an exponential decay whose kink at the head is smoothed by a softplus. numpy or torch."""
    if isinstance(offset, torch.Tensor):
        u = offset / EDGE
        return 0.5 * (1.0 + torch.tanh(u)) * torch.exp(-EDGE * torch.nn.functional.softplus(u) * inv_length)
    u = offset / EDGE
    return 0.5 * (1.0 + np.tanh(u)) * np.exp(-EDGE * np.logaddexp(0.0, u) * inv_length)


class MolecularBands(torch.nn.Module):
    """The bands' optical depth on a wavelength grid: at rest one product strengths [B, Nb] @ shapes
    [Nb, P]; with a Doppler shift, each band's shape at the stars' rest wavelengths on its own window
    of pixels (stored flat: ``index``, ``band``, ``offset``), scattered into tau."""

    def __init__(self, wave: np.ndarray, p: ForwardParams):
        super().__init__()
        heads, lengths, log_s, sens = band_table(p)
        windows = [np.flatnonzero((wave >= h - BLUE) & (wave <= h + TAIL * length))
                   for h, length in zip(heads, lengths)]
        band = np.concatenate([np.full(w.size, n) for n, w in enumerate(windows)])
        index = np.concatenate(windows)
        offset = wave[index] - heads[band]
        dense = np.zeros((heads.size, wave.size))
        dense[band, index] = band_shape(offset, 1.0 / lengths[band])
        self.register_buffer("log_s", torch.as_tensor(log_s + p.strength_offset))
        self.register_buffer("sens", torch.as_tensor(sens))
        self.register_buffer("shape", torch.as_tensor(dense))                # [Nb, P] at rest
        self.register_buffer("index", torch.as_tensor(index))                # [E] pixel of each window entry
        self.register_buffer("band", torch.as_tensor(band))                  # [E] its band
        self.register_buffer("offset", torch.as_tensor(offset))              # [E] lambda - head at rest
        self.register_buffer("wave_at", torch.as_tensor(wave[index]))        # [E] lambda
        self.register_buffer("inv_length", torch.as_tensor(1.0 / lengths[band]))

    def forward(self, x: torch.Tensor, tau: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, 5] physics coordinates; adds the bands into tau [B, P]. ``shift`` [B]: 1 - 1/D per star."""
        strength = 10.0 ** (self.log_s + x @ self.sens.T)                   # [B, Nb]
        if shift is None:
            return tau + strength @ self.shape
        rest_offset = self.offset - self.wave_at * shift[:, None]            # lambda / D - head
        contrib = strength[:, self.band] * band_shape(rest_offset, self.inv_length)
        return tau.index_add(1, self.index, contrib)
