"""The ViT rows of the benchmark suite (``benchmarks/run.py``): training steps of a preset in fp32 and
under bf16 autocast with their FLOP rates, and the whole trainer's rate."""
from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import best_time, row


def vit_train_rate(preset: str, batch: int, steps: int, bf16: bool, device: torch.device,
                   compile_model: bool = False) -> float:
    """Training samples/s of a ViT preset at 4096 pixels on ``device``: forward, MSE loss, backward
    and the AdamW step of ``specvit.training.trainer`` (same optimizer and settings), on random spectra
    already on the device; best of ``steps`` steps."""
    from specvit.models.vit import ViTConfig, build_vit
    from specvit.training.optim import make_optimizer

    torch.manual_seed(0)
    model = build_vit(ViTConfig.from_preset(preset, 4096)).to(device)
    opt = make_optimizer(model, lr=1e-4, weight_decay=0.01)
    step_model = torch.compile(model) if compile_model else model
    x, y = torch.randn(batch, 4096, device=device), torch.randn(batch, 1, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.mse_loss(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return batch / best_time(step, steps, warmup=2 if compile_model else 1, device=device)


def vit_rows(name: str, preset: str, batch: int, steps: int, peaks: dict, device: torch.device,
             compile_model: bool, fp32_steps: bool = True) -> list[dict]:
    """The step rates of ``preset`` in fp32 (unless ``fp32_steps`` is False) and bf16, with their FLOP rates."""
    from specvit.models.vit import ViTConfig, flops_per_sample

    flops = flops_per_sample(ViTConfig.from_preset(preset, 4096), training=True)
    bf16 = vit_train_rate(preset, batch, steps, True, device, compile_model)
    if compile_model:
        name += "_compiled"
    out = [row(f"{name}_bf16", bf16, "samples/s", f"batch {batch}, bf16 autocast"),
           row(f"{name}_bf16_gflops", bf16 * flops / 1e9, "GFLOP/s", "matmul_peak_bf16", peaks["bf16"])]
    if not fp32_steps:
        return out
    fp32 = vit_train_rate(preset, batch, steps, False, device, compile_model)
    out[0] = row(f"{name}_bf16", bf16, "samples/s", f"{name} (fp32 samples/s)", fp32)
    return [row(name, fp32, "samples/s", f"batch {batch}, fp32"),
            row(f"{name}_gflops", fp32 * flops / 1e9, "GFLOP/s", "matmul_peak_fp32", peaks["fp32"]), *out]


def trainer_rate(preset: str, n: int, batch: int, device: torch.device, compile_model: bool = False) -> float:
    """Samples/s of ``specvit.training.trainer.train`` itself in its second epoch, as history.csv records it:
    the batches (on a CPU the in-RAM loader drawing fresh noise; on a GPU the training set held on the
    device, order and noise drawn there), the schedule, loss, clipping, the AdamW step and the
    bookkeeping on ``device`` at the trainer's default precision (bf16 autocast on a GPU, fp32 on a
    CPU), the model compiled with ``compile_model``; validation and checkpoints fall outside the
    timed loop, and the first epoch (compilation included) is the warm-up. Random spectra."""
    from specvit.models.vit import ViTConfig, build_vit
    from specvit.training.trainer import TrainConfig, TrainingData, train

    rng = np.random.default_rng(0)
    flux = rng.uniform(0.5, 1.0, (n, 4096)).astype(np.float32)
    error = np.full_like(flux, 0.02)
    logg = rng.uniform(1.0, 5.0, n)
    torch.manual_seed(0)
    model = build_vit(ViTConfig.from_preset(preset, 4096))
    cfg = TrainConfig(epochs=2, batch_size=batch, device=device.type, compile=compile_model)
    with tempfile.TemporaryDirectory() as run_dir:
        data = TrainingData(("logg",), flux, error, {"logg": logg}, flux[:256], {"logg": logg[:256]})
        train(model, cfg, data, run_dir, log=lambda *a: None)
        if not (Path(run_dir) / "history.csv").exists():  # a DDP rank other than 0 writes nothing
            return float("nan")
        with open(Path(run_dir) / "history.csv") as f:
            return float(list(csv.DictReader(f))[-1]["samples_per_s"])


def ddp_trainer_rate(preset: str, n: int, batch: int, gpus: int) -> float:
    """``trainer_rate`` on ``gpus`` GPUs at once (torchrun, one DDP rank per GPU, NCCL), global batch
    ``batch`` x ``gpus`` (each GPU the single-GPU batch): the samples/s of all of them together."""
    import json
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rate.json"
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
                        str(Path(__file__).with_name("ddp_rate.py")), preset, str(n), str(batch * gpus), str(out)],
                       check=True)
        return float(json.loads(out.read_text())["samples_per_s"])
