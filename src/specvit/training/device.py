"""Where and in which precision the ViT runs: the device, the autocast dtype, batched inference
and the peak memory a run used."""
from __future__ import annotations

import resource

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@torch.no_grad()
def predict_normalised(model: torch.nn.Module, x: np.ndarray, n_labels: int, device: torch.device,
                       amp: torch.dtype | None, batch_size: int = 1024) -> np.ndarray:
    """Normalised label means [N, K] of spectra ``x`` (float32 [N, P]) in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size])).to(device)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out.append(model(xb)[:, :n_labels].float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out).astype(np.float64)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
