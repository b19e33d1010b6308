"""The trainer on a CUDA GPU against the same work on the CPU. Skipped where torch sees no GPU
(CI); run on a GPU machine with `bash benchmarks/gpu_check.sh`, which runs this file too.

Only torch, numpy, specvit and the toy task of tests/toy_task.py are imported here, so the file
runs in a GPU image that lacks the workflow's other dependencies (Snakemake, LightGBM)."""
import numpy as np
import pytest
import torch

from specvit.training.device import predict_normalised
from specvit.training.optim import make_optimizer
from specvit.training.trainer import TrainConfig, TrainingData, train
from toy_task import tiny_model, toy_data

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
