"""The checkpoints of a training run and resuming from them.

After every epoch the trainer writes ``last.pt`` (everything needed to continue) and
``history.csv`` (one row per epoch); whenever validation R^2 improves, ``best.pt``. A checkpoint
carries the fingerprint of everything that must match for it to be resumed."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from specvit.runtime.hashing import json_digest
from specvit.runtime.io import atomic_path

HISTORY_COLUMNS = ["epoch", "steps", "train_loss", "val_r2", "val_mae", "lr", "grad_norm_median", "grad_norm_max",
                   "epoch_seconds", "samples_per_s"]
# Progress of a run, kept in last.pt (history is copied per use: it is appended to).
FRESH_STATE = {"epoch": 0, "best_r2": -math.inf, "best_epoch": None, "history": [], "lr_factor": 1.0,
               "skipped_steps": 0, "steps": 0, "train_seconds": 0.0}


def fingerprint(*parts) -> str:
    """Hash of everything that must match for a checkpoint to be resumed."""
    return json_digest(parts)


def save_checkpoint(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_history(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def discard_checkpoints(folder: Path, log) -> None:
    """Delete a run folder's checkpoints and history (written by an earlier configuration)."""
    for name in ("last.pt", "best.pt", "history.csv"):
        (folder / name).unlink(missing_ok=True)
    log(f"{folder}: checkpoints were written by an earlier configuration; starting afresh")


def resume(path: Path, fp: str, model, opt, log, discard_stale: bool, *, remove: bool = True) -> dict | None:
    """The progress saved in ``path`` (``last.pt``), with its weights and optimizer state loaded into
    ``model`` and ``opt``; a fresh state when the checkpoint is stale and ``discard_stale`` (its
    files deleted; with ``remove`` False they are left, and None says they are stale)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"cannot resume from {path}: not a readable checkpoint ({exc}); "
                         f"delete it to start the run afresh") from None
    if ckpt.get("fingerprint") != fp and discard_stale:
        if not remove:
            return None
        discard_checkpoints(path.parent, log)
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
