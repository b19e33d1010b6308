"""Where and in which precision the ViT runs: the device, where its training batches come from, the
autocast dtype, batched inference and the peak memory a run used."""
from __future__ import annotations

import resource

import numpy as np
import torch

from specvit.data.device_loader import resident_bytes
from specvit.training.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    """The device of ``training.device``; ``auto`` and ``cuda`` name the current GPU by its index (a
    data-parallel rank's own, set when the rank starts)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of a GPU; None for the CPU (its spectra are in RAM already)."""
    return torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None


def choose_data_path(cfg: TrainConfig, device: torch.device, n: int, n_pixels: int) -> str:
    """Where the training batches come from: ``resident`` (the subset in the device's memory, batches
    drawn there) or ``stream`` (the host loader). ``training.device_data: auto`` is resident on a GPU
    when the subset fits ``training.device_data_budget`` of its memory, the host loader on a CPU;
    ``resident`` asks for it anywhere (on a GPU only within the budget), ``stream`` never."""
    if cfg.device_data == "stream" or (cfg.device_data == "auto" and device.type == "cpu"):
        return "stream"
    need, total = resident_bytes(n, n_pixels, cfg.fresh_noise), device_memory_bytes(device)
    if total is None or need <= cfg.device_data_budget * total:
        return "resident"
    if cfg.device_data == "resident":
        raise ValueError(f"training.device_data = 'resident': the {n} training spectra need {need / 2**30:.2f} GiB "
                         f"on {device}, more than training.device_data_budget = {cfg.device_data_budget:g} of its "
                         f"{total / 2**30:.1f} GiB; raise the budget, or set training.device_data: auto to stream them")
    return "stream"


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
