"""The trainer on a CUDA GPU against the same work on the CPU. Skipped where torch sees no GPU
(CI); run on a GPU machine with `bash benchmarks/gpu_check.sh`, which runs this file too.

Only torch, numpy and specvit are imported here, so the file runs in a GPU image that lacks the
workflow's other dependencies (Snakemake, LightGBM)."""
import numpy as np
import pytest
import torch

from specvit.loader import fixed_noisy
from specvit.models.vit import ViTConfig, build_vit
from specvit.train import TrainConfig, make_optimizer, predict_normalised, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")

P = 512
CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def exact_fp32():
    """Plain fp32 on the GPU too (no TF32 in matmuls or convolutions) while comparing with the CPU."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def small_vit(seed=0):
    torch.manual_seed(seed)
    return build_vit(ViTConfig.from_dict({"n_pixels": P, "tokenizer": "C1D", "patch": 16, "dim": 32, "depth": 2,
                                          "heads": 4, "mlp_dim": 64, "pos_encoding": "learned",
                                          "pooling": "cls"}))


def line_spectra(n, seed):
    """Spectra whose line depth encodes log g (learnable in a few epochs), float32 [n, P]."""
    rng = np.random.default_rng(seed)
    logg = rng.uniform(1, 5, n)
    x = np.linspace(-1, 1, P)
    flux = (1 - 0.1 * logg[:, None] * np.exp(-(x[None] / 0.05) ** 2)).astype(np.float32)
    return flux, np.full_like(flux, 0.02), logg


def test_forward_on_the_gpu_matches_the_cpu():
    model = small_vit()
    x = torch.from_numpy(line_spectra(64, 0)[0])
    on_cpu = model(x)
    on_gpu = model.to(CUDA)(x.to(CUDA)).cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-5)


def test_gpu_training_steps_match_the_cpu():
    """Five AdamW steps (fused on the GPU, the default on the CPU) from the same weights."""
    models = {CPU: small_vit(), CUDA: small_vit().to(CUDA)}
    opts = {dev: make_optimizer(m, 1e-3, 0.01) for dev, m in models.items()}
    assert all(g["fused"] for g in opts[CUDA].param_groups)
    assert not any(g["fused"] for g in opts[CPU].param_groups)
    flux = torch.from_numpy(line_spectra(32, 1)[0])
    y = torch.linspace(-1, 1, 32)[:, None]
    for _ in range(5):
        for dev, model in models.items():
            opts[dev].zero_grad()
            torch.nn.functional.mse_loss(model(flux.to(dev)), y.to(dev)).backward()
            opts[dev].step()
    cpu_state, gpu_state = models[CPU].state_dict(), models[CUDA].state_dict()
    for k in cpu_state:
        torch.testing.assert_close(gpu_state[k].cpu(), cpu_state[k], rtol=1e-3, atol=1e-5)


def test_the_trainer_learns_on_the_gpu_under_bf16_autocast(tmp_path):
    flux, error, logg = line_spectra(1024, 2)
    val_flux, val_error, val_logg = line_spectra(256, 3)
    x_val = fixed_noisy(val_flux, val_error, 1.0, seed=4)
    cfg = TrainConfig(epochs=8, batch_size=64, lr=3e-3, warmup_epochs=1, device="cuda", precision="auto")
    info = train(small_vit(), cfg, tmp_path, ("logg",), flux, error, {"logg": logg}, x_val, {"logg": val_logg},
                 log=lambda *a: None)
    assert info["device"].startswith("cuda") and info["precision"] == "bfloat16"
    assert info["best_val_r2"] > 0.5
    assert info["peak_memory_mb"] > 0
    # the saved best model predicts the same on the CPU in fp32 as on the GPU in fp32
    model = small_vit()
    model.load_state_dict(torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=False)["model"])
    on_cpu = predict_normalised(model, x_val, 1, CPU, None)
    on_gpu = predict_normalised(model.to(CUDA), x_val, 1, CUDA, None)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
