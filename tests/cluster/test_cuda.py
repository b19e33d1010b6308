"""The trainer on a CUDA GPU against the same work on the CPU, and the accelerator's own path:
batches drawn from the training set held on the GPU, the host loader's batches prefetched, the
epoch loop that reads nothing back until the epoch ends, and DDP on two GPUs (where there are
two). Skipped where torch sees no GPU (CI); run on a GPU machine with `bash benchmarks/gpu_check.sh`,
which runs this file too.

Only torch, numpy, specvit and the toy task of tests/toy_task.py are imported here, so the file
runs in a GPU image that lacks the workflow's other dependencies (Snakemake, LightGBM)."""
import numpy as np
import pytest
import torch

from specvit.training.device import predict_normalised
from specvit.training.optim import make_optimizer
from specvit.training.trainer import TrainConfig, TrainingData, train
from toy_task import Killed, kill_after_epoch, tiny_model, toy_data

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def exact_fp32():
    """Plain fp32 on the GPU too (no TF32 in matmuls or convolutions) while comparing with the CPU."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_forward_on_the_gpu_matches_the_cpu():
    model = tiny_model()
    x = torch.from_numpy(toy_data()[0][:64])
    with torch.no_grad():
        on_cpu = model(x)
        on_gpu = model.to(CUDA)(x.to(CUDA)).cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-5)


def test_gpu_training_steps_match_the_cpu():
    """Five AdamW steps (fused on the GPU, the default on the CPU) from the same weights. Adam
    divides by the gradient's own scale, so a parameter whose gradient is rounding noise can move
    by up to the learning rate either way: the bulk must agree closely, every parameter within
    the steps' bound, and the loss after the steps to float32 rounding."""
    lr, steps = 1e-3, 5
    models = {CPU: tiny_model(), CUDA: tiny_model().to(CUDA)}
    opts = {dev: make_optimizer(m, lr, 0.01) for dev, m in models.items()}
    assert all(g["fused"] for g in opts[CUDA].param_groups)
    assert not any(g["fused"] for g in opts[CPU].param_groups)
    flux, _, labels, _, _ = toy_data(n=32)
    x, y = torch.from_numpy(flux), torch.from_numpy(labels["logg"]).float()[:, None] - 3.0
    for _ in range(steps):
        for dev, model in models.items():
            opts[dev].zero_grad()
            torch.nn.functional.mse_loss(model(x.to(dev)), y.to(dev)).backward()
            opts[dev].step()
    diff = torch.cat([(g.cpu() - c).abs().flatten() for g, c in
                      zip(models[CUDA].state_dict().values(), models[CPU].state_dict().values())])
    assert diff.median() < 1e-6 and diff.max() <= 2 * lr * steps
    with torch.no_grad():
        losses = [torch.nn.functional.mse_loss(m(x.to(d)), y.to(d)).item() for d, m in models.items()]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_the_trainer_learns_on_the_gpu_under_bf16_autocast(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    cfg = TrainConfig(epochs=10, batch_size=16, lr=3e-3, device="cuda", precision="auto")
    info = train(tiny_model(), cfg, TrainingData(("logg",), flux, error, y, x_val, y_val), tmp_path,
                 log=lambda *a: None)
    assert info["device"].startswith("cuda") and info["precision"] == "bfloat16"
    assert info["best_val_r2"] > 0.9  # 0.98-0.996 in fp32 and bf16 on a CPU
    assert info["peak_memory_mb"] > 0
    # the saved best model predicts the same on the CPU in fp32 as on the GPU in fp32
    model = tiny_model()
    model.load_state_dict(torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=False)["model"])
    on_cpu = predict_normalised(model, x_val, 1, CPU, None)
    on_gpu = predict_normalised(model.to(CUDA), x_val, 1, CUDA, None)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- the accelerator's path on a GPU


def test_resident_batches_on_the_gpu_cover_every_row_once_with_unit_noise_and_repeat_per_epoch():
    """DeviceBatches on the GPU (another generator than the CPU's: statistics, not equality): every
    row once per epoch, eps = (x - flux) / error standard normal, the same epoch again identical,
    and with a fixed draw every row's noise the same in every epoch."""
    from specvit.data.device_loader import DeviceBatches
    from specvit.data.loader import InMemorySpectra

    n, p = 3000, 64
    flux = np.repeat(np.arange(n, dtype=np.float32)[:, None], p, axis=1)
    error = np.random.default_rng(0).uniform(0.01, 0.1, (n, p)).astype(np.float32)
    ids = np.arange(n, dtype=np.float64)[:, None]

    def by_row(batches, epoch):
        got = list(batches.epoch(epoch))
        rows = torch.cat([y[:, 0] for _, y in got]).long().cpu()
        x = torch.empty(n, p)
        x[rows] = torch.cat([b for b, _ in got]).cpu()
        return x, rows

    fresh = DeviceBatches(InMemorySpectra(flux, error), ids, 256, 1.0, 3, fresh_noise=True, device=CUDA)
    x0, rows0 = by_row(fresh, 0)
    assert sorted(rows0.tolist()) == list(range(n))
    eps = (x0 - torch.from_numpy(flux)) / torch.from_numpy(error)
    assert abs(float(eps.mean())) < 0.01 and abs(float(eps.std()) - 1.0) < 0.01
    again, rows_again = by_row(fresh, 0)
    assert torch.equal(x0, again) and torch.equal(rows0, rows_again)
    assert not torch.equal(rows0, by_row(fresh, 1)[1])
    fixed = DeviceBatches(InMemorySpectra(flux, error), ids, 256, 1.0, 3, fresh_noise=False, device=CUDA)
    assert torch.equal(by_row(fixed, 0)[0], by_row(fixed, 4)[0])


@pytest.mark.parametrize("device_data", ["auto", "stream"])
def test_the_gpu_trainer_learns_from_resident_or_prefetched_batches_and_resumes(tmp_path, device_data):
    """auto: the toy set is held on the GPU (resident); stream: the host loader's batches come through
    the background prefetch. Both learn; a run killed after epoch 2 and resumed ends with the weights
    of the uninterrupted one (to the GPU's rounding, which Adam's normalised steps may amplify for
    parameters whose gradients are rounding noise)."""
    flux, error, y, x_val, y_val = toy_data()
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    cfg = TrainConfig(epochs=6, batch_size=16, lr=3e-3, device="cuda", precision="fp32", device_data=device_data)
    info = train(tiny_model(), cfg, data, tmp_path / "straight", log=lambda *a: None)
    assert info["data"] == ("resident" if device_data == "auto" else "stream") and info["best_val_r2"] > 0.9

    with pytest.raises(Killed):
        train(tiny_model(), cfg, data, tmp_path / "resumed", log=kill_after_epoch(2))
    train(tiny_model(seed=99), cfg, data, tmp_path / "resumed", log=lambda *a: None)
    a, b = (torch.load(tmp_path / d / "last.pt", weights_only=False)["model"] for d in ("straight", "resumed"))
    diff = torch.cat([(a[k] - b[k]).abs().flatten() for k in a])  # (GPU kernels may sum in any order)
    assert diff.median() < 1e-6 and diff.max() < 2 * cfg.lr * 6 * 16


def test_the_gpu_epoch_loop_skips_a_nonfinite_step_without_reading_back(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    error = error.copy()
    error[5, 3] = np.inf
    messages = []
    cfg = TrainConfig(epochs=1, batch_size=16, device="cuda", on_nonfinite="skip")
    info = train(tiny_model(), cfg, TrainingData(("logg",), flux, error, y, x_val, y_val), tmp_path,
                 log=messages.append)
    assert info["skipped_steps"] == 1 and info["steps"] == 15
    assert any("step skipped, learning rate factor now 0.5" in m for m in messages)


def _two_gpu_ranks(rank, port, root):
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=2)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    cfg = TrainConfig(epochs=3, batch_size=16, lr=3e-3, device="cuda", precision="fp32")
    train(tiny_model(), cfg, TrainingData(("logg",), *toy_data()), root, log=lambda *a: None)
    dist.destroy_process_group()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP needs two GPUs")
def test_two_gpus_train_like_one_with_the_same_global_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_two_gpu_ranks, args=(port, tmp_path / "two"), nprocs=2)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=3e-3, device="cuda", precision="fp32")
    train(tiny_model(), cfg, TrainingData(("logg",), *toy_data()), tmp_path / "one", log=lambda *a: None)
    a, b = (torch.load(tmp_path / d / "last.pt", weights_only=False)["model"] for d in ("two", "one"))
    diff = torch.cat([(a[k] - b[k]).abs().flatten() for k in a])
    assert diff.median() < 1e-6 and diff.max() < 1e-3
