"""The optimisation of the ViT: AdamW, the warm-up + cosine learning-rate schedule, and the losses."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from specvit.training.config import TrainConfig


def lr_at(step: int, total_steps: int, warmup_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up from 0 to ``lr``, then cosine decay to ``min_lr`` at the last step."""
    if step < warmup_steps:
        return cfg.lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * min(1.0, progress)))


def loss_fn(out: torch.Tensor, target: torch.Tensor, cfg: TrainConfig, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean over labels of the per-label loss; ``out`` holds [means | log-variances] for NLL."""
    k = target.shape[1]
    mean = out[:, :k].float()
    if cfg.loss == "gaussian_nll":
        log_var = out[:, k:].float().clamp(-12.0, 12.0)
        per = 0.5 * (log_var + (mean - target) ** 2 * torch.exp(-log_var))
    elif cfg.loss == "mse":
        per = (mean - target) ** 2
    elif cfg.loss == "l1":
        per = (mean - target).abs()
    else:
        per = F.huber_loss(mean, target, reduction="none", delta=cfg.huber_delta)
    return (per.mean(dim=0) * weights).sum() / weights.sum()


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float,
                   fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on biases, LayerNorm, CLS or 1-D tables).
    ``fused`` None: the fused implementation when the model is on a GPU (the same update in one
    kernel launch instead of several per parameter group, which matters for small models whose
    steps are launch-bound), else PyTorch's default."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    if fused is None:
        fused = all(p.is_cuda for p in model.parameters())
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.999),
                             fused=fused or None)
