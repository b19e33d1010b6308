"""Training loop of the ViT: AdamW, warm-up + cosine schedule, clipping, checkpoints and resume.

One run lives in one folder. After every epoch the trainer writes ``last.pt`` (everything
needed to continue) and ``history.csv``; whenever validation R^2 improves it writes
``best.pt``. Started again on a folder with a ``last.pt``, it continues from there: batch
order and noise depend only on (seed, epoch) and dropout is reseeded per epoch, so on a CPU
a resumed run ends with exactly the weights of an uninterrupted one.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import resource
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from specvit.data.loader import InMemorySpectra, NoisyBatches, epoch_generator
from specvit.evaluation.metrics import point_metrics
from specvit.runtime.io import atomic_path
from specvit.runtime.pause import pause_point
from specvit.training.config import LABEL_NORMS, LOSSES, PRECISIONS, TrainConfig  # noqa: F401  (torch-free, re-exported)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_r2", "val_mae", "lr", "grad_norm_median", "grad_norm_max",
                   "epoch_seconds", "samples_per_s"]
# Progress of a run, kept in last.pt (history is copied per use: it is appended to).
FRESH_STATE = {"epoch": 0, "best_r2": -math.inf, "best_epoch": None, "history": [], "lr_factor": 1.0,
               "skipped_steps": 0, "train_seconds": 0.0}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingOutOfMemory(RuntimeError):
    """The accelerator ran out of memory; the message names the batch size to try."""


class LabelScaler:
    """Label normalisation fitted on the training subset and stored with the model."""

    def __init__(self, kind: str, offset: np.ndarray, scale: np.ndarray):
        self.kind, self.offset, self.scale = kind, np.asarray(offset, float), np.asarray(scale, float)

    @classmethod
    def fit(cls, y: np.ndarray, kind: str) -> LabelScaler:
        """``standard``: (y - mean) / std; ``minmax``: (y - min) / (max - min), to [0, 1]."""
        if kind == "standard":
            offset, scale = y.mean(axis=0), y.std(axis=0)
        elif kind == "minmax":
            offset, scale = y.min(axis=0), y.max(axis=0) - y.min(axis=0)
        else:
            raise ValueError(f"label normalisation {kind!r} is not one of {LABEL_NORMS}")
        return cls(kind, offset, np.where(scale > 0, scale, 1.0))

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (y - self.offset) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.offset

    def to_dict(self) -> dict:
        return {"kind": self.kind, "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> LabelScaler:
        return cls(d["kind"], d["offset"], d["scale"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


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


def fingerprint(*parts) -> str:
    """Hash of everything that must match for a checkpoint to be resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _write_history(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


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


def train(model: torch.nn.Module, cfg: TrainConfig, run_dir, labels: tuple[str, ...],
          flux, error: np.ndarray | None, y_train: dict[str, np.ndarray],
          x_val: np.ndarray, y_val: dict[str, np.ndarray], identity: dict | None = None,
          log=print, discard_stale: bool = False) -> dict:
    """Train ``model`` on noise-free ``flux`` + ``error`` (fresh noise per epoch), validate on the
    fixed noisy ``x_val``; checkpoints in ``run_dir``. Returns the run summary (also in the folder).
    ``flux`` is an array (with ``error``) or a store of ``specvit.data.loader`` (``error`` None), e.g.
    an ``HDF5Spectra`` that streams a subset larger than RAM.

    ``identity`` (model config, data sizes, ...) goes into the checkpoint fingerprint: resuming a
    folder written under another identity or training config is refused, or, with
    ``discard_stale`` (the workflow, where a changed config means a new run), its checkpoints
    are deleted and training starts afresh.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    amp = autocast_dtype(cfg.precision, device)
    k = len(labels)
    y_tr = np.stack([y_train[lab] for lab in labels], axis=1).astype(np.float64)
    y_va = np.stack([y_val[lab] for lab in labels], axis=1).astype(np.float64)
    scaler = LabelScaler.fit(y_tr, cfg.label_norm)
    store = InMemorySpectra(flux, error) if isinstance(flux, np.ndarray) else flux
    batches = NoisyBatches.from_store(store, scaler.transform(y_tr), cfg.batch_size, cfg.noise_level, cfg.seed)
    weights = torch.tensor([float(cfg.label_weights.get(lab, 1.0)) for lab in labels], device=device)
    main = labels.index("logg") if "logg" in labels else 0
    steps_per_epoch = len(batches)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = max(1, round(cfg.warmup_epochs * steps_per_epoch))
    fp = fingerprint(asdict(cfg), identity or {}, list(labels), batches.n)

    torch.manual_seed(cfg.seed)
    model.to(device)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    grad_scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    state = dict(FRESH_STATE, history=[])
    if last_path.exists():
        state = _resume(last_path, fp, model, opt, log, discard_stale)

    extras = {"labels": list(labels), "scaler": scaler.to_dict(), "fingerprint": fp}
    for epoch in range(state["epoch"], cfg.epochs):
        torch.manual_seed(int(epoch_generator(cfg.seed + 1, epoch).initial_seed()))  # dropout, if any
        model.train()
        t0 = time.perf_counter()
        losses, grad_norms = [], []
        for step, (xb, yb) in enumerate(batches.epoch(epoch)):
            global_step = epoch * steps_per_epoch + step
            lr = lr_at(global_step, total_steps, warmup_steps, cfg) * state["lr_factor"]
            for group in opt.param_groups:
                group["lr"] = lr
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            with _name_batch_size_on_oom(cfg, device, f"epoch {epoch + 1}, step {step + 1}"):
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    loss = loss_fn(model(xb), yb, cfg, weights)
            if not torch.isfinite(loss):
                if cfg.on_nonfinite == "stop":
                    good = f"{last_path} (after epoch {state['epoch']})" if last_path.exists() else "none yet"
                    raise TrainingDiverged(f"non-finite training loss ({loss.item()}) at epoch {epoch + 1}, "
                                           f"step {step + 1}; last good checkpoint: {good}. Try a lower "
                                           f"learning rate, a longer warm-up or gradient clipping.")
                opt.zero_grad(set_to_none=True)
                state["lr_factor"] *= 0.5
                state["skipped_steps"] += 1
                log(f"epoch {epoch + 1} step {step + 1}: non-finite loss, step skipped, "
                    f"learning rate factor now {state['lr_factor']:g}")
                continue
            with _name_batch_size_on_oom(cfg, device, f"epoch {epoch + 1}, step {step + 1} (backward)"):
                grad_scaler.scale(loss).backward()
            grad_scaler.unscale_(opt)
            max_norm = cfg.clip if cfg.clip > 0 else float("inf")
            grad_norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
            grad_scaler.step(opt)
            grad_scaler.update()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            pause_point("train_step")
        seconds = time.perf_counter() - t0
        pred = scaler.inverse(predict_normalised(model, x_val, k, device, amp))
        val = point_metrics(y_va[:, main], pred[:, main])
        val_r2, val_mae = val["r2"], val["mae"]
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "val_r2": val_r2, "val_mae": val_mae, "lr": lr,
               "grad_norm_median": float(np.median(grad_norms)) if grad_norms else float("nan"),
               "grad_norm_max": float(np.max(grad_norms)) if grad_norms else float("nan"),
               "epoch_seconds": seconds, "samples_per_s": batches.n / seconds}
        state["history"].append(row)
        state["epoch"] = epoch + 1
        state["train_seconds"] += seconds
        if math.isfinite(val_r2) and val_r2 > state["best_r2"]:
            state["best_r2"], state["best_epoch"] = val_r2, epoch + 1
            _save({"model": model.state_dict(), "epoch": epoch + 1, **extras}, best_path)
        _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state, **extras}, last_path)
        _write_history(state["history"], run_dir / "history.csv")
        log(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  val R2 {val_r2:.4f}  "
            f"val MAE {val_mae:.4f}  lr {lr:.2e}  |g| {row['grad_norm_median']:.2f}  "
            f"{row['samples_per_s']:,.0f} samples/s")
    if state["best_epoch"] is None:
        raise TrainingDiverged(f"no epoch of {run_dir} produced a finite validation R^2; no best checkpoint")
    return {"best_epoch": state["best_epoch"], "best_val_r2": state["best_r2"], "epochs": state["epoch"],
            "train_seconds": state["train_seconds"], "skipped_steps": state["skipped_steps"],
            "device": str(device), "precision": str(amp or torch.float32).replace("torch.", ""),
            "peak_memory_mb": peak_memory_mb(device), "scaler": scaler.to_dict()}


@contextmanager
def _name_batch_size_on_oom(cfg: TrainConfig, device: torch.device, where: str):
    """Turn an accelerator out-of-memory error into one that says which batch size to try.

    Checkpoints are untouched, so rerunning with the smaller batch size starts afresh (the batch
    size is part of the run's fingerprint) and nothing half-written is left."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        smaller = max(1, cfg.batch_size // 2)
        raise TrainingOutOfMemory(
            f"{device} ran out of memory at {where} with training.batch_size = {cfg.batch_size}; "
            f"try training.batch_size: {smaller} (or a smaller ViT preset, or precision bf16). "
            f"Original error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _resume(path: Path, fp: str, model, opt, log, discard_stale: bool) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"cannot resume from {path}: not a readable checkpoint ({exc}); "
                         f"delete it to start the run afresh") from None
    if ckpt.get("fingerprint") != fp and discard_stale:
        for name in ("last.pt", "best.pt", "history.csv"):
            (path.parent / name).unlink(missing_ok=True)
        log(f"{path.parent}: checkpoints were written by an earlier configuration; starting afresh")
        return dict(FRESH_STATE, history=[])
    if ckpt.get("fingerprint") != fp:
        raise ValueError(f"cannot resume from {path}: it was written by a different configuration "
                         f"(model, training settings, labels or data size changed); delete the run "
                         f"folder or restore the configuration it was trained with")
    model.load_state_dict(ckpt["model"])
    # A checkpoint's param groups carry the implementation it was written with (fused on a GPU);
    # a run resumed on another device keeps the one chosen for this device.
    implementation = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups]
    opt.load_state_dict(ckpt["optimizer"])
    for group, kept in zip(opt.param_groups, implementation):
        group.update(kept)
    state = ckpt["state"]
    log(f"resuming {path.parent} after epoch {state['epoch']}")
    return state
