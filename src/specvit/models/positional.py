"""Positional encodings of the SpecViT tokens: sinusoidal of the token index, PIPE (sinusoidal
of each token's central wavelength, physics-informed) and rotary (RoPE); the variants of the
``pos_encoding`` ablation, built from the ``ViTConfig`` and the wavelength grid."""
from __future__ import annotations

import numpy as np
import torch

from specvit.models.vit_config import ViTConfig


def sinusoidal_features(x: np.ndarray, dim: int, min_period: float, max_period: float) -> np.ndarray:
    """[len(x), dim] features [sin(2 pi x / p_k), cos(2 pi x / p_k)] for dim//2 periods p_k spaced
    geometrically from ``min_period`` to ``max_period`` (float64; an odd last channel is 0)."""
    n = dim // 2
    periods = np.geomspace(min_period, max_period, n) if n > 1 else np.array([max_period])
    ang = 2.0 * np.pi * np.asarray(x, dtype=np.float64)[:, None] / periods[None, :]
    out = np.zeros((ang.shape[0], dim))
    out[:, :n], out[:, n:2 * n] = np.sin(ang), np.cos(ang)
    return out


def sinusoidal_index_encoding(n_tokens: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The Transformer's encoding of the token index t = 0..n-1, float32 [n_tokens, dim]: angular
    frequencies base^(-2i/dim), i.e. periods from 2 pi to ~2 pi base tokens."""
    n = max(dim // 2, 1)
    max_period = 2.0 * np.pi * base ** (2.0 * (n - 1) / dim)
    feats = sinusoidal_features(np.arange(n_tokens), dim, 2.0 * np.pi, max_period)
    return torch.as_tensor(feats, dtype=torch.float32)


def padded_wave(wave: np.ndarray, cfg: ViTConfig) -> np.ndarray:
    """The wavelength grid extended over the padded tail by linear extrapolation of the last step."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.shape != (cfg.n_pixels,):
        raise ValueError(f"wave has shape {wave.shape}, expected ({cfg.n_pixels},) = (n_pixels,)")
    if cfg.n_pad == 0:
        return wave
    if wave.size < 2:
        raise ValueError("extrapolating the wave grid over the padding needs >= 2 pixels")
    step = wave[-1] - wave[-2]
    return np.concatenate([wave, wave[-1] + step * np.arange(1, cfg.n_pad + 1)])


def token_wavelengths(wave: np.ndarray, cfg: ViTConfig) -> np.ndarray:
    """Central wavelength of each patch token [n_tokens]: the mean wavelength of its window on the
    padded grid (see ``padded_wave``)."""
    w = padded_wave(wave, cfg)
    windows = np.lib.stride_tricks.sliding_window_view(w, cfg.patch)[::cfg.step]
    return windows.mean(axis=1)


def pipe_encoding(wave: np.ndarray, cfg: ViTConfig) -> torch.Tensor:
    """PIPE (physics-informed positional embedding) [n_tokens, dim], float32: sinusoidal features
    of each token's central wavelength (absolute, in the units of ``wave``, computed in float64).
    Periods are geometric from the Nyquist period of the token grid (2 x the median token spacing;
    finer periods would alias between tokens) to 2 x the width of the padded wavelength window."""
    lam = token_wavelengths(wave, cfg)
    w = padded_wave(wave, cfg)
    width = float(w[-1] - w[0])
    spacing = float(np.median(np.diff(lam))) if lam.size > 1 else width
    if not (width > 0 and spacing > 0):
        raise ValueError("pipe positional encoding needs an increasing wave grid")
    return torch.as_tensor(sinusoidal_features(lam, cfg.dim, 2.0 * spacing, 2.0 * width),
                           dtype=torch.float32)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, base: float = 10000.0):
    """cos, sin [len(positions), head_dim] of the rotary embedding (half-split / GPT-NeoX layout:
    channel i pairs with channel i + head_dim/2, angle = position * base^(-2i/head_dim))."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [..., T, head_dim] by the per-position angles: <rot(q, m), rot(k, n)> depends
    only on m - n."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)
