"""The SpecViT architecture as data: ``ViTConfig``, the presets, and closed-form sizes.

Torch-free on purpose: the workflow checks every run's architecture when it starts and sizes
cluster jobs from it, and importing torch for that would cost a second on every ``snakemake``
call. The model itself is ``specvit.models.vit.SpecViT``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

TOKENIZERS = ("C1D", "SW")
POS_ENCODINGS = ("none", "learned", "sinusoidal", "pipe", "rope")
POOLINGS = ("cls", "mean")
# lecun: one explicit init for both tokenizers (see SpecViT._init_tokenizer); legacy: what a
# standard ViT code base does, where apply(_init_weights) reaches SW's Linear (std 0.02) but not
# C1D's Conv1d (PyTorch default, U(+-1/sqrt(patch))): the setup of the paper's SW failure.
TOKENIZER_INITS = ("lecun", "legacy")
TOKEN_NORMS = ("none", "layernorm")

# Architectures; n_pixels, labels, predict_sigma and dropout come from the run.
PRESETS: dict[str, dict] = {
    # the paper's model: patch 16 -> 256 tokens at 4096 px, ~4.8M parameters
    "p16_h256_L6": dict(tokenizer="C1D", patch=16, dim=256, depth=6, heads=8, mlp_dim=1024,
                        pos_encoding="learned", pooling="cls"),
    # middle ground: patch 32 -> 128 tokens at 4096 px, ~0.14M parameters
    "small": dict(tokenizer="C1D", patch=32, dim=64, depth=4, heads=4, mlp_dim=128,
                  pos_encoding="learned", pooling="cls"),
    # CPU default: patch 64 -> 64 tokens at 4096 px, ~21k parameters
    "tiny": dict(tokenizer="C1D", patch=64, dim=32, depth=2, heads=2, mlp_dim=64,
                 pos_encoding="learned", pooling="cls"),
}


def _check_choice(field: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"ViTConfig.{field}={value!r} is not one of {', '.join(map(repr, allowed))}")


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of a SpecViT. ``n_pixels`` comes from the data (never assumed 4096).

    ``stride=None`` means ``stride = patch`` (non-overlapping tokens); use ``cfg.step`` for the
    resolved value. A pixel count not covered exactly by the windows is right-padded with the edge
    value up to ``padded_length`` (see ``SpecViT.pad``). Change a field with
    ``dataclasses.replace(cfg, ...)``, which validates again.
    """

    n_pixels: int
    tokenizer: str = "C1D"
    patch: int = 16
    stride: int | None = None
    dim: int = 256
    depth: int = 6
    heads: int = 8
    mlp_dim: int = 1024
    pos_encoding: str = "learned"
    pooling: str = "cls"
    labels: tuple[str, ...] = ("logg",)
    predict_sigma: bool = False
    dropout: float = 0.0
    tokenizer_init: str = "lecun"
    token_norm: str = "none"     # layernorm: LayerNorm of each token before the positions are added

    def __post_init__(self):
        if isinstance(self.labels, str):
            object.__setattr__(self, "labels", (self.labels,))
        object.__setattr__(self, "labels", tuple(self.labels))
        _check_choice("tokenizer", self.tokenizer, TOKENIZERS)
        _check_choice("pos_encoding", self.pos_encoding, POS_ENCODINGS)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("tokenizer_init", self.tokenizer_init, TOKENIZER_INITS)
        _check_choice("token_norm", self.token_norm, TOKEN_NORMS)
        for name in ("n_pixels", "patch", "dim", "depth", "heads", "mlp_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"ViTConfig.{name}={v!r} must be an integer >= 1")
            object.__setattr__(self, name, int(v))  # plain ints (e.g. from HDF5) keep to_dict YAML-safe
        if self.stride is not None and not (isinstance(self.stride, (int, np.integer))
                                            and 1 <= self.stride <= self.patch):
            raise ValueError(f"ViTConfig.stride={self.stride!r} must be None or an integer with "
                             f"1 <= stride <= patch={self.patch}")
        if self.stride is not None:
            object.__setattr__(self, "stride", int(self.stride))
        if self.dim % self.heads:
            raise ValueError(f"ViTConfig.dim={self.dim} must be divisible by heads={self.heads}")
        if self.pos_encoding == "rope" and self.head_dim % 2:
            raise ValueError(f"ViTConfig.pos_encoding='rope' needs an even head dim, "
                             f"got dim/heads = {self.dim}/{self.heads} = {self.head_dim}")
        if not self.labels or len(set(self.labels)) != len(self.labels) \
                or not all(isinstance(s, str) and s for s in self.labels):
            raise ValueError(f"ViTConfig.labels={self.labels!r} must be non-empty, unique label names")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ViTConfig.dropout={self.dropout!r} must be in [0, 1)")
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "predict_sigma", bool(self.predict_sigma))

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """The resolved stride: ``stride`` or, when None, ``patch``."""
        return self.patch if self.stride is None else int(self.stride)

    @property
    def padded_length(self) -> int:
        """Smallest L >= n_pixels (and >= patch) with (L - patch) % step == 0."""
        extra = max(self.n_pixels - self.patch, 0)
        return self.patch + math.ceil(extra / self.step) * self.step

    @property
    def n_pad(self) -> int:
        """Edge-replicated pixels appended on the right."""
        return self.padded_length - self.n_pixels

    @property
    def n_tokens(self) -> int:
        """Patch tokens: (L - patch) // step + 1."""
        return (self.padded_length - self.patch) // self.step + 1

    @property
    def seq_len(self) -> int:
        """Tokens the transformer sees: patch tokens plus the CLS token with ``cls`` pooling."""
        return self.n_tokens + (self.pooling == "cls")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def n_outputs(self) -> int:
        return len(self.labels) * (2 if self.predict_sigma else 1)

    # --- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain dict (labels as a list), safe for YAML/JSON."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ViTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ViTConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_preset(cls, name: str, n_pixels: int, **overrides) -> ViTConfig:
        """``PRESETS[name]`` at ``n_pixels``, with any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown ViT preset {name!r}; known presets: {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], "n_pixels": n_pixels, **overrides})

    def replace(self, **changes) -> ViTConfig:
        return replace(self, **changes)


def n_parameters(cfg: ViTConfig) -> int:
    """Trainable parameters of ``SpecViT(cfg)`` in closed form (no model is built, so sizing
    hundreds of jobs in a dry run costs nothing): tokenizer, CLS token, learned positions,
    the token LayerNorm, per block two LayerNorms, q/k/v, projection and MLP, the final LayerNorm and the head."""
    D, M = cfg.dim, cfg.mlp_dim
    block = 2 * 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * M + M) + (M * D + D)
    return (cfg.patch * D + D                                        # tokenizer (Conv1d or Linear)
            + (2 * D if cfg.token_norm == "layernorm" else 0)        # token LayerNorm
            + (D if cfg.pooling == "cls" else 0)                     # CLS token
            + (cfg.seq_len * D if cfg.pos_encoding == "learned" else 0)
            + cfg.depth * block + 2 * D                              # blocks, final LayerNorm
            + D * cfg.n_outputs + cfg.n_outputs)                     # head


def flops_per_sample(cfg: ViTConfig, training: bool = False) -> float:
    """Analytic forward FLOPs of one spectrum, counted as 2 x multiply-accumulates of the matrix
    products (T = n_tokens, S = seq_len, D = dim, M = mlp_dim):

    * tokenizer     2 T patch D
    * per block     qkv 2 S D 3D + scores q k^T 2 S^2 D + weighted sum A v 2 S^2 D
                    + proj 2 S D^2 + MLP 2 S D M 2
    * head          2 D n_outputs

    Biases, LayerNorm, softmax, GELU, positional encodings and pooling are ignored (O(S D) each).
    With ``training=True`` returns 3x forward (backward ~ 2x forward), the usual estimate.
    """
    T, S, D, M = cfg.n_tokens, cfg.seq_len, cfg.dim, cfg.mlp_dim
    block = 2 * S * D * 3 * D + 2 * 2 * S * S * D + 2 * S * D * D + 2 * 2 * S * D * M
    fwd = 2 * T * cfg.patch * D + cfg.depth * block + 2 * D * cfg.n_outputs
    return float(3 * fwd if training else fwd)
