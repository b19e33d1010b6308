"""Training loop of the ViT: AdamW, warm-up + cosine schedule, clipping, checkpoints and resume.

One run lives in one folder (``specvit.training.checkpoints``). After every epoch the trainer
writes ``last.pt`` (everything needed to continue) and ``history.csv``; whenever validation R^2
improves it writes ``best.pt``. Started again on a folder with a ``last.pt``, it continues from
there: batch order and noise depend only on (seed, epoch) and dropout is reseeded per epoch, so
on a CPU a resumed run ends with exactly the weights of an uninterrupted one.

``train`` reads as its three steps: ``_set_up`` (scaler, batches, optimizer), an epoch of steps
(``specvit.training.steps``) and ``_end_epoch`` (validation, checkpoints, history).

Where the batches come from: on a CPU (the default ``training.device_data: auto``) the loader of
``specvit.data.loader`` draws them in the trainer's thread and every step is read back at once,
as always. On a GPU the training subset moves to the device's memory when it fits
``training.device_data_budget`` of it and the batches are drawn there
(``specvit.data.device_loader.DeviceBatches``); otherwise the same loader runs in a background
thread that hands pinned batches over (``prefetched``). There, and wherever the data are resident
(``device_data: resident`` also on a CPU), the steps are not read back until the epoch ends
(``steps.device_epoch``). ``training.compile`` compiles the model for the training steps;
``training.devices`` > 1 runs are several processes (``specvit.training.distributed``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specvit.data.device_loader import DeviceBatches, prefetched
from specvit.data.loader import InMemorySpectra, NoisyBatches
from specvit.evaluation.metrics import point_metrics
from specvit.training.checkpoints import (
    FRESH_STATE,
    discard_checkpoints,
    fingerprint,
    resume,
    save_checkpoint,
    write_history,
)
from specvit.training.config import TrainConfig
from specvit.training.device import (
    autocast_dtype,
    choose_data_path,
    peak_memory_mb,
    predict_normalised,
    resolve_device,
)
from specvit.training.distributed import World
from specvit.training.optim import make_optimizer
from specvit.training.scaling import LabelScaler
from specvit.training.steps import TrainingDiverged, TrainingOutOfMemory, device_epoch, host_epoch

__all__ = ["RunFolder", "TrainConfig", "TrainingData", "TrainingDiverged", "TrainingOutOfMemory", "train"]


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
    batches: NoisyBatches | DeviceBatches
    data_path: str                  # "stream" (the host loader) or "resident" (DeviceBatches)
    world: World                    # this process among the data-parallel ranks
    step_model: torch.nn.Module     # what the steps call: the model, compiled and/or in DDP
    lr: torch.Tensor | None         # the device loop's learning rate (a tensor the optimizer reads)
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

    def epoch_batches(self, epoch: int):
        """The batches of ``epoch``: drawn on the device, prefetched for a GPU, or drawn here."""
        batches = self.batches.epoch(epoch)
        if self.data_path == "stream" and self.device.type == "cuda":
            return prefetched(batches, self.device)
        return batches


def train(model: torch.nn.Module, cfg: TrainConfig, data: TrainingData, run: RunFolder | str | Path, *,
          log=print) -> dict:
    """Train ``model`` on ``data`` (fresh noise per epoch; validation on the fixed noisy set) with
    checkpoints in ``run`` (a folder, or a ``RunFolder`` with the identity that must match to
    resume there). Returns the run summary (also in the folder)."""
    folder = run if isinstance(run, RunFolder) else RunFolder(Path(run))
    world = World.current()
    if world.main:
        folder.path.mkdir(parents=True, exist_ok=True)
    r = _set_up(model, cfg, data, folder, world, log)
    if cfg.devices != world.size and world.main:
        log(f"training.devices = {cfg.devices}, but {world.size} process(es) train this run (only the rule "
            f"train_run starts data-parallel runs; specvit.training.ddp_launch)")
    state = _resume(r, folder, log if world.main else _quiet)
    epoch_of = device_epoch if r.lr is not None else host_epoch
    for epoch in range(state["epoch"], r.epochs):
        torch.manual_seed(world.dropout_seed(cfg.seed, epoch))  # dropout, if any
        _end_epoch(r, state, epoch, epoch_of(r, state, epoch, log), log)
    world.barrier()  # every rank may read best.pt once rank 0 has written it
    if state["best_epoch"] is None:
        raise TrainingDiverged(f"no epoch of {folder.path} produced a finite validation R^2; no best checkpoint")
    return {"best_epoch": state["best_epoch"], "best_val_r2": state["best_r2"], "epochs": state["epoch"],
            "steps": state.get("steps", 0), "fresh_noise": cfg.fresh_noise, "train_seconds": state["train_seconds"],
            "skipped_steps": state["skipped_steps"],
            "device": str(r.device), "precision": str(r.amp or torch.float32).replace("torch.", ""),
            "data": r.data_path, "compiled": cfg.compile, "devices": world.size,
            "peak_memory_mb": peak_memory_mb(r.device), "scaler": r.scaler.to_dict()}


def _quiet(*_args) -> None:
    pass


def _resume(r: _Run, folder: RunFolder, log) -> dict:
    """The progress to continue from: fresh, or ``last.pt``'s (read by every rank; a stale one is
    deleted by rank 0 once every rank has read it)."""
    has_last = r.last_path.exists()
    r.world.barrier()  # every rank has looked before any deletes
    state = dict(FRESH_STATE, history=[])
    if has_last:
        resumed = resume(r.last_path, r.fingerprint, r.model, r.opt, log, folder.discard_stale, remove=False)
        r.world.barrier()
        if resumed is None:
            if r.world.main:
                discard_checkpoints(r.folder, log)
        else:
            state = resumed
    return state


def _set_up(model: torch.nn.Module, cfg: TrainConfig, data: TrainingData, folder: RunFolder, world: World,
            log) -> _Run:
    """Label scaler, noisy batches, schedule, fingerprint, then the model on its device and its optimizer."""
    device = resolve_device(cfg.device)
    amp = autocast_dtype(cfg.precision, device)
    labels = data.labels
    y_tr = np.stack([data.y_train[lab] for lab in labels], axis=1).astype(np.float64)
    y_va = np.stack([data.y_val[lab] for lab in labels], axis=1).astype(np.float64)
    scaler = LabelScaler.fit(y_tr, cfg.label_norm)
    store = InMemorySpectra(data.flux, data.error) if isinstance(data.flux, np.ndarray) else data.flux
    data_path = choose_data_path(cfg, device, store.n, store.n_pixels)
    kind = DeviceBatches if data_path == "resident" else NoisyBatches.from_store
    batches = kind(store, scaler.transform(y_tr), cfg.batch_size, cfg.noise_level, cfg.seed,
                   fresh_noise=cfg.fresh_noise, **({"device": device} if data_path == "resident" else {}))
    if data_path == "resident" and world.main:
        log(f"training data: the {store.n} spectra held on {device}, batches and noise drawn there")
    # read nothing back until an epoch ends: on an accelerator, and with resident data (needs the
    # fused AdamW; fp16's loss scaling reads back every step and keeps the host loop)
    deferred = (device.type != "cpu" or data_path == "resident") and amp is not torch.float16
    weights = torch.tensor([float(cfg.label_weights.get(lab, 1.0)) for lab in labels], device=device)
    main = labels.index("logg") if "logg" in labels else 0
    steps_per_epoch = len(batches)
    epochs = cfg.epochs_for(steps_per_epoch)
    total_steps = epochs * steps_per_epoch
    warmup_steps = max(1, round(cfg.warmup_epochs * steps_per_epoch))
    fp = fingerprint(asdict(cfg), folder.identity or {}, list(labels), batches.n)

    torch.manual_seed(cfg.seed)
    model.to(device)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay, fused=True if deferred else None)
    grad_scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    step_model = world.wrap(model, device)
    if cfg.compile:
        step_model = torch.compile(step_model)
    return _Run(model=model, cfg=cfg, data=data, folder=folder.path, device=device, amp=amp, scaler=scaler,
                batches=batches, data_path=data_path, world=world, step_model=step_model,
                lr=torch.tensor(cfg.lr, device=device) if deferred else None,
                weights=weights, main=main, y_val=y_va, steps_per_epoch=steps_per_epoch,
                epochs=epochs, total_steps=total_steps, warmup_steps=warmup_steps, fingerprint=fp, opt=opt,
                grad_scaler=grad_scaler)


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
    improved = math.isfinite(val_r2) and val_r2 > state["best_r2"]
    if improved:
        state["best_r2"], state["best_epoch"] = val_r2, epoch + 1
    if not r.world.main:  # every rank keeps the same state; rank 0 writes it
        return
    if improved:
        save_checkpoint({"model": r.model.state_dict(), "epoch": epoch + 1, **r.extras()}, r.best_path)
    save_checkpoint({"model": r.model.state_dict(), "optimizer": r.opt.state_dict(), "state": state, **r.extras()},
                    r.last_path)
    write_history(state["history"], r.folder / "history.csv")
    log(f"epoch {epoch + 1}/{r.epochs}  loss {row['train_loss']:.4f}  val R2 {val_r2:.4f}  "
        f"val MAE {val_mae:.4f}  lr {lr:.2e}  |g| {row['grad_norm_median']:.2f}  "
        f"{row['samples_per_s']:,.0f} samples/s")
