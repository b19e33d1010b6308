"""One epoch of optimizer steps, in two forms with the same behaviour.

``host_epoch`` is the CPU trainer's loop: after every step it asks the host whether the loss was
finite and reads the loss and the gradient norm (free on a CPU, where nothing runs ahead).
``device_epoch`` is the accelerator's loop: nothing is read back during the epoch. The non-finite
check, the losses and gradient norms stay on the device and are read once, when the epoch ends: a
non-finite step is skipped on the device (the fused AdamW's ``found_inf``) and, with
``on_nonfinite: skip``, the learning-rate factor is halved there too (a tensor learning rate), so
the weights are those of the host loop; with ``stop`` the epoch's remaining steps are skipped as
well and the error, raised when the epoch ends, names the epoch and step of the first non-finite
loss. Both return (losses, gradient norms, last learning rate, seconds) of the epoch's taken steps.

Each takes the trainer's run (``specvit.training.trainer._Run``): the model, optimizer, batches,
schedule and this process's place among the data-parallel ranks (``specvit.training.distributed``).
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch

from specvit.runtime.pause import pause_point
from specvit.training.config import TrainConfig
from specvit.training.optim import loss_fn, lr_at


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingOutOfMemory(RuntimeError):
    """The accelerator ran out of memory; the message names the batch size to try."""


def _forward_loss(r, xb, yb, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss to differentiate, the whole batch's mean loss) of one step: this rank's rows, and
    its loss weighted by its share of the batch (``World.split``)."""
    device, amp = r.device, r.amp
    xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
    xb, yb, share = r.world.split(xb, yb)
    with name_batch_size_on_oom(r.cfg, device, f"epoch {epoch + 1}, step {step + 1}"):
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = loss_fn(r.step_model(xb), yb, r.cfg, r.weights)
    if share is not None:
        loss = loss * share
    return loss, r.world.mean(loss)


def _diverged(r, state: dict, loss: float, epoch: int, step: int) -> TrainingDiverged:
    good = f"{r.last_path} (after epoch {state['epoch']})" if r.last_path.exists() else "none yet"
    return TrainingDiverged(f"non-finite training loss ({loss}) at epoch {epoch + 1}, step {step + 1}; last good "
                            f"checkpoint: {good}. Try a lower learning rate, a longer warm-up or gradient clipping.")


def _skipped(epoch: int, step: int, factor: float) -> str:
    return f"epoch {epoch + 1} step {step + 1}: non-finite loss, step skipped, learning rate factor now {factor:g}"


def host_epoch(r, state: dict, epoch: int, log) -> tuple[list[float], list[float], float, float]:
    """One pass over the batches, the loss and gradient norm read after every step."""
    cfg, opt = r.cfg, r.opt
    r.step_model.train()
    t0 = time.perf_counter()
    losses, grad_norms = [], []
    for step, (xb, yb) in enumerate(r.epoch_batches(epoch)):
        global_step = epoch * r.steps_per_epoch + step
        lr = lr_at(global_step, r.total_steps, r.warmup_steps, cfg) * state["lr_factor"]
        for group in opt.param_groups:
            group["lr"] = lr
        loss, seen = _forward_loss(r, xb, yb, epoch, step)
        if not torch.isfinite(seen):
            if cfg.on_nonfinite == "stop":
                raise _diverged(r, state, seen.item(), epoch, step)
            if r.world.size > 1:
                loss.backward()  # every rank takes part in each step's gradient all-reduce
            opt.zero_grad(set_to_none=True)
            state["lr_factor"] *= 0.5
            state["skipped_steps"] += 1
            log(_skipped(epoch, step, state["lr_factor"]))
            continue
        with name_batch_size_on_oom(cfg, r.device, f"epoch {epoch + 1}, step {step + 1} (backward)"):
            r.grad_scaler.scale(loss).backward()
        r.grad_scaler.unscale_(opt)
        max_norm = cfg.clip if cfg.clip > 0 else float("inf")
        grad_norms.append(float(torch.nn.utils.clip_grad_norm_(r.model.parameters(), max_norm)))
        r.grad_scaler.step(opt)
        r.grad_scaler.update()
        opt.zero_grad(set_to_none=True)
        losses.append(seen.item())
        pause_point("train_step")
    return losses, grad_norms, lr, time.perf_counter() - t0


def device_epoch(r, state: dict, epoch: int, log) -> tuple[list[float], list[float], float, float]:
    """One pass over the batches with no read-back until it ends (fused AdamW, tensor learning rate)."""
    cfg, opt, device = r.cfg, r.opt, r.device
    r.step_model.train()
    t0 = time.perf_counter()
    factor = torch.tensor(state["lr_factor"], device=device)
    for group in opt.param_groups:
        group["lr"] = r.lr  # one device tensor, rewritten every step (a resumed optimizer brings floats)
    stopped = torch.zeros((), dtype=torch.bool, device=device)
    max_norm = cfg.clip if cfg.clip > 0 else float("inf")
    losses, grad_norms, bad, schedule = [], [], [], []
    for step, (xb, yb) in enumerate(r.epoch_batches(epoch)):
        schedule.append(lr_at(epoch * r.steps_per_epoch + step, r.total_steps, r.warmup_steps, cfg))
        torch.mul(factor, schedule[-1], out=r.lr)
        loss, seen = _forward_loss(r, xb, yb, epoch, step)
        nonfinite = ~torch.isfinite(seen)
        with name_batch_size_on_oom(cfg, device, f"epoch {epoch + 1}, step {step + 1} (backward)"):
            loss.backward()
        grad_norms.append(torch.nn.utils.clip_grad_norm_(r.model.parameters(), max_norm))
        if cfg.on_nonfinite == "stop":
            stopped = stopped | nonfinite  # no step after the first non-finite loss
        opt.found_inf = (stopped | nonfinite).float()  # the fused AdamW leaves the weights alone when 1
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cfg.on_nonfinite == "skip":
            factor = torch.where(nonfinite, factor * 0.5, factor)
        losses.append(seen.detach())
        bad.append(nonfinite)
        pause_point("train_step")
    opt.found_inf = None
    return _read_epoch(r, state, epoch, log, (losses, grad_norms, bad, schedule), t0)


def _read_epoch(r, state: dict, epoch: int, log, recorded, t0: float):
    """The epoch's one read-back: raise for a non-finite loss (``stop``), or log the skipped steps
    and carry the learning-rate factor on (``skip``); the taken steps' losses and gradient norms."""
    losses, grad_norms, bad, schedule = recorded
    if not losses:
        return [], [], 0.0, time.perf_counter() - t0
    losses = torch.stack(losses).float().cpu().numpy()
    grad_norms = torch.stack(grad_norms).float().cpu().numpy()
    bad = torch.stack(bad).cpu().numpy()
    seconds = time.perf_counter() - t0
    steps = np.flatnonzero(bad)
    if steps.size and r.cfg.on_nonfinite == "stop":
        raise _diverged(r, state, float(losses[steps[0]]), epoch, int(steps[0]))
    factor = state["lr_factor"]
    last_lr = schedule[-1] * factor * 0.5 ** int(bad[:-1].sum())  # the factor the last step ran with
    for step in steps:
        factor *= 0.5
        state["skipped_steps"] += 1
        log(_skipped(epoch, int(step), factor))
    state["lr_factor"] = factor
    ok = ~bad
    return losses[ok].astype(float).tolist(), grad_norms[ok].astype(float).tolist(), last_lr, seconds


@contextmanager
def name_batch_size_on_oom(cfg: TrainConfig, device: torch.device, where: str):
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
