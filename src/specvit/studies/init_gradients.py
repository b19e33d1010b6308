"""Gradient norms of a freshly initialised ViT on one batch: the evidence of the tokenization
ablation (P0.5).

With stride = patch the C1D and SW tokenizers are the same linear map of each window, so a
difference between them at initialisation can only come from how their weights are drawn. The
paper measured SW's gradient norm at 2x C1D's in a single-step test. This module repeats that test
per variant over several initialisation seeds (the spread between seeds is as large as the effect,
so one seed proves nothing) and splits the norm into the tokenizer's and the transformer blocks'.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from specvit.models.vit import ViTConfig, build_vit
from specvit.studies.ablations import tokenizer_columns

INIT_COLUMNS = ["variant", "seed", "grad_norm_total", "grad_norm_tokenizer", "grad_norm_blocks", "token_std"]


def _norm(params) -> float:
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None)))


def init_gradient_norms(vit: dict, x: np.ndarray, y: np.ndarray, seeds, wave=None) -> list[dict]:
    """Per seed: the gradient norm of the MSE loss on standardised ``y`` at the initial weights
    (whole model, tokenizer, transformer blocks) and the standard deviation of the tokens the
    tokenizer produces. ``x`` float32 [B, P] noisy spectra, ``y`` [B] one label."""
    cfg = ViTConfig.from_dict({**vit, "n_pixels": x.shape[1]})
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)[:, None]
    rows = []
    for seed in seeds:
        torch.manual_seed(int(seed))  # as the trainer does before building the model
        model = build_vit(cfg, wave)
        loss = ((model(xt)[:, :1] - yt) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            tokens = model.tokenizer(model.pad(xt))
        rows.append({"seed": int(seed), "grad_norm_total": _norm(model.parameters()),
                     "grad_norm_tokenizer": _norm(model.tokenizer.parameters()),
                     "grad_norm_blocks": _norm([p for b in model.blocks for p in b.parameters()]),
                     "token_std": float(tokens.std())})
    return rows


def init_gradient_table(variants: dict[str, dict], x, y, seeds, wave=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-seed rows, summary: mean and std over seeds per variant) for {variant: ViT settings}."""
    rows = [{"variant": name, **r} for name, vit in variants.items()
            for r in init_gradient_norms(vit, x, y, seeds, wave)]
    long = pd.DataFrame(rows, columns=INIT_COLUMNS)
    summary = []
    for name, part in long.groupby("variant", sort=False):
        vit = variants[name]
        row = {"variant": name, **tokenizer_columns(vit), "n_seeds": len(part)}
        for col in INIT_COLUMNS[2:]:
            row[f"{col}_mean"] = float(part[col].mean())
            row[f"{col}_std"] = float(part[col].std(ddof=1)) if len(part) > 1 else float("nan")
        summary.append(row)
    return long, pd.DataFrame(summary)
