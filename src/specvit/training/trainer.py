"""Training loop of the ViT: AdamW, warm-up + cosine schedule, clipping, checkpoints and resume.

One run lives in one folder (``specvit.training.checkpoints``). After every epoch the trainer
writes ``last.pt`` (everything needed to continue) and ``history.csv``; whenever validation R^2
improves it writes ``best.pt``. Started again on a folder with a ``last.pt``, it continues from
there: batch order and noise depend only on (seed, epoch) and dropout is reseeded per epoch, so
on a CPU a resumed run ends with exactly the weights of an uninterrupted one.

``train`` reads as its three steps: ``_set_up`` (scaler, batches, optimizer), ``_train_epoch``
(one pass over the batches) and ``_end_epoch`` (validation, checkpoints, history).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specvit.data.loader import InMemorySpectra, NoisyBatches, epoch_generator
from specvit.evaluation.metrics import point_metrics
from specvit.runtime.pause import pause_point
from specvit.training.checkpoints import FRESH_STATE, fingerprint, resume, save_checkpoint, write_history
from specvit.training.config import TrainConfig
from specvit.training.device import autocast_dtype, peak_memory_mb, predict_normalised, resolve_device
from specvit.training.optim import loss_fn, lr_at, make_optimizer
from specvit.training.scaling import LabelScaler


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingOutOfMemory(RuntimeError):
    """The accelerator ran out of memory; the message names the batch size to try."""


@dataclass(frozen=True, eq=False)
class TrainingData:
    """What the ViT trains on: noise-free training spectra ``flux`` [N, P] with their 1-sigma
    ``error`` (fresh noise every epoch), or a store of ``specvit.data.loader`` holding both
    (``error`` None; e.g. an ``HDF5Spectra`` that streams a subset larger than RAM); the training
    labels {label: [N]}; and the fixed noisy validation set that picks the best epoch."""

    labels: tuple[str, ...]
    flux: Any
    error: np.ndarray | None
    y_train: dict[str, np.ndarray]
    x_val: np.ndarray
    y_val: dict[str, np.ndarray]


@dataclass(frozen=True)
class RunFolder:
    """Where a run keeps its checkpoints, and what must match to resume there.

    ``identity`` (model config, data sizes, ...) goes into the checkpoint fingerprint with the
    training config: resuming a folder written under another identity or training config is
    refused, or, with ``discard_stale`` (the workflow, where a changed config means a new run),
    its checkpoints are deleted and training starts afresh."""

    path: Path
    identity: dict = field(default_factory=dict)
    discard_stale: bool = False

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))


@dataclass
class _Run:
    """A run once set up: what every epoch needs."""

    model: torch.nn.Module
    cfg: TrainConfig
    data: TrainingData
    folder: Path
    device: torch.device
    amp: torch.dtype | None
    scaler: LabelScaler
    batches: NoisyBatches
    weights: torch.Tensor           # loss weight per label
    main: int                       # the label that validation scores: log g, else the first
    y_val: np.ndarray               # [N_val, K] float64
    steps_per_epoch: int
    epochs: int                     # training.epochs, raised to reach training.min_steps
    total_steps: int
    warmup_steps: int
    fingerprint: str
    opt: torch.optim.Optimizer
    grad_scaler: torch.amp.GradScaler

    @property
    def last_path(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    def extras(self) -> dict:
        """What every checkpoint records besides the weights."""
        return {"labels": list(self.data.labels), "scaler": self.scaler.to_dict(), "fingerprint": self.fingerprint}


def train(model: torch.nn.Module, cfg: TrainConfig, data: TrainingData, run: RunFolder | str | Path, *,
          log=print) -> dict:
    """Train ``model`` on ``data`` (fresh noise per epoch; validation on the fixed noisy set) with
    checkpoints in ``run`` (a folder, or a ``RunFolder`` with the identity that must match to
    resume there). Returns the run summary (also in the folder)."""
    folder = run if isinstance(run, RunFolder) else RunFolder(Path(run))
    folder.path.mkdir(parents=True, exist_ok=True)
    r = _set_up(model, cfg, data, folder)
    state = dict(FRESH_STATE, history=[])
    if r.last_path.exists():
        state = resume(r.last_path, r.fingerprint, model, r.opt, log, folder.discard_stale)
    for epoch in range(state["epoch"], r.epochs):
        torch.manual_seed(int(epoch_generator(cfg.seed + 1, epoch).initial_seed()))  # dropout, if any
        _end_epoch(r, state, epoch, _train_epoch(r, state, epoch, log), log)
    if state["best_epoch"] is None:
        raise TrainingDiverged(f"no epoch of {folder.path} produced a finite validation R^2; no best checkpoint")
    return {"best_epoch": state["best_epoch"], "best_val_r2": state["best_r2"], "epochs": state["epoch"],
            "steps": state.get("steps", 0), "fresh_noise": cfg.fresh_noise, "train_seconds": state["train_seconds"],
            "skipped_steps": state["skipped_steps"],
            "device": str(r.device), "precision": str(r.amp or torch.float32).replace("torch.", ""),
            "peak_memory_mb": peak_memory_mb(r.device), "scaler": r.scaler.to_dict()}


def _set_up(model: torch.nn.Module, cfg: TrainConfig, data: TrainingData, folder: RunFolder) -> _Run:
    """Label scaler, noisy batches, schedule, fingerprint, then the model on its device and its optimizer."""
    device = resolve_device(cfg.device)
    amp = autocast_dtype(cfg.precision, device)
    labels = data.labels
    y_tr = np.stack([data.y_train[lab] for lab in labels], axis=1).astype(np.float64)
    y_va = np.stack([data.y_val[lab] for lab in labels], axis=1).astype(np.float64)
    scaler = LabelScaler.fit(y_tr, cfg.label_norm)
    store = InMemorySpectra(data.flux, data.error) if isinstance(data.flux, np.ndarray) else data.flux
    batches = NoisyBatches.from_store(store, scaler.transform(y_tr), cfg.batch_size, cfg.noise_level, cfg.seed,
                                      fresh_noise=cfg.fresh_noise)
    weights = torch.tensor([float(cfg.label_weights.get(lab, 1.0)) for lab in labels], device=device)
    main = labels.index("logg") if "logg" in labels else 0
    steps_per_epoch = len(batches)
    epochs = cfg.epochs_for(steps_per_epoch)
    total_steps = epochs * steps_per_epoch
    warmup_steps = max(1, round(cfg.warmup_epochs * steps_per_epoch))
    fp = fingerprint(asdict(cfg), folder.identity or {}, list(labels), batches.n)

    torch.manual_seed(cfg.seed)
    model.to(device)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    grad_scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    return _Run(model=model, cfg=cfg, data=data, folder=folder.path, device=device, amp=amp, scaler=scaler,
                batches=batches, weights=weights, main=main, y_val=y_va, steps_per_epoch=steps_per_epoch,
                epochs=epochs, total_steps=total_steps, warmup_steps=warmup_steps, fingerprint=fp, opt=opt,
                grad_scaler=grad_scaler)


def _train_epoch(r: _Run, state: dict, epoch: int, log) -> tuple[list[float], list[float], float, float]:
    """One pass over the batches: (losses, gradient norms, the last learning rate, seconds)."""
    model, cfg, opt, device, amp = r.model, r.cfg, r.opt, r.device, r.amp
    model.train()
    t0 = time.perf_counter()
    losses, grad_norms = [], []
    for step, (xb, yb) in enumerate(r.batches.epoch(epoch)):
        global_step = epoch * r.steps_per_epoch + step
        lr = lr_at(global_step, r.total_steps, r.warmup_steps, cfg) * state["lr_factor"]
        for group in opt.param_groups:
            group["lr"] = lr
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        with _name_batch_size_on_oom(cfg, device, f"epoch {epoch + 1}, step {step + 1}"):
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = loss_fn(model(xb), yb, cfg, r.weights)
        if not torch.isfinite(loss):
            if cfg.on_nonfinite == "stop":
                good = f"{r.last_path} (after epoch {state['epoch']})" if r.last_path.exists() else "none yet"
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
            r.grad_scaler.scale(loss).backward()
        r.grad_scaler.unscale_(opt)
        max_norm = cfg.clip if cfg.clip > 0 else float("inf")
        grad_norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
        r.grad_scaler.step(opt)
        r.grad_scaler.update()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        pause_point("train_step")
    return losses, grad_norms, lr, time.perf_counter() - t0


def _end_epoch(r: _Run, state: dict, epoch: int, trained: tuple, log) -> None:
    """Validate, record the epoch in ``state`` and the history, and write the checkpoints."""
    losses, grad_norms, lr, seconds = trained
    pred = r.scaler.inverse(predict_normalised(r.model, r.data.x_val, len(r.data.labels), r.device, r.amp))
    val = point_metrics(r.y_val[:, r.main], pred[:, r.main])
    val_r2, val_mae = val["r2"], val["mae"]
    row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
           "val_r2": val_r2, "val_mae": val_mae, "lr": lr,
           "grad_norm_median": float(np.median(grad_norms)) if grad_norms else float("nan"),
           "grad_norm_max": float(np.max(grad_norms)) if grad_norms else float("nan"),
           "epoch_seconds": seconds, "samples_per_s": r.batches.n / seconds}
    state["steps"] = state.get("steps", 0) + len(grad_norms)  # optimizer steps taken (skipped ones not)
    row["steps"] = state["steps"]
    state["history"].append(row)
    state["epoch"] = epoch + 1
    state["train_seconds"] += seconds
    if math.isfinite(val_r2) and val_r2 > state["best_r2"]:
        state["best_r2"], state["best_epoch"] = val_r2, epoch + 1
        save_checkpoint({"model": r.model.state_dict(), "epoch": epoch + 1, **r.extras()}, r.best_path)
    save_checkpoint({"model": r.model.state_dict(), "optimizer": r.opt.state_dict(), "state": state, **r.extras()},
                    r.last_path)
    write_history(state["history"], r.folder / "history.csv")
    log(f"epoch {epoch + 1}/{r.epochs}  loss {row['train_loss']:.4f}  val R2 {val_r2:.4f}  "
        f"val MAE {val_mae:.4f}  lr {lr:.2e}  |g| {row['grad_norm_median']:.2f}  "
        f"{row['samples_per_s']:,.0f} samples/s")


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
