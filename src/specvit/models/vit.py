"""SpecViT: a compact 1D Vision Transformer for spectra, configured by one small dataclass.

flux [B, P] --pad--> [B, L] --tokenizer--> [B, T, D] (+ PE) (+ CLS) --blocks--> pool --> head [B, K or 2K]

Variants (the paper's ablations):

* tokenizer ``C1D``: ``Conv1d(1, D, kernel=patch, stride=stride)``; ``SW``: sliding windows
  (``unfold(patch, stride)``) + ``Linear(patch, D)``. With stride == patch both are the same
  linear map of non-overlapping patches and start from the same explicit initialisation
  (see ``SpecViT._init_tokenizer``), so an ablation compares the tokenizers, not their inits.
* pos_encoding ``none`` | ``learned`` (parameter [T(+1), D], std 0.02) | ``sinusoidal`` (of the
  token index) | ``pipe`` (sinusoidal of each token's central wavelength, physics-informed) |
  ``rope`` (rotary, applied to q and k inside attention).
* pooling ``cls`` (a learned CLS token) | ``mean`` (mean over the patch tokens, no CLS token).
* head: ``len(labels)`` outputs, or 2x with ``predict_sigma`` (means, then log-variances).

Blocks are pre-norm: ``x + attn(LN(x))``, ``x + mlp(LN(x))``; attention uses a fused qkv Linear
and ``F.scaled_dot_product_attention``. On CPU the attention call itself always runs in fp32,
even under bf16 autocast: the CPU flash-attention backward in bf16 was measured ~9x slower than in
fp32 for small head dims. On CUDA it runs in the autocast dtype. The positional encodings are in
``specvit.models.positional``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specvit.models.positional import (
    apply_rope,
    pipe_encoding,
    rope_cos_sin,
    sinusoidal_index_encoding,
    token_wavelengths,
)
from specvit.models.vit_config import (  # noqa: F401  (torch-free, re-exported)
    POOLINGS,
    POS_ENCODINGS,
    PRESETS,
    TOKEN_NORMS,
    TOKENIZER_INITS,
    TOKENIZERS,
    ViTConfig,
    flops_per_sample,
    n_parameters,
)

# --- modules ---------------------------------------------------------------------------------------

class Conv1dTokenizer(nn.Module):
    """C1D: Conv1d(1, dim, kernel=patch, stride=stride). [B, L] -> [B, T, dim]."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.proj = nn.Conv1d(1, cfg.dim, kernel_size=cfg.patch, stride=cfg.step)

    def forward(self, x):
        return self.proj(x.unsqueeze(1)).transpose(1, 2)


class SlidingWindowTokenizer(nn.Module):
    """SW: windows of length patch every stride pixels, each mapped by Linear(patch, dim)."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.patch, self.step = cfg.patch, cfg.step
        self.proj = nn.Linear(cfg.patch, cfg.dim)

    def forward(self, x):
        return self.proj(x.unfold(-1, self.patch, self.step))


class Attention(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.resid_drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def _qkv(self, x, rope):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v  # each [B, heads, T, head_dim]

    def forward(self, x, rope=None):
        B, T, C = x.shape
        q, k, v = self._qkv(x, rope)
        p = self.dropout if self.training else 0.0
        if q.device.type == "cpu":  # fp32 attention on CPU, also under autocast (see module doc)
            with torch.autocast(device_type="cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), dropout_p=p)
            y = y.to(v.dtype)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))

    def weights(self, x, rope=None):
        """Explicit softmax(q k^T / sqrt(d)) [B, heads, T, T], no dropout."""
        q, k, _ = self._qkv(x, rope)
        scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])
        return scores.softmax(dim=-1)


class MLP(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.dim, cfg.mlp_dim)
        self.fc2 = nn.Linear(cfg.mlp_dim, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(cfg.dim), Attention(cfg)
        self.norm2, self.mlp = nn.LayerNorm(cfg.dim), MLP(cfg)

    def forward(self, x, rope=None):
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class SpecViT(nn.Module):
    """1D ViT for spectra. ``forward(flux [B, n_pixels]) -> [B, K]`` (or [B, 2K] with
    ``predict_sigma``: K means then K log-variances; see ``split_output``).

    ``wave`` ([n_pixels] wavelengths, e.g. in Angstrom) is required for ``pos_encoding='pipe'``
    and optional otherwise; when given, ``self.token_wave`` holds each token's central wavelength.
    Fixed encodings (sinusoidal, pipe, rope tables) are non-persistent buffers rebuilt from the
    config and ``wave`` at construction, so a checkpoint is loaded into a model built the same way.

    Position conventions: ``sinusoidal`` and ``pipe`` are added to the patch tokens only (the CLS
    token carries none); ``learned`` covers the CLS token too ([seq_len, dim]); with ``rope`` the
    CLS token has position 0 and patch tokens 1..n_tokens.
    """

    def __init__(self, cfg: ViTConfig, wave: np.ndarray | None = None):
        super().__init__()
        self.cfg = cfg
        self.token_wave = None if wave is None else token_wavelengths(wave, cfg)
        self.tokenizer = Conv1dTokenizer(cfg) if cfg.tokenizer == "C1D" else SlidingWindowTokenizer(cfg)
        # token_norm='layernorm' takes the tokens' scale (set by the tokenizer's init) out of the
        # picture before positions are added: the "normalisation" axis of the tokenization ablation
        self.token_norm = nn.LayerNorm(cfg.dim) if cfg.token_norm == "layernorm" else nn.Identity()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if cfg.pooling == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.seq_len, cfg.dim)) \
            if cfg.pos_encoding == "learned" else None
        fixed = None
        if cfg.pos_encoding == "sinusoidal":
            fixed = sinusoidal_index_encoding(cfg.n_tokens, cfg.dim)
        elif cfg.pos_encoding == "pipe":
            if wave is None:
                raise ValueError("ViTConfig.pos_encoding='pipe' needs the wavelength grid: "
                                 "SpecViT(cfg, wave=...)")
            fixed = pipe_encoding(wave, cfg)
        self.register_buffer("fixed_pe", None if fixed is None else fixed[None], persistent=False)
        if cfg.pos_encoding == "rope":
            pos = torch.arange(cfg.seq_len) + (cfg.pooling != "cls")  # patches at 1..n either way
            cos, sin = rope_cos_sin(pos, cfg.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.rope_cos = self.rope_sin = None
        self.embed_drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.n_outputs)
        self.apply(self._init_weights)
        self._init_tokenizer()
        for p in (self.cls_token, self.pos_embed):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(m.bias)

    def _init_tokenizer(self):
        """One explicit init for both tokenizers (applied after ``_init_weights``, which would
        otherwise reach SW's Linear but not C1D's Conv1d): LeCun-normal weights, std
        1/sqrt(patch) (truncated at 2 std, rescaled to keep that std), zero bias. Both tokenizers
        are the same linear map [patch] -> [dim] of each window, so with stride = patch they start
        from the same distribution; and tokens have about the flux's scale, comparable to the
        unit-amplitude sinusoidal / pipe encodings.

        ``tokenizer_init='legacy'`` keeps the asymmetric init of a standard ViT code base instead
        (SW: trunc-normal std 0.02 from ``_init_weights``; C1D: PyTorch's Conv1d default, std
        1/sqrt(3 patch)), for the tokenization ablation that shows what that asymmetry does."""
        if self.cfg.tokenizer_init == "legacy":
            if self.cfg.tokenizer == "C1D":
                self.tokenizer.proj.reset_parameters()
            return
        w = self.tokenizer.proj.weight
        std = 1.0 / math.sqrt(self.cfg.patch) / 0.87962566103423978  # std of N(0,1) cut at +-2
        nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(self.tokenizer.proj.bias)

    @property
    def n_tokens(self) -> int:
        return self.cfg.n_tokens

    def pad(self, flux: torch.Tensor) -> torch.Tensor:
        """[B, n_pixels] -> [B, padded_length]: right-pad with the edge value (replicate) so that
        the windows cover the spectrum exactly; a no-op when they already do."""
        if flux.ndim != 2 or flux.shape[1] != self.cfg.n_pixels:
            raise ValueError(f"flux must be [B, {self.cfg.n_pixels}], got {list(flux.shape)}")
        if self.cfg.n_pad == 0:
            return flux
        return F.pad(flux.unsqueeze(1), (0, self.cfg.n_pad), mode="replicate").squeeze(1)

    def _rope(self):
        return None if self.rope_cos is None else (self.rope_cos, self.rope_sin)

    def embed(self, flux: torch.Tensor) -> torch.Tensor:
        """Tokens entering the first block [B, seq_len, dim]. The residual stream stays in the
        parameter dtype (fp32 under autocast; only the matmuls run in bf16)."""
        x = self.token_norm(self.tokenizer(self.pad(flux)).to(self.head.weight.dtype))
        if self.fixed_pe is not None:
            x = x + self.fixed_pe
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        return self.embed_drop(x)

    def features(self, flux: torch.Tensor) -> torch.Tensor:
        """Pooled, normalised representation [B, dim] (CLS token, or mean of patch tokens)."""
        x, rope = self.embed(flux), self._rope()
        for blk in self.blocks:
            x = blk(x, rope)
        return self.norm(x[:, 0] if self.cfg.pooling == "cls" else x.mean(dim=1))

    def forward(self, flux: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(flux))

    def split_output(self, out: torch.Tensor):
        """(mean [B, K], log_var [B, K]) with ``predict_sigma``, else (out, None)."""
        if not self.cfg.predict_sigma:
            return out, None
        k = len(self.cfg.labels)
        return out[..., :k], out[..., k:]

    def attention_maps(self, flux: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the attention weights [B, heads, seq_len, seq_len] (explicit softmax, fp32;
        with ``cls`` pooling index 0 is the CLS token). Call in eval mode, under no_grad if
        gradients are not wanted."""
        x, rope, maps = self.embed(flux), self._rope(), []
        for blk in self.blocks:
            maps.append(blk.attn.weights(blk.norm1(x), rope))
            x = blk(x, rope)
        return maps


def build_vit(cfg: ViTConfig | dict, wave: np.ndarray | None = None) -> SpecViT:
    """A SpecViT from a config (or its dict) and the optional wavelength grid."""
    if isinstance(cfg, dict):
        cfg = ViTConfig.from_dict(cfg)
    return SpecViT(cfg, wave)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
